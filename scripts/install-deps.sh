#!/usr/bin/env bash
# Installs the Debian packages unmask builds and tests with, only those
# missing: a C++17 compiler, CMake, Ninja, GoogleTest, Google Benchmark, CLI11,
# nlohmann-json, OpenBLAS and cpp-httplib (for `unmask serve`). Uses sudo when not run as root. The CUDA
# toolkit is optional and not installed here: when nvcc is present (on PATH
# or in /usr/local/cuda/bin) the CUDA targets are built too.
set -euo pipefail

packages=(g++ cmake ninja-build pkg-config googletest libgtest-dev libbenchmark-dev nlohmann-json3-dev libopenblas-dev libcli11-dev libcpp-httplib-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
