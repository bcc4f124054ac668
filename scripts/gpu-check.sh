#!/usr/bin/env bash
# One command for a GPU machine: build the CUDA tests for the device found
# (or use a build folder carried from the development machine), run them,
# run a short subset under compute-sanitizer (memcheck, racecheck), and print
# a compact summary table last. Logs go to $OUT when set (the device tool's
# output folder), else to gpu-check-logs/.
#   scripts/gpu-check.sh [BUILD_DIR]      default: build-gpu (reused when it already holds test binaries)
set -uo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-${repo_root}/build-gpu}"
logs="${OUT:-${repo_root}/gpu-check-logs}"
mkdir -p "${logs}"
export PATH="/usr/local/cuda/bin:${PATH}"
summary=()
add() { summary+=("$(printf '%-38s %s' "$1" "$2")"); }

nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader >"${logs}/device.txt" 2>&1
device="$(head -1 "${logs}/device.txt")"
arch="$(echo "${device}" | awk -F', ' '{gsub(/\./, "", $2); print $2}')"
add "device" "${device:-none found}"

shopt -s nullglob
tests=("${build}"/tests/cuda/test_cuda_*)
if [ "${#tests[@]}" -eq 0 ]; then
  start=$(date +%s)
  if cmake -S "${repo_root}" -B "${build}" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${arch:-90}" \
      -DUNMASK_BUILD_BENCH=OFF -DUNMASK_BUILD_APPS=OFF >"${logs}/configure.txt" 2>&1 &&
     cmake --build "${build}" -j "$(nproc)" >"${logs}/build.txt" 2>&1; then
    add "build (sm_${arch:-90})" "ok, $(( $(date +%s) - start )) s"
  else
    add "build (sm_${arch:-90})" "FAILED (see build.txt / configure.txt)"
  fi
  tests=("${build}"/tests/cuda/test_cuda_*)
else
  add "build" "reused ${build}"
fi

failed=0
for t in "${tests[@]}"; do
  name="$(basename "${t}")"
  if "${t}" --gtest_brief=1 >"${logs}/${name}.txt" 2>&1; then
    add "${name}" "$(grep -E '^\[  PASSED  \]|SKIPPED \]' "${logs}/${name}.txt" | tr '\n' ' ')"
  else
    add "${name}" "FAILED: $(grep -c '^\[  FAILED  \]' "${logs}/${name}.txt") lines (see ${name}.txt)"
    failed=1
  fi
done

if command -v compute-sanitizer >/dev/null 2>&1 && [ "${#tests[@]}" -gt 0 ]; then
  for tool in memcheck racecheck; do
    ok=1
    for t in "${tests[@]}"; do
      compute-sanitizer --tool "${tool}" --error-exitcode 99 "${t}" --gtest_brief=1 \
        >"${logs}/sanitizer-${tool}-$(basename "${t}").txt" 2>&1 || ok=0
    done
    add "compute-sanitizer ${tool}" "$([ "${ok}" = 1 ] && echo clean || echo 'ERRORS (see sanitizer logs)')"
    [ "${ok}" = 1 ] || failed=1
  done
else
  add "compute-sanitizer" "not run (tool or tests missing)"
fi

echo
echo "== gpu-check summary ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "${repo_root}" rev-parse --short HEAD 2>/dev/null || echo unknown))"
printf '%s\n' "${summary[@]}" | tee "${logs}/summary.txt"
exit "${failed}"
