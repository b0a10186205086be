"""Limits (issue 11): a 10-minute utterance through the CLIs in bounded memory; over-long training utterances skipped.

Peak memory is the ``ru_maxrss`` of each CLI process (``os.wait4``). A process with torch and a model loaded
starts at about 0.5 GB; the bounds below leave room for that and would be far exceeded by unchunked HuBERT
(attention over 30000 frames) or anything quadratic in the length.
"""

import os
import re
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch

from espnet_softvc.softvc.model import AcousticModel
from espnet_softvc.softvc.original_format import save_original
from espnet_softvc.units.hubert import ContentEncoder
from espnet_softvc.units.soft_encoder import SMALL_BACKBONE
from espnet_softvc.utils.io import save_npy
from tests.conftest import assert_user_error, run_cli

MINUTES = 10
GB = 1024**3


PEAK = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)


def run_measured(module, *args):
    """Run ``python -m module args``; returns (exit code, output, peak resident memory in bytes).

    A small wrapper process starts it and reports its children's ``ru_maxrss``: a child of this (large) pytest
    process would count this process's peak too (ru_maxrss keeps the peak of the image before ``exec``)."""
    cmd = [sys.executable, "-c", PEAK, sys.executable, "-m", module, *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    *output, peak = proc.stderr.splitlines()
    return proc.returncode, proc.stdout + "\n".join(output), int(peak) * 1024


def long_wav(path, minutes=MINUTES, sample_rate=16000):
    """A speech-like signal (noise bursts under a 4 Hz envelope) of ``minutes`` minutes."""
    rng = np.random.default_rng(0)
    t = np.arange(int(minutes * 60 * sample_rate)) / sample_rate
    wav = 0.1 * rng.standard_normal(t.size).astype(np.float32) * (np.sin(2 * np.pi * 4 * t) > 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wav, sample_rate, subtype="PCM_16")
    return wav.size


pytestmark = pytest.mark.slow  # 10-minute inputs, training


def test_ten_minute_wav_encodes_in_chunks_and_gives_mels(tmp_path):
    samples = long_wav(tmp_path / "wavs" / "long.wav")
    torch.manual_seed(0)
    torch.save(ContentEncoder(SMALL_BACKBONE).checkpoint(), tmp_path / "encoder.pt")
    code, log, peak = run_measured(
        "espnet_softvc.bin.encode",
        "soft",
        tmp_path / "wavs",
        tmp_path / "units",
        "--checkpoint",
        tmp_path / "encoder.pt",
    )
    assert code == 0, log[-3000:]
    units = np.load(tmp_path / "units" / "long.npy")
    assert units.shape == (samples // 320, 256) and np.isfinite(units).all()
    assert peak < 1.5 * GB, f"softvc-encode peak {peak / GB:.2f} GB"

    code, log, peak = run_measured("espnet_softvc.bin.mels", tmp_path / "wavs", tmp_path / "mels")
    assert code == 0, log[-3000:]
    assert np.load(tmp_path / "mels" / "long.npy").shape == (128, samples // 160)
    assert peak < 1.5 * GB, f"softvc-mels peak {peak / GB:.2f} GB"


def test_chunked_encoding_matches_one_pass():
    torch.manual_seed(0)
    encoder = ContentEncoder(SMALL_BACKBONE).eval()
    wav = torch.randn(1, 16000 * 5 + 77) * 0.1
    with torch.inference_mode():
        whole = encoder.encode(wav, chunk=10**6)
        chunked = encoder.encode(wav, chunk=60, context=20)
        assert torch.equal(encoder.encode(wav, chunk=whole.size(1)), whole)  # one chunk: the one-pass path
    assert chunked.shape == whole.shape == (1, wav.size(1) // 320, 192)
    assert torch.nn.functional.cosine_similarity(chunked, whole, dim=-1).min() > 0.99


def test_one_minute_of_units_generates_in_linear_memory(tmp_path):
    """The AR decoder is sequential (about 1 ms per frame in int8 on one core: 10 minutes take a minute), so
    this runs 1 minute; its memory beyond the model is a few hundred bytes per frame per layer, never T x T."""
    torch.manual_seed(0)
    save_original(AcousticModel(discrete=True), tmp_path / "acoustic.pt")
    save_npy(tmp_path / "units" / "minute.npy", np.random.default_rng(0).integers(0, 100, 3000))
    code, log, peak = run_measured(
        "espnet_softvc.bin.generate",
        "discrete",
        tmp_path / "units",
        tmp_path / "mels",
        "--checkpoint",
        tmp_path / "acoustic.pt",
        "--device",
        "cpu",
        "--precision",
        "int8",
    )
    assert code == 0, log[-3000:]
    mel = np.load(tmp_path / "mels" / "minute.npy")
    assert mel.shape == (128, 6000) and np.isfinite(mel).all()
    assert peak < 1.2 * GB, f"softvc-generate peak {peak / GB:.2f} GB"


# --- training: --max_frames -----------------------------------------------------------------------------------------
def write_dump(out, lengths):
    """Random discrete units (N,) and mels (2N, 128) for utterances of ``lengths`` units, with feats_shape."""
    rng = np.random.default_rng(0)
    out.mkdir(parents=True)
    ids = [f"utt{i:02d}" for i in range(len(lengths))]
    with (
        kaldiio.WriteHelper(f"ark,scp:{out}/units.ark,{out}/units.scp") as units,
        kaldiio.WriteHelper(f"ark,scp:{out}/feats.ark,{out}/feats.scp") as feats,
    ):
        for utt, n in zip(ids, lengths):
            units[utt] = rng.integers(0, 100, n).astype(np.int32)
            feats[utt] = rng.standard_normal((2 * n, 128)).astype(np.float32)
    (out / "feats_shape").write_text("".join(f"{u} {2 * n},128\n" for u, n in zip(ids, lengths)))


def train_args(tmp_path, *extra):
    args = [
        "--output_dir",
        tmp_path / "exp",
        "--max_epoch",
        1,
        "--batch_size",
        2,
        "--num_att_plot",
        0,
        "--tts_conf",
        "discrete=true",
        "--ngpu",
        0,
    ]
    for mode, split in (("train", "train"), ("valid", "dev")):
        for name in ("units", "feats"):
            args += [f"--{mode}_data_path_and_name_and_type", f"{tmp_path / split / name}.scp,{name},kaldi_ark"]
        args += [f"--{mode}_shape_file", tmp_path / split / "feats_shape"]
    return [*args, *extra]


def test_training_skips_utterances_over_max_frames_with_a_warning(tmp_path):
    write_dump(tmp_path / "train", [20, 25, 150, 30, 22])  # utt02: 300 mel frames
    write_dump(tmp_path / "dev", [20, 24])
    proc = run_cli("espnet_softvc.bin.softvc_train", *train_args(tmp_path, "--max_frames", 200), check=True)
    assert "[train] utt02 skipped: 300 frames > --max_frames 200" in proc.stderr
    assert len(re.findall(r"skipped: \d+ frames", proc.stderr)) == 1
    sizes = re.search(r"\[train\] mini-batch sizes summary: N-batch=(\d+), mean=([\d.]+)", proc.stderr)
    assert round(int(sizes[1]) * float(sizes[2])) == 4  # 4 of the 5 train utterances in the batches
    assert any(k.startswith("tts.model.") for k in torch.load(tmp_path / "exp" / "1epoch.pth", weights_only=True))

    proc = run_cli("espnet_softvc.bin.softvc_train", *train_args(tmp_path, "--max_frames", 30))
    assert_user_error(proc, "every utterance is longer than --max_frames 30")
