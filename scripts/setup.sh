#!/usr/bin/env bash
# Fresh machine -> espeak-ng + sox (Debian), .venv (Python 3.11) with espnet-softvc installed editable.
# Idempotent: a second run only checks. PYTHON=/path/to/python3.11 to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq espeak-ng sox >/dev/null
fi
[ -x .venv/bin/python ] || "${PYTHON:-python3.11}" -m venv .venv
# the venv's bundled pip (23.2.1): newer pips refuse espnet's ci_sdr dependency
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
echo "setup done: $(.venv/bin/python -c 'import espnet, torch, torchaudio; print("espnet", espnet.__version__, "torch", torch.__version__, "torchaudio", torchaudio.__version__)')"
