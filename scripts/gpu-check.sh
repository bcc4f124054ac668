#!/usr/bin/env bash
# One command for a GPU machine: build the CUDA tests and GPU benchmarks for
# the device found (or use a build folder carried from the development
# machine), run every CUDA test, run a short subset under compute-sanitizer
# (memcheck, racecheck), run the kernel and decode benchmarks in their short
# modes, and print a compact summary table last. Logs go to $OUT when set (the
# device tool's output folder), else to gpu-check-logs/. Budget: under 8
# minutes on an H100 from a fresh machine (about 2 of them building).
#   scripts/gpu-check.sh [BUILD_DIR]      default: build-gpu (reused when it already holds test binaries)
# A machine without GoogleTest / Google Benchmark / CLI11 runs the binaries
# that scripts/gpu-bundle.sh builds on the development machine:
#   scripts/gpu-bundle.sh   (here)   then, with gpu-bundle carried:   scripts/gpu-check.sh gpu-bundle
set -uo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-${repo_root}/build-gpu}"
logs="${OUT:-${repo_root}/gpu-check-logs}"
mkdir -p "${logs}"
export PATH="/usr/local/cuda/bin:${PATH}"
# Carried binaries were built in another checkout: point them at this one's data.
export UNMASK_TEST_DATA_DIR="${repo_root}/tests/data" UNMASK_MODELS_DIR="${repo_root}/models"
script_start=$(date +%s)
summary=()
add() { summary+=("$(printf '%-44s %s' "$1" "$2")"); }
failed=0

device=""
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader >"${logs}/device.txt" 2>&1
  device="$(head -1 "${logs}/device.txt")"
fi
arch="$(echo "${device}" | awk -F', ' '{gsub(/\./, "", $2); print $2}')"
add "device" "${device:-none found}"

shopt -s nullglob
tests=("${build}"/tests/cuda/test_cuda_*)
if [ "${#tests[@]}" -eq 0 ]; then
  start=$(date +%s)
  # bench/ builds what its dependencies allow (bench_cuda_kernels needs none).
  bench=ON
  if cmake -S "${repo_root}" -B "${build}" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${arch:-90}" \
      -DUNMASK_BUILD_BENCH="${bench}" -DUNMASK_BUILD_APPS=OFF -DUNMASK_BUILD_EXAMPLES=OFF >"${logs}/configure.txt" 2>&1 &&
     cmake --build "${build}" -j "$(nproc)" >"${logs}/build.txt" 2>&1; then
    add "build (sm_${arch:-90}, benchmarks ${bench})" "ok, $(( $(date +%s) - start )) s"
  else
    add "build (sm_${arch:-90})" "FAILED (see build.txt / configure.txt)"
    failed=1
  fi
  tests=("${build}"/tests/cuda/test_cuda_*)
else
  add "build" "reused ${build}"
fi

# 1. Every CUDA test.
for t in "${tests[@]}"; do
  name="$(basename "${t}")"
  case "${name}" in *.*) continue ;; esac
  start=$(date +%s)
  if timeout 300 "${t}" --gtest_brief=1 >"${logs}/${name}.txt" 2>&1; then
    add "${name}" "$(grep -E '^\[  PASSED  \]|SKIPPED \]' "${logs}/${name}.txt" | head -2 | tr '\n' ' ')($(( $(date +%s) - start )) s)"
  else
    add "${name}" "FAILED: $(grep -c '^\[  FAILED  \]' "${logs}/${name}.txt") lines (see ${name}.txt)"
    failed=1
  fi
done

# 2. compute-sanitizer on a short subset: every kernel test, and one forward
#    pass of the tiny model (the end-to-end decodes are too slow under it).
sanitized() {
  case "$1" in
    test_cuda_backend) echo "--gtest_filter=CudaBackend.LogitsMatchTheCpuWithBf16Activations:CudaBackend.CapturedStep*" ;;
    test_cuda_gemm) echo "--gtest_filter=*SameShapeTwice*" ;;  # cuBLASLt's own kernels: one shape set
    test_cuda_vocab_pass) echo "--gtest_filter=*Host*:*SmallVocabularies*:*RowsOutside*" ;;
    *) echo "--gtest_filter=*" ;;
  esac
}
if command -v compute-sanitizer >/dev/null 2>&1 && [ "${#tests[@]}" -gt 0 ]; then
  for tool in memcheck racecheck; do
    ok=1
    start=$(date +%s)
    for t in "${tests[@]}"; do
      name="$(basename "${t}")"
      case "${name}" in *.*) continue ;; esac
      timeout 240 compute-sanitizer --tool "${tool}" --error-exitcode 99 "${t}" --gtest_brief=1 "$(sanitized "${name}")" \
        >"${logs}/sanitizer-${tool}-${name}.txt" 2>&1 || { ok=0; echo "${name}" >>"${logs}/sanitizer-${tool}-failed.txt"; }
    done
    add "compute-sanitizer ${tool}" "$([ "${ok}" = 1 ] && echo clean || echo "ERRORS: $(tr '\n' ' ' <"${logs}/sanitizer-${tool}-failed.txt")") ($(( $(date +%s) - start )) s)"
    [ "${ok}" = 1 ] || failed=1
  done
else
  add "compute-sanitizer" "not run (tool or tests missing)"
fi

# 3. Benchmarks, short modes.
if [ -x "${build}/bench/bench_cuda_kernels" ]; then
  if timeout 180 "${build}/bench/bench_cuda_kernels" --short --json "${logs}/bench-cuda-kernels.json" \
       >"${logs}/bench-cuda-kernels.txt" 2>&1; then
    add "bench_cuda_kernels --short" "ok (bench-cuda-kernels.txt)"
  else
    add "bench_cuda_kernels --short" "FAILED (see bench-cuda-kernels.txt)"
    failed=1
  fi
else
  add "bench_cuda_kernels" "not built"
fi
if [ -x "${build}/bench/bench_decode_cuda" ]; then
  if timeout 180 "${build}/bench/bench_decode_cuda" --model "${repo_root}/models/tiny-llada" \
       --ar-model "${repo_root}/models/tiny-ar" --gen-length 128 --json "${logs}/bench-decode-tiny.json" \
       >"${logs}/bench-decode-tiny.txt" 2>&1 &&
     timeout 240 "${build}/bench/bench_decode_cuda" --shape 1b --gen-length 64 --json "${logs}/bench-decode-1b.json" \
       >"${logs}/bench-decode-1b.txt" 2>&1; then
    add "bench_decode_cuda (tiny, random 1B)" "ok (bench-decode-*.txt)"
  else
    add "bench_decode_cuda" "FAILED (see bench-decode-*.txt)"
    failed=1
  fi
else
  add "bench_decode_cuda" "not built"
fi

for f in "${logs}"/bench-cuda-kernels.txt "${logs}"/bench-decode-tiny.txt "${logs}"/bench-decode-1b.txt; do
  [ -f "${f}" ] && { echo; echo "== $(basename "${f}")"; tail -n 45 "${f}"; }
done
echo
echo "== gpu-check summary ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "${repo_root}" rev-parse --short HEAD 2>/dev/null || echo unknown), $(( $(date +%s) - script_start )) s)"
printf '%s\n' "${summary[@]}" | tee "${logs}/summary.txt"
exit "${failed}"
