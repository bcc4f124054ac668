#!/usr/bin/env bash
# One command for a GPU machine: build the CUDA-only targets (the CUDA tests
# and the GPU benchmarks) for the device found, or use binaries carried from
# the development machine; run every CUDA test; run a subset under
# compute-sanitizer (memcheck, racecheck); then the kernel and decode
# benchmarks in their short modes.
#
# It cannot lose its results. Every summary line is appended to the summary
# file the moment it is known ($OUT/summary.txt when $OUT is set, else
# gpu-check-logs/summary.txt), so a run killed outright still brings back
# what it had found; the logs are archived to $OUT/gpu-check-logs.tgz after
# each phase and again from an exit/termination trap, which also names the
# step that was interrupted. Every step has a deadline: the budget
# (GPU_CHECK_BUDGET_S, default 300 s) is split into phase ends (the build
# must end by 55% of it, the tests by 75%, the sanitizers by 90%, the
# benchmarks by 100%), and each step gets the time left to its phase's end,
# so a phase that finishes early leaves its time to the next; a step with
# under 5 s left is skipped and says so.
#
# compute-sanitizer is first probed on a trivial kernel: where it cannot
# attach (a driver or runtime it does not support) it is reported as
# "unavailable" once, instead of as errors in every binary; in the real runs
# only its own error exit code (99) counts as a finding.
#
#   scripts/gpu-check.sh [BUILD_DIR]   default build-gpu (reused when it already holds CUDA test binaries)
# A machine without GoogleTest, nlohmann-json or CLI11 builds with their
# sources carried in gpu-deps/ (scripts/gpu-deps.sh), or runs the binaries
# scripts/gpu-bundle.sh builds on the development machine:
#   scripts/gpu-deps.sh; scripts/gpu-bundle.sh   (here)
#   scripts/gpu-check.sh              (there, gpu-deps and gpu-bundle carried: builds; the bundle if that fails)
#   scripts/gpu-check.sh gpu-bundle   (there: the carried binaries only)
# Exit status: 0 when everything that ran passed, 1 otherwise, 2 for bad usage.
# tests/scripts/test_gpu_check.sh tests this script with a fake nvidia-smi,
# fake binaries and a run killed midway.
set -uo pipefail
script_start=$(date +%s)
budget="${GPU_CHECK_BUDGET_S:-300}"
case "${budget}" in
  '' | *[!0-9]*) echo "gpu-check: GPU_CHECK_BUDGET_S must be a whole number of seconds, not '${budget}'" >&2; exit 2 ;;
esac
deadline=$((script_start + budget))
build_end=$((script_start + budget * 55 / 100))
tests_end=$((script_start + budget * 75 / 100))
sanitizers_end=$((script_start + budget * 90 / 100))
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-${repo_root}/build-gpu}"
bundle="${GPU_CHECK_BUNDLE:-${repo_root}/gpu-bundle}"  # the carried binaries to fall back on
if [ -n "${OUT:-}" ]; then
  logs="$(mktemp -d /tmp/gpu-check-logs.XXXXXX)"
  summary_file="${OUT}/summary.txt"
else
  logs="${repo_root}/gpu-check-logs"
  rm -rf "${logs}"
  mkdir -p "${logs}"
  summary_file="${logs}/summary.txt"
fi
export PATH="${PATH}:/usr/local/cuda/bin"
export LD_LIBRARY_PATH="/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}"
# Carried binaries were built in another checkout: point them at this one's data.
export UNMASK_TEST_DATA_DIR="${repo_root}/tests/data" UNMASK_MODELS_DIR="${repo_root}/models"
commit="$(git -C "${repo_root}" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "== gpu-check ($(date -u +%Y-%m-%dT%H:%MZ), commit ${commit}, budget ${budget} s)" >"${summary_file}"
failed=0

add() {  # name, verdict: one summary line, written at once
  local line
  line="$(printf '%-44s %s' "$1" "$2")"
  echo "${line}" >>"${summary_file}"
  echo "gpu-check: ${line}"
}
elapsed() { echo $(($(date +%s) - script_start)); }
archive() {  # the logs so far, replaced atomically
  [ -n "${OUT:-}" ] || return 0
  cp "${summary_file}" "${logs}/summary.txt" 2>/dev/null
  tar czf "${OUT}/.gpu-check-logs.tgz" -C "${logs}" . 2>/dev/null && mv -f "${OUT}/.gpu-check-logs.tgz" "${OUT}/gpu-check-logs.tgz"
}

# The step running now (for the trap), and its child: `timeout` puts itself
# in a process group of its own, so a signal sent to this script's group
# does not reach it, and bash runs a trap only once the foreground command
# ends; steps therefore run in the background and are waited for.
current_step=""
child=""
run_step() {  # limit_s, log, command...: the command's exit status (124: timed out)
  local limit="$1" log="$2"
  shift 2
  if [ "${limit}" -lt 1 ]; then echo "gpu-check: no time left for: $*" >"${log}"; return 124; fi  # (timeout 0 waits forever)
  timeout "${limit}" "$@" >"${log}" 2>&1 &
  child=$!
  wait "${child}"
  local rc=$?
  child=""
  return "${rc}"
}
time_to() { echo $(($1 - $(date +%s))); }  # seconds until a phase end
finish() {
  local rc=$?
  trap - EXIT TERM INT
  if [ -n "${child}" ]; then kill -TERM "${child}" 2>/dev/null; wait "${child}" 2>/dev/null; fi
  if [ -n "${interrupted:-}" ]; then
    add "${current_step:-gpu-check}" "INTERRUPTED by SIG${interrupted} after $(elapsed) s"
    rc=1
  fi
  echo "== ended after $(elapsed) s, exit status ${rc}" >>"${summary_file}"
  archive
  echo
  cat "${summary_file}"
  exit "${rc}"
}
trap finish EXIT
trap 'interrupted=TERM; exit 143' TERM
trap 'interrupted=INT; exit 130' INT

# ---- the device and its architecture --------------------------------------
device="none found"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader >"${logs}/device.txt" 2>&1
  device="$(head -1 "${logs}/device.txt")"
fi
cap="$(echo "${device}" | awk -F', *' '{print $2}')"
if [[ "${cap}" =~ ^[0-9]+\.[0-9]+$ ]]; then
  arch="${cap//./}"
  add "device" "${device} (sm_${arch})"
else
  arch=90
  add "device" "${device} (compute capability '${cap}' not understood: building for sm_90)"
fi

# ---- binaries: reused, built, or carried ----------------------------------
shopt -s nullglob
runnable=()
find_tests() {  # the executables of $1/tests/cuda
  runnable=()
  local t
  for t in "$1"/tests/cuda/test_cuda_*; do case "$(basename "${t}")" in *.*) ;; *) runnable+=("${t}") ;; esac; done
}
check_prebuilt() {  # dir: made executable, and every binary's libraries found
  local dir="$1" t missing=""
  chmod +x "${dir}"/tests/cuda/* "${dir}"/bench/* 2>/dev/null
  for t in "${dir}"/tests/cuda/test_cuda_* "${dir}"/bench/*; do
    [ -f "${t}" ] || continue
    local m
    m="$(ldd "${t}" 2>&1 | grep 'not found' | awk '{print $1}' | tr '\n' ' ')"
    [ -n "${m}" ] && missing="${missing}$(basename "${t}"): ${m}"
  done
  if [ -n "${missing}" ]; then
    add "binaries" "${dir}; MISSING LIBRARIES: ${missing}"
    failed=1
  else
    add "binaries" "${dir}, every library found"
  fi
}
find_tests "${build}"
if [ "${#runnable[@]}" -gt 0 ]; then
  add "build" "reused ${build}"
  check_prebuilt "${build}"
else
  current_step="build (sm_${arch})"
  start=$(date +%s)
  verdict=""
  run_step "$(time_to "${build_end}")" "${logs}/configure.txt" \
    cmake -S "${repo_root}" -B "${build}" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${arch}" \
    -DUNMASK_BUILD_BENCH=ON -DUNMASK_BUILD_APPS=OFF -DUNMASK_BUILD_EXAMPLES=OFF -DUNMASK_BUILD_HEADER_CHECKS=OFF
  rc=$?
  if [ "${rc}" = 124 ]; then
    verdict="configure TIMED OUT after $(( $(date +%s) - start )) s (configure.txt)"
  elif [ "${rc}" != 0 ]; then
    verdict="configure FAILED (exit ${rc}, configure.txt)"
  elif ! targets="$("${repo_root}/scripts/cuda-targets.sh" "${build}" 2>"${logs}/targets.txt")" || [ -z "${targets}" ]; then
    verdict="FAILED: no CUDA targets (is nvcc there? configure.txt)"
  else
    # shellcheck disable=SC2086  # one target per word
    run_step "$(time_to "${build_end}")" "${logs}/build.txt" cmake --build "${build}" -j "$(nproc)" --target ${targets}
    rc=$?
    [ "${rc}" = 124 ] && verdict="TIMED OUT after $(( $(date +%s) - start )) s (build.txt)"
    [ "${rc}" != 0 ] && [ "${rc}" != 124 ] && verdict="FAILED (build.txt)"
  fi
  current_step=""
  if [ -z "${verdict}" ]; then
    add "build (sm_${arch})" "ok, $(( $(date +%s) - start )) s"
  else
    add "build (sm_${arch})" "${verdict}"
    tail -n 30 "${logs}/configure.txt" "${logs}/build.txt" 2>/dev/null
    failed=1
  fi
  find_tests "${build}"
  if [ "${#runnable[@]}" -eq 0 ] && [ -d "${bundle}/tests/cuda" ]; then
    build="${bundle}"  # carried binaries, if any, still get run
    add "build" "falling back to the carried ${build}"
    check_prebuilt "${build}"
    find_tests "${build}"
  fi
fi
archive

# ---- 1. every CUDA test ----------------------------------------------------
for t in "${runnable[@]}"; do
  name="$(basename "${t}")"
  limit="$(time_to "${tests_end}")"
  if [ "${limit}" -lt 5 ]; then add "${name}" "skipped (deadline)"; continue; fi
  current_step="${name}"
  start=$(date +%s)
  run_step "${limit}" "${logs}/${name}.txt" "${t}" --gtest_brief=1
  rc=$?
  current_step=""
  if [ "${rc}" = 0 ]; then
    add "${name}" "$(grep -E '^\[  PASSED  \]|SKIPPED \]' "${logs}/${name}.txt" | head -2 | tr '\n' ' ')($(( $(date +%s) - start )) s)"
  else
    [ "${rc}" = 124 ] && why="TIMED OUT after ${limit} s" || why="FAILED (exit ${rc})"
    add "${name}" "${why}: $(grep -c '^\[  FAILED  \]' "${logs}/${name}.txt") failure lines (${name}.txt)"
    grep -B2 -A12 -E 'Failure|FAILED|error' "${logs}/${name}.txt" | head -n 60
    failed=1
  fi
done
[ "${#runnable[@]}" -gt 0 ] || add "CUDA tests" "none to run"
# The near-tie reports and agreement lines of the end-to-end test, for the record.
[ -f "${logs}/test_cuda_backend.txt" ] && grep -E '^  ' "${logs}/test_cuda_backend.txt" | cut -c1-300 | head -n 40
archive

# ---- 2. compute-sanitizer on a short subset --------------------------------
# Device tests of the kernels at small sizes, one forward of the tiny model
# and a captured graph; tests that provoke API errors on purpose are left
# out. racecheck only where kernels share memory between threads.
memcheck_filter() {
  case "$1" in
    test_cuda_backend) echo "CudaBackend.LogitsMatchTheCpuWithBf16Activations:CudaBackend.CapturedStep*" ;;
    test_cuda_gemm) echo "CudaGemm.SameShapeTwiceIsBitIdentical" ;;
    test_cuda_vocab_pass) echo "*RowsOutside*:*FiltersBriefForTheSanitizer*" ;;
    test_cuda_attention) echo "CudaAttention.MatchesCpuBFloat16" ;;
    test_cuda_selection) echo "*SmallInstances*:*BrokenCounts*:*NanConfidences*" ;;
    *) echo "-*Host*" ;;
  esac
}
racecheck_filter() {
  case "$1" in
    test_cuda_attention) echo "CudaAttention.MatchesCpuBFloat16" ;;
    test_cuda_selection) echo "*SmallInstances*:*BrokenCounts*" ;;
    test_cuda_vocab_pass) echo "*FiltersBriefForTheSanitizer*" ;;
    test_cuda_rmsnorm | test_cuda_argmax | test_cuda_resident_step) echo "-*Host*" ;;
    *) echo "" ;;  # no shared memory shared between threads
  esac
}
sanitizer_usable=0
if ! command -v compute-sanitizer >/dev/null 2>&1; then
  add "compute-sanitizer" "not installed"
elif [ "${#runnable[@]}" -eq 0 ]; then
  add "compute-sanitizer" "not run (no tests)"
else
  # The probe: one trivial kernel, compiled here when nvcc is present, else
  # the first test binary's memcheck subset.
  current_step="compute-sanitizer probe"
  probe=("${runnable[0]}" --gtest_brief=1 --gtest_filter="$(memcheck_filter "$(basename "${runnable[0]}")")")
  if command -v nvcc >/dev/null 2>&1; then
    printf '%s\n' '__global__ void fill(int* p) { p[threadIdx.x] = int(threadIdx.x); }' \
      'int main() {' '  int* d = nullptr;' '  if (cudaMalloc(&d, 32 * sizeof(int)) != cudaSuccess) return 2;' \
      '  fill<<<1, 32>>>(d);' '  return cudaDeviceSynchronize() == cudaSuccess && cudaFree(d) == cudaSuccess ? 0 : 3;' '}' \
      >"${logs}/probe.cu"
    if run_step 60 "${logs}/probe-build.txt" nvcc -arch="sm_${arch}" -o "${logs}/probe" "${logs}/probe.cu"; then
      probe=("${logs}/probe")
    fi
  fi
  limit="$(time_to "${sanitizers_end}")"
  [ "${limit}" -gt 60 ] && limit=60
  if [ "${limit}" -lt 5 ]; then
    add "compute-sanitizer" "skipped (deadline)"
  else
    run_step "${limit}" "${logs}/sanitizer-probe.txt" compute-sanitizer --tool memcheck --error-exitcode 99 "${probe[@]}"
    rc=$?
    if [ "${rc}" = 0 ]; then
      sanitizer_usable=1
    else
      first="$(grep -m1 -v '^ *$' "${logs}/sanitizer-probe.txt" | cut -c1-120)"
      add "compute-sanitizer" "unavailable: the probe on $(basename "${probe[0]}") exited ${rc} (${first}; sanitizer-probe.txt)"
    fi
  fi
  current_step=""
fi
if [ "${sanitizer_usable}" = 1 ]; then
  for tool in memcheck racecheck; do
    findings=""
    other=""
    skipped=0
    start=$(date +%s)
    for t in "${runnable[@]}"; do
      name="$(basename "${t}")"
      filter="$("${tool}_filter" "${name}")"
      [ -n "${filter}" ] || continue
      limit="$(time_to "${sanitizers_end}")"
      if [ "${limit}" -lt 5 ]; then skipped=$((skipped + 1)); continue; fi
      current_step="compute-sanitizer ${tool} ${name}"
      run_step "${limit}" "${logs}/sanitizer-${tool}-${name}.txt" compute-sanitizer --tool "${tool}" --error-exitcode 99 \
        "${t}" --gtest_brief=1 --gtest_filter="${filter}"
      rc=$?
      current_step=""
      case "${rc}" in
        0) ;;
        99) findings="${findings}${name} "
            grep -m 20 -E '=========' "${logs}/sanitizer-${tool}-${name}.txt" ;;
        124) other="${other}${name} timed out; " ;;
        *) other="${other}${name} exit ${rc} (not a sanitizer finding); " ;;
      esac
    done
    verdict="clean"
    [ -z "${findings}" ] || verdict="ERRORS in ${findings}"
    [ -z "${other}" ] || verdict="${verdict}; ${other}"
    [ "${skipped}" = 0 ] || verdict="${verdict}; ${skipped} binaries skipped (deadline)"
    add "compute-sanitizer ${tool}" "${verdict} ($(( $(date +%s) - start )) s)"
    [ -z "${findings}" ] || failed=1
  done
fi
archive

# ---- 3. benchmarks, short modes --------------------------------------------
bench() {  # name, most seconds, command...
  local name="$1" most="$2" limit
  shift 2
  limit="$(time_to "${deadline}")"
  [ "${limit}" -gt "${most}" ] && limit="${most}"
  if [ "${limit}" -lt 5 ]; then add "${name}" "skipped (deadline)"; return; fi
  current_step="${name}"
  run_step "${limit}" "${logs}/${name}.txt" "$@"
  local rc=$?
  current_step=""
  if [ "${rc}" = 0 ]; then
    add "${name}" "ok (${name}.txt)"
    tail -n 45 "${logs}/${name}.txt"
  else
    [ "${rc}" = 124 ] && add "${name}" "TIMED OUT after ${limit} s (${name}.txt)" || add "${name}" "FAILED (exit ${rc}, ${name}.txt)"
    tail -n 20 "${logs}/${name}.txt"
    failed=1
  fi
}
if [ -x "${build}/bench/bench_cuda_kernels" ]; then
  bench bench-cuda-kernels 120 "${build}/bench/bench_cuda_kernels" --short --json "${logs}/bench-cuda-kernels.json"
else
  add "bench_cuda_kernels" "not built"
fi
if [ -x "${build}/bench/bench_decode_cuda" ]; then
  bench bench-decode-tiny 90 "${build}/bench/bench_decode_cuda" --model "${repo_root}/models/tiny-llada" \
    --ar-model "${repo_root}/models/tiny-ar" --gen-length 128 --json "${logs}/bench-decode-tiny.json"
  if [ "${GPU_CHECK_1B:-1}" = 1 ]; then
    bench bench-decode-1b 120 "${build}/bench/bench_decode_cuda" --shape 1b --gen-length 64 \
      --json "${logs}/bench-decode-1b.json"
  fi
else
  add "bench_decode_cuda" "not built"
fi
exit "${failed}"
