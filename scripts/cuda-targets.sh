#!/usr/bin/env bash
# Prints the CUDA-only targets of a configured Ninja build folder (the CUDA
# tests and the GPU benchmarks), one path per line, for building just those:
#   cmake --build BUILD --target $(scripts/cuda-targets.sh BUILD)
set -euo pipefail
build="${1:?usage: scripts/cuda-targets.sh BUILD_DIR}"
cd "${build}"
ninja -t targets all | sed -n 's/^\(tests\/cuda\/test_cuda_[a-z_0-9]*\|bench\/bench_[a-z_0-9]*cuda[a-z_0-9]*\): .*/\1/p' | sort -u
