#!/usr/bin/env bash
# The main job: builds the `unmask` program and runs the embedded tiny
# diffusion model next to its autoregressive twin on a prompt.
#   scripts/run.sh                       # default prompt, --compare
#   scripts/run.sh generate -p "..." --visual --policy threshold --threshold 0.5
# Any arguments are passed to `unmask` as they are.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
echo "run.sh: checking the build dependencies" >&2
"${repo_root}/scripts/install-deps.sh"
echo "run.sh: configuring and building the unmask program in ${build_dir} (the first build takes a few minutes)" >&2
cmake -S "${repo_root}" -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "${build_dir}" -j "${jobs}" --target unmask-cli >/dev/null
echo "run.sh: running ${build_dir}/apps/unmask" >&2
if [ "$#" -eq 0 ]; then
  set -- generate -p "And God said," --gen-length 64 --block-length 32 --steps 16 --compare
fi
exec "${build_dir}/apps/unmask" "$@"
