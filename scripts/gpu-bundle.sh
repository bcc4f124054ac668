#!/usr/bin/env bash
# Builds the CUDA tests and GPU benchmarks for one architecture (default
# sm_90: H100 / H200) in build-gpu and copies just the executables into
# gpu-bundle/ (tests/cuda, bench), small enough to carry to a GPU machine that
# lacks GoogleTest, Google Benchmark or CLI11 (GoogleTest links statically;
# the binaries need only the CUDA runtime and cuBLASLt of the CUDA install).
# There: scripts/gpu-check.sh gpu-bundle
#   scripts/gpu-bundle.sh [ARCH]
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
arch="${1:-90}"
cd "${repo_root}"
source scripts/env.sh
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${arch}" \
  -DUNMASK_BUILD_APPS=OFF -DUNMASK_BUILD_EXAMPLES=OFF >/dev/null
targets=$(scripts/cuda-targets.sh build-gpu)
cmake --build build-gpu -j "$(nproc)" --target ${targets}
rm -rf gpu-bundle
mkdir -p gpu-bundle/tests/cuda gpu-bundle/bench
for t in ${targets}; do cp "build-gpu/${t}" "gpu-bundle/${t}"; done
strip gpu-bundle/tests/cuda/* gpu-bundle/bench/* 2>/dev/null || true
du -sh gpu-bundle
ls gpu-bundle/tests/cuda gpu-bundle/bench
