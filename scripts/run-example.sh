#!/usr/bin/env bash
# The main job (until the command-line program lands): loads the tiny LLaDA
# test checkpoint and prints the logits of a prompt followed by mask tokens.
#   scripts/run-example.sh [MODEL_DIR] [print_logits flags...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"${repo_root}/scripts/install-deps.sh"
cmake -S "${repo_root}" -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "${build_dir}" -j "${jobs}" --target print_logits >/dev/null
model="${1:-${repo_root}/tests/data/tiny_llada_mha}"
shift || true
if [ "$#" -eq 0 ]; then
  set -- --tokens 5,17,42,3 --masks 4 --top 3
fi
exec "${build_dir}/examples/print_logits" "${model}" "$@"
