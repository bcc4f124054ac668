#!/usr/bin/env bash
# The server's tests with real clients (tests/serve/*.py): the official openai
# Python client, raw sockets for disconnects, schemathesis against the
# server's own OpenAPI document, and the canvas page in headless Chromium.
#   tests/serve/run.sh [pytest arguments]
# Uses the program of $UNMASK_BUILD_DIR (default build/: run scripts/test.sh
# first); installs python3-venv and chromium from Debian when missing (sudo
# when not root) and makes .venv-serve (or $UNMASK_SERVE_VENV) with the pins
# of tools/requirements-serve.txt.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="${UNMASK_BUILD_DIR:-${repo_root}/build}"
venv="${UNMASK_SERVE_VENV:-${repo_root}/.venv-serve}"
export UNMASK_BIN="${UNMASK_BIN:-${build_dir}/apps/unmask}"
test -x "${UNMASK_BIN}" || { echo "tests/serve: no program at ${UNMASK_BIN} (build first: scripts/test.sh)"; exit 1; }

packages=(python3-venv chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "tests/serve: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
if [ ! -x "${venv}/bin/python" ]; then
  /usr/bin/python3 -m venv "${venv}"
fi
"${venv}/bin/python" -m pip install --disable-pip-version-check -q -r "${repo_root}/tools/requirements-serve.txt"
export UNMASK_SCHEMATHESIS="${venv}/bin/schemathesis"
cd "${repo_root}"
exec "${venv}/bin/python" -m pytest -q -p no:cacheprovider tests/serve "$@"
