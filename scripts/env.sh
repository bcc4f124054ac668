# Sourced by the scripts: repository root, build directory, and nvcc on PATH
# when the CUDA toolkit sits in its default place.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${UNMASK_BUILD_DIR:-${repo_root}/build}"
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:${PATH}"
fi
jobs="$(nproc 2>/dev/null || echo 2)"
