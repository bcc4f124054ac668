#!/usr/bin/env bash
# Runs the benchmarks and writes docs/benchmarks.md, docs/bench-decode.png and
# docs/bench-kernels.png from their JSON output (kept in bench-results/).
#   scripts/bench.sh            full CPU run (several minutes)
#   scripts/bench.sh --smoke    tiny sizes everywhere, well under a minute; writes to
#                               a temporary folder and leaves docs/ alone
#   scripts/bench.sh --gpu [DIR]  on a GPU machine: bench_cuda_kernels (full) and bench_decode_cuda
#                               (tiny models, gen 256; LLaDA-8B shape, gen 64) from DIR (a build or
#                               scripts/gpu-bundle.sh output; default build-gpu), JSON into
#                               $OUT or bench-results/gpu; then, anywhere:
#                               tools/bench_report.py ... --gpu-json bench-results/gpu/decode-*.json
# Steps: a Release build with the default flags in build-bench/
# ($UNMASK_BENCH_BUILD_DIR): the kernels pick their instruction set at run
# time, so no -march is needed to reach the machine's limits; bench_cpu_kernels
# (every ceiling measured in the same run); bench_decode on models/tiny-llada +
# models/tiny-ar (gen 256, block 32; forwards over 32, 64 and 276 rows) and on
# a random ~1B model (gen 16, block 16; forwards over 32, 64 and 128 rows),
# each on one thread and on every core; the same tiny run (gen 64) with a
# busy loop competing for a core, on one thread and on all (a loaded machine);
# the PyTorch peer tools/peers/pytorch_llada.py on the tiny models on one
# thread and on every core; tools/bench_report.py and tools/plot_bench.py.
# The commit in the report: $UNMASK_COMMIT, else git rev-parse HEAD.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

smoke=0
gpu=0
gpu_dir="${repo_root}/build-gpu"
for arg in "$@"; do
  case "${arg}" in
    --smoke) smoke=1 ;;
    --gpu) gpu=1 ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench.sh: unknown argument ${arg} (use --smoke, --gpu [DIR])" >&2; exit 2 ;;
    *) if [ "${gpu}" -eq 1 ]; then gpu_dir="${arg}"; else echo "bench.sh: unexpected ${arg}" >&2; exit 2; fi ;;
  esac
done
if [ "${gpu}" -eq 1 ]; then
  export LD_LIBRARY_PATH="/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}"
  results="${OUT:-${repo_root}/bench-results/gpu}"
  mkdir -p "${results}"
  for b in bench_cuda_kernels bench_decode_cuda; do
    [ -x "${gpu_dir}/bench/${b}" ] || { echo "bench.sh: ${gpu_dir}/bench/${b} is missing (build it, or scripts/gpu-bundle.sh)" >&2; exit 1; }
  done
  "${gpu_dir}/bench/bench_cuda_kernels" --json "${results}/kernels-gpu.json" | tee "${results}/kernels-gpu.txt"
  "${gpu_dir}/bench/bench_decode_cuda" --model "${repo_root}/models/tiny-llada" --ar-model "${repo_root}/models/tiny-ar" \
    --gen-length 256 --block-length 32 --json "${results}/decode-tiny-gpu.json" | tee "${results}/decode-tiny-gpu.txt"
  "${gpu_dir}/bench/bench_decode_cuda" --shape 8b --gen-length 64 --block-length 32 \
    --json "${results}/decode-8b-gpu.json" | tee "${results}/decode-8b-gpu.txt"
  echo "bench.sh: GPU results in ${results}" >&2
  exit 0
fi

"${repo_root}/scripts/install-deps.sh"
"${repo_root}/tools/setup_venv.sh" >&2
python="${repo_root}/.venv-tools/bin/python"

bench_build="${UNMASK_BENCH_BUILD_DIR:-${repo_root}/build-bench}"
cmake -S "${repo_root}" -B "${bench_build}" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUNMASK_NATIVE=OFF >/dev/null
cmake --build "${bench_build}" -j "${jobs}" --target bench_decode bench_cpu_kernels unmask-cli

if [ "${smoke}" -eq 1 ]; then
  results="$(mktemp -d "${TMPDIR:-/tmp}/unmask-bench.XXXXXX")"
  docs="${results}"
else
  results="${repo_root}/bench-results"
  docs="${repo_root}/docs"
  mkdir -p "${results}"
fi
commit="${UNMASK_COMMIT:-$(git -C "${repo_root}" rev-parse HEAD 2>/dev/null || echo unknown)}"

# The trained tiny models, or the tiny test checkpoint while they are missing.
tiny="${repo_root}/models/tiny-llada"
tiny_ar="${repo_root}/models/tiny-ar"
gen=256
block=32
if [ ! -f "${tiny}/model.safetensors" ] || [ ! -f "${tiny_ar}/model.safetensors" ]; then
  echo "bench.sh: models/tiny-llada or models/tiny-ar is missing; using tests/data/tiny_llada_mha (gen 32, block 16)" >&2
  tiny="${repo_root}/tests/data/tiny_llada_mha"
  tiny_ar="${tiny}"
  gen=32
  block=16
fi

kernel_args=(--benchmark_min_time=0.3 --benchmark_repetitions=2)
decode_smoke=()
peer_smoke=()
tiny_rows=(--forward-rows 32,64,276)
big_args=(--gen-length 16 --block-length 16 --forward-rows 32,64,128)
loaded_gen=64
if [ "${smoke}" -eq 1 ]; then
  kernel_args=(--quick --benchmark_min_time=0.001 --benchmark_filter='gemm/.*/rows:(1|64)/attn_out|attention/.*/tiny_full|rmsnorm')
  decode_smoke=(--smoke)
  peer_smoke=(--smoke)
  tiny_rows=(--forward-rows 32)
  big_args=(--gen-length 4 --block-length 4 --prompt-length 4 --smoke)
  loaded_gen=16
fi
cores="$(nproc)"
thread_counts=(1)
[ "${cores}" -gt 1 ] && thread_counts+=("${cores}")

load="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
echo "== bench_cpu_kernels (load average ${load})" >&2
OPENBLAS_THREAD_TIMEOUT=4 "${bench_build}/bench/bench_cpu_kernels" "${kernel_args[@]}" \
  --benchmark_out="${results}/kernels.json" --benchmark_out_format=json

decodes=()
for t in "${thread_counts[@]}"; do
  echo "== bench_decode $(basename "${tiny}") (gen ${gen}, block ${block}), ${t} thread(s)" >&2
  "${bench_build}/bench/bench_decode" --model "${tiny}" --ar-model "${tiny_ar}" --gen-length "${gen}" \
    --block-length "${block}" --threads "${t}" "${tiny_rows[@]}" "${decode_smoke[@]}" --json "${results}/decode-tiny-t${t}.json"
  decodes+=(--decode "${results}/decode-tiny-t${t}.json")
  echo "== bench_decode --shape 1b (random weights, ${big_args[*]}), ${t} thread(s)" >&2
  "${bench_build}/bench/bench_decode" --shape 1b "${big_args[@]}" --threads "${t}" --json "${results}/decode-1b-t${t}.json"
  decodes+=(--decode "${results}/decode-1b-t${t}.json")
done

# A loaded machine: a busy loop takes a core while the tiny model decodes.
loaded=()
for t in "${thread_counts[@]}"; do
  echo "== bench_decode $(basename "${tiny}") with a competing busy loop, ${t} thread(s)" >&2
  ( while :; do :; done ) &
  hog=$!
  "${bench_build}/bench/bench_decode" --model "${tiny}" --ar-model "${tiny_ar}" --gen-length "${loaded_gen}" \
    --block-length "${block}" --threads "${t}" "${decode_smoke[@]}" --json "${results}/decode-tiny-loaded-t${t}.json" || { kill "${hog}"; exit 1; }
  kill "${hog}"
  wait "${hog}" 2>/dev/null || true
  loaded+=(--loaded "${results}/decode-tiny-loaded-t${t}.json")
done

# The peer on one thread and on every core (PyTorch's OpenMP fork/join can
# cost more than it gains on small shapes and a busy machine); each is
# compared with unmask on the same number of threads.
peers=()
for t in "${thread_counts[@]}"; do
  echo "== PyTorch peer on $(basename "${tiny}"), ${t} thread(s)" >&2
  peer=("${python}" "${repo_root}/tools/peers/pytorch_llada.py" --model "${tiny}" --ar-model "${tiny_ar}"
        --gen-length "${gen}" --block-length "${block}" --threads "${t}" "${peer_smoke[@]}")
  if [ "${t}" -eq 1 ]; then
    "${peer[@]}" --json "${results}/peer-tiny-t${t}.json" --compare-with "${results}/decode-tiny-t1.json" \
      --compare-cli "${bench_build}/apps/unmask"
  else
    "${peer[@]}" --no-verify --json "${results}/peer-tiny-t${t}.json"
  fi
  peers+=(--peer "${results}/peer-tiny-t${t}.json")
done

inputs=("${decodes[@]}" "${loaded[@]}" "${peers[@]}" --kernels "${results}/kernels.json")
"${python}" "${repo_root}/tools/bench_report.py" "${inputs[@]}" --commit "${commit}" --load "${load}" \
  --out "${docs}/benchmarks.md"
"${python}" "${repo_root}/tools/plot_bench.py" "${inputs[@]}" --out-dir "${docs}"
echo "bench.sh: JSON in ${results}, report ${docs}/benchmarks.md" >&2
