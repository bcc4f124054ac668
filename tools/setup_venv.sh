#!/usr/bin/env bash
# Create the Python environment used by tools/make_goldens.py (and by
# tools/train_tiny.py / tools/plot_tiny.py, whose extra pins are in
# tools/requirements-train.txt).
#
#   tools/setup_venv.sh && .venv-tools/bin/python tools/make_goldens.py
#
# - installs Debian's python3-venv, python3-torch (1.13.1, CPU), python3-numpy,
#   python3-yaml, python3-requests and python3-matplotlib (for
#   tools/plot_tiny.py) if they are missing (sudo only if not root);
# - creates .venv-tools at the repository root with --system-site-packages (so it
#   sees Debian's torch) if it does not exist yet;
# - pip installs the exact pins in tools/requirements-goldens.txt.
# Safe to run repeatedly.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv-tools"
reqs="${repo_root}/tools/requirements-goldens.txt"

apt_pkgs=(python3-venv python3-torch python3-numpy python3-yaml python3-requests python3-matplotlib)
missing=()
for p in "${apt_pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup_venv: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    sudo_cmd=()
  else
    sudo_cmd=(sudo)
  fi
  "${sudo_cmd[@]}" apt-get update
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [ ! -x "${venv}/bin/python" ]; then
  echo "setup_venv: creating ${venv}"
  /usr/bin/python3 -m venv --system-site-packages "${venv}"
fi

"${venv}/bin/python" -m pip install --disable-pip-version-check -q -r "${reqs}"

"${venv}/bin/python" - <<'PY'
import torch, transformers, safetensors
from transformers import LlamaForCausalLM  # noqa: F401
print(f"setup_venv: OK (torch {torch.__version__}, transformers {transformers.__version__}, "
      f"safetensors {safetensors.__version__})")
PY
