#!/usr/bin/env bash
# Tests scripts/gpu-check.sh without a GPU: a fake nvidia-smi, nvcc, cmake
# and compute-sanitizer first on PATH, fake CUDA test binaries (shell
# scripts printing GoogleTest's lines), and runs killed midway, by SIGTERM
# and by SIGKILL. Each case checks the summary file and the log archive the
# script leaves in $OUT.
#   tests/scripts/test_gpu_check.sh     (CTest: GpuCheckScript)
set -uo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
check="${repo_root}/scripts/gpu-check.sh"
scratch="$(mktemp -d)"
[ -z "${KEEP:-}" ] || echo "scratch: ${scratch}"
trap '[ -n "${KEEP:-}" ] || rm -rf "${scratch}"' EXIT
failures=0
fail() { echo "FAIL [${case_name}]: $*"; failures=$((failures + 1)); }
expect_line() {  # pattern: the summary has a line matching it
  grep -qE "$1" "${out}/summary.txt" || fail "no summary line matches '$1'"
}
expect_no_line() { ! grep -qE "$1" "${out}/summary.txt" || fail "a summary line matches '$1'"; }
expect_archived() {  # file: it is in the log archive
  local listing  # (whole: grep -q closing the pipe early would fail tar under pipefail)
  listing="$(tar tzf "${out}/gpu-check-logs.tgz" 2>/dev/null)"
  grep -qx "./$1" <<<"${listing}" || fail "$1 is not in gpu-check-logs.tgz"
}

# ---- the fakes ---------------------------------------------------------------
fakes="${scratch}/bin"
mkdir -p "${fakes}"
cat >"${fakes}/nvidia-smi" <<'EOF'
#!/bin/sh
echo "NVIDIA H200, ${FAKE_CAP-9.0}, 143771 MiB, 580.65.06"
EOF
cat >"${fakes}/nvcc" <<'EOF'
#!/bin/sh
# "Compiles" the probe: writes a program that succeeds.
while [ $# -gt 0 ]; do [ "$1" = -o ] && { printf '#!/bin/sh\nexit 0\n' >"$2"; chmod +x "$2"; }; shift; done
EOF
cat >"${fakes}/cmake" <<'EOF'
#!/bin/sh
# A configure that takes longer than any budget here.
sleep 100
EOF
cat >"${fakes}/compute-sanitizer" <<'EOF'
#!/bin/sh
# FAKE_SANITIZER=detached: cannot attach at all; working: runs the program
# and reports an error (exit 99) in test_cuda_gemm.
if [ "${FAKE_SANITIZER}" = detached ]; then
  echo "========= Error: Target application terminated before first instrumented API call"; exit 1
fi
while [ $# -gt 0 ]; do case "$1" in --tool | --error-exitcode) shift 2 ;; *) break ;; esac; done
case "$1" in */test_cuda_gemm) echo "========= Invalid __global__ read of size 4"; exit 99 ;; esac
exec "$@"
EOF
chmod +x "${fakes}"/*
export PATH="${fakes}:${PATH}"

fake_test() {  # dir, name, [body]: a test binary printing GoogleTest's lines
  mkdir -p "$1/tests/cuda"
  printf '#!/bin/sh\n%s\necho "[==========] 3 tests ran."\necho "[  PASSED  ] 3 tests."\n' "${3:-}" >"$1/tests/cuda/$2"
  chmod +x "$1/tests/cuda/$2"
}
run_check() {  # case name, then the script's arguments; leaves its exit status in $rc
  case_name="$1"
  shift
  out="${scratch}/out-${case_name}"
  mkdir -p "${out}"
  OUT="${out}" GPU_CHECK_BUNDLE="${scratch}/no-bundle" GPU_CHECK_1B=0 timeout 60 "${check}" "$@" >"${out}/stdout.txt" 2>&1
  rc=$?
}

# ---- 1. reused binaries, all passing; the sanitizer cannot attach -------------
build="${scratch}/build-pass"
fake_test "${build}" test_cuda_argmax
fake_test "${build}" test_cuda_attention
FAKE_SANITIZER=detached run_check passing "${build}"
[ "${rc}" = 0 ] || fail "exit status ${rc}, expected 0 (an unusable sanitizer is not a failure)"
expect_line '^== gpu-check \(.*budget 300 s\)'
expect_line '^device +NVIDIA H200, 9\.0, .*\(sm_90\)'
expect_line "^build +reused ${build}"
expect_line '^binaries +.*every library found'
expect_line '^test_cuda_argmax +\[  PASSED  \] 3 tests\.'
expect_line '^test_cuda_attention +\[  PASSED  \]'
expect_line '^compute-sanitizer +unavailable: the probe on probe exited 1 \(.*terminated before first instrumented'
expect_no_line 'compute-sanitizer (memcheck|racecheck)'
expect_line '^bench_cuda_kernels +not built'
expect_line '^== ended after [0-9]+ s, exit status 0'
expect_archived test_cuda_argmax.txt
expect_archived summary.txt
expect_archived sanitizer-probe.txt

# ---- 2. a working sanitizer: only its own exit code is a finding ---------------
build="${scratch}/build-sanitizer"
fake_test "${build}" test_cuda_argmax
fake_test "${build}" test_cuda_gemm
fake_test "${build}" test_cuda_attention 'case "$*" in *MatchesCpuBFloat16*) echo "[  FAILED  ] one"; exit 1 ;; esac'
FAKE_SANITIZER=working run_check sanitizer "${build}"
[ "${rc}" = 1 ] || fail "exit status ${rc}, expected 1 (test_cuda_gemm has a sanitizer finding)"
expect_line '^compute-sanitizer memcheck +ERRORS in test_cuda_gemm ; test_cuda_attention exit 1 \(not a sanitizer finding\)'
expect_line '^compute-sanitizer racecheck +clean; test_cuda_attention exit 1 \(not a sanitizer finding\)'
expect_archived sanitizer-memcheck-test_cuda_gemm.txt

# ---- 3. a compute capability that is not a number -------------------------------
build="${scratch}/build-cap"
fake_test "${build}" test_cuda_argmax
FAKE_CAP='[N/A]' FAKE_SANITIZER=detached run_check cap "${build}"
expect_line "^device +.*compute capability '\[N/A\]' not understood: building for sm_90"

# ---- 4. killed by SIGTERM in the middle of a test ------------------------------
start_until_stuck() {  # case name: the script in the background ($pid) on a build whose second test hangs, until it has started
  case_name="$1"
  build="${scratch}/build-$1"
  out="${scratch}/out-$1"
  rm -f "${scratch}/backend.pid"
  mkdir -p "${out}"
  fake_test "${build}" test_cuda_argmax
  fake_test "${build}" test_cuda_backend "echo \$\$ >'${scratch}/backend.pid'; sleep 50"
  fake_test "${build}" test_cuda_rope
  OUT="${out}" GPU_CHECK_BUNDLE="${scratch}/no-bundle" FAKE_SANITIZER=detached "${check}" "${build}" >"${out}/stdout.txt" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ -s "${scratch}/backend.pid" ] && break; sleep 0.1; done
  [ -s "${scratch}/backend.pid" ] || fail "test_cuda_backend never started"
}
start_until_stuck term
kill -TERM "${pid}"
start=$(date +%s)
wait "${pid}"
rc=$?
[ $(($(date +%s) - start)) -le 5 ] || fail "the script took more than 5 s to stop after SIGTERM"
[ "${rc}" = 1 ] || fail "exit status ${rc} after SIGTERM, expected 1"
expect_line '^test_cuda_argmax +\[  PASSED  \]'
expect_line '^test_cuda_backend +INTERRUPTED by SIGTERM after [0-9]+ s'
expect_no_line '^test_cuda_rope'
expect_line '^== ended after [0-9]+ s, exit status 1'
expect_archived test_cuda_argmax.txt
expect_archived test_cuda_backend.txt
sleep 0.5
if kill -0 "$(cat "${scratch}/backend.pid")" 2>/dev/null; then
  fail "the interrupted test is still running"
  kill "$(cat "${scratch}/backend.pid")"
fi

# ---- 5. killed by SIGKILL: no trap runs, what was written stays -----------------
start_until_stuck kill
kill -KILL "${pid}"
wait "${pid}" 2>/dev/null
kill "$(cat "${scratch}/backend.pid")" 2>/dev/null
expect_line '^device +NVIDIA H200'
expect_line '^test_cuda_argmax +\[  PASSED  \]'
expect_archived summary.txt  # the archive of the phases before the kill

# ---- 6. a build past its deadline; the carried bundle checked like reused binaries -
mkdir -p "${scratch}/lib"
printf 'int unmask_fake(void) { return 0; }\n' >"${scratch}/lib/fake.c"
printf 'int unmask_fake(void);\nint main(void) { return unmask_fake(); }\n' >"${scratch}/lib/main.c"
bundle="${scratch}/bundle"
fake_test "${bundle}" test_cuda_argmax
if cc -shared -fPIC -o "${scratch}/lib/libunmaskfake.so" "${scratch}/lib/fake.c" &&
   cc -o "${bundle}/tests/cuda/test_cuda_linked" "${scratch}/lib/main.c" -L"${scratch}/lib" -lunmaskfake; then
  rm "${scratch}/lib/libunmaskfake.so"  # now the binary's library is missing
  missing_lib=1
else
  echo "note: no C compiler, the missing-library case is left out"
  missing_lib=0
fi
case_name=deadline
out="${scratch}/out-deadline"
mkdir -p "${out}"
start=$(date +%s)
OUT="${out}" GPU_CHECK_BUDGET_S=10 GPU_CHECK_BUNDLE="${bundle}" FAKE_SANITIZER=detached timeout 60 "${check}" \
  "${scratch}/build-empty" >"${out}/stdout.txt" 2>&1
rc=$?
took=$(($(date +%s) - start))
[ "${took}" -le 12 ] || fail "a 10 s budget took ${took} s"
[ "${rc}" = 1 ] || fail "exit status ${rc}, expected 1"
expect_line '^build \(sm_90\) +configure TIMED OUT after [0-9]+ s'
expect_line "^build +falling back to the carried ${bundle}"
[ "${missing_lib}" = 0 ] || expect_line '^binaries +.*MISSING LIBRARIES: test_cuda_linked: libunmaskfake\.so'
expect_line '^test_cuda_argmax +(\[  PASSED  \]|skipped \(deadline\))'

# ---- 7. a budget that is not a number -------------------------------------------
case_name=usage
GPU_CHECK_BUDGET_S=5m "${check}" >"${scratch}/usage.txt" 2>&1
rc=$?
[ "${rc}" = 2 ] || fail "exit status ${rc} for GPU_CHECK_BUDGET_S=5m, expected 2"
grep -q "GPU_CHECK_BUDGET_S must be a whole number of seconds, not '5m'" "${scratch}/usage.txt" || fail "no usage message"

if [ "${failures}" -gt 0 ]; then
  echo "${failures} failures"
  exit 1
fi
echo "gpu-check: every case passed"
