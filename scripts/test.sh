#!/usr/bin/env bash
# Builds unmask (CUDA targets too when nvcc exists) and runs every test.
#   scripts/test.sh [extra cmake arguments]
# Build directory: $UNMASK_BUILD_DIR or build/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"${repo_root}/scripts/install-deps.sh"
cmake -S "${repo_root}" -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "${build_dir}" -j "${jobs}"
ctest --test-dir "${build_dir}" --output-on-failure -j "${jobs}"
