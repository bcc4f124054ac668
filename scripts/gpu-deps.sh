#!/usr/bin/env bash
# Copies what a from-source build needs besides CUDA and CMake into gpu-deps/
# (ignored by git; about 5 MB): the GoogleTest sources and the nlohmann-json
# and CLI11 headers of this machine's Debian packages. Carried to a machine
# without a package registry (the lent GPU machines), they let
# scripts/gpu-check.sh configure and build everything there; CMake uses
# gpu-deps/ (UNMASK_DEPS_DIR) for whatever the system lacks.
#   scripts/gpu-deps.sh      then run(..., carry=["gpu-deps"])
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"${repo_root}/scripts/install-deps.sh" >/dev/null
deps="${repo_root}/gpu-deps"
rm -rf "${deps}"
mkdir -p "${deps}/include"
cp -r /usr/src/googletest "${deps}/googletest"
cp -r /usr/include/nlohmann "${deps}/include/nlohmann"
cp -r /usr/include/CLI "${deps}/include/CLI"
du -sh "${deps}"
