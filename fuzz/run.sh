#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (installing clang from Debian when
# it is missing) and runs each for a while, $UNMASK_FUZZ_JOBS at a time
# (default: the number of CPUs).
#   fuzz/run.sh [seconds per target, default 60] [target ...]
# Build directory: $UNMASK_FUZZ_BUILD_DIR or build-fuzz/. Each target starts
# from its committed seeds (fuzz/corpus/<target>/) and a working corpus in
# the build directory, which grows from run to run. A crash, a leak, a
# timeout (10 s for one input) or running out of memory (2 GB) fails the
# run: the input is saved as build-fuzz/findings/<target>/crash-*, the log is
# printed, and the script exits 1. A summary line per target (executions,
# coverage, corpus) goes to stdout and to build-fuzz/summary.txt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
shift || true
build="${UNMASK_FUZZ_BUILD_DIR:-${root}/build-fuzz}"
all=(safetensors model_directory model_config tokenizer_load tokenizer_encode tokenizer_round_trip chat_template
     tokenizer_config)
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=("${all[@]}")

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: installing clang" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang >&2
fi
"${root}/scripts/install-deps.sh"
cmake -S "${root}" -B "${build}" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DUNMASK_ENABLE_CUDA=OFF -DUNMASK_BUILD_TESTS=OFF -DUNMASK_BUILD_EXAMPLES=OFF -DUNMASK_BUILD_BENCH=OFF \
  -DUNMASK_BUILD_APPS=OFF -DUNMASK_BUILD_FUZZERS=ON >/dev/null
cmake --build "${build}" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

dict_of() {
  case "$1" in
    chat_template) echo "${root}/fuzz/dict/jinja.dict" ;;
    tokenizer_encode|tokenizer_round_trip) echo "" ;;
    *) echo "${root}/fuzz/dict/json.dict" ;;
  esac
}

run_one() {
  local t="$1" work="${build}/corpus/$1" findings="${build}/findings/$1" log="${build}/logs/$1.log"
  mkdir -p "${work}" "${findings}" "$(dirname "${log}")"
  local dict
  dict="$(dict_of "${t}")"
  local args=(-max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1
              -print_funcs=0 -artifact_prefix="${findings}/")
  [ -n "${dict}" ] && args+=(-dict="${dict}")
  if (cd "${build}" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "${build}/fuzz/fuzz_${t}" "${args[@]}" "${work}" "${root}/fuzz/corpus/${t}" >"${log}" 2>&1); then
    status=ok
  else
    status=FAILED
  fi
  local execs cov ft corp
  execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "${log}" | awk '{print $2}' | tail -1 || true)"
  cov="$(grep -o 'cov: [0-9]*' "${log}" | tail -1 | awk '{print $2}' || true)"
  ft="$(grep -o 'ft: [0-9]*' "${log}" | tail -1 | awk '{print $2}' || true)"
  corp="$(ls "${work}" | wc -l)"
  local line
  line="$(printf '%-22s %s  %ss  executions %s  coverage %s edges, %s features  corpus %s' "${t}" "${status}" \
          "${seconds}" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp}")"
  echo "${line}" | tee -a "${build}/summary.txt"
  if [ "${status}" != ok ]; then
    echo "---- ${log} (last 60 lines)"
    tail -60 "${log}"
    return 1
  fi
}

echo "== fuzz: ${#targets[@]} targets, ${seconds} s each, $(date -u +%FT%TZ), commit $(git -C "${root}" rev-parse --short HEAD 2>/dev/null || echo '?')" \
  | tee -a "${build}/summary.txt"
failed=0
pids=()
for t in "${targets[@]}"; do
  run_one "${t}" &
  pids+=($!)
  if [ "${#pids[@]}" -ge "${UNMASK_FUZZ_JOBS:-$(nproc)}" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "${p}" || failed=1; done
exit "${failed}"
