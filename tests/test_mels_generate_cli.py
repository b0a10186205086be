"""The original front end (DESIGN §2) bit for bit, and the softvc-mels / softvc-generate CLIs as a user runs them."""

import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio

from espnet_softvc.feats.log_mel import SoftVCLogMel
from espnet_softvc.softvc.model import AcousticModel
from espnet_softvc.softvc.original_format import load_original, save_original
from tests.conftest import REALDEV, assert_user_error, run_cli, run_main


def reference_mel(path):
    """DESIGN §2 composed directly from torchaudio (what bshall/acoustic-model mels.py computes)."""
    wav, sr = sf.read(path, dtype="float32")
    wav = torchaudio.functional.resample(torch.from_numpy(wav)[None], sr, 16000)
    melspec = torchaudio.transforms.MelSpectrogram(
        sample_rate=16000,
        n_fft=1024,
        win_length=1024,
        hop_length=160,
        center=False,
        power=1.0,
        norm="slaney",
        mel_scale="slaney",
        n_mels=128,
        f_min=0.0,
        f_max=8000.0,
    )
    wav = F.pad(wav.unsqueeze(0), (432, 432), "reflect")
    return torch.log(torch.clamp(melspec(wav), min=1e-5)).squeeze().numpy(), wav.shape[-1] - 864


@pytest.fixture(scope="module")
def mels_dir(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("mels")
    proc = run_cli("espnet_softvc.bin.mels", tiny_corpus / "wavs", out, "--nj", 2, check=True)
    assert "wrote 20 mels" in proc.stdout
    return out


def test_mels_match_original_front_end(tiny_corpus, mels_dir):
    wavs = sorted((tiny_corpus / "wavs").rglob("*.wav"))
    assert sf.info(wavs[0]).samplerate == 22050
    for wav_path in wavs:
        mel = np.load(mels_dir / wav_path.relative_to(tiny_corpus / "wavs").with_suffix(".npy"))
        ref, n_samples = reference_mel(wav_path)
        assert mel.dtype == np.float32 and mel.shape == (128, n_samples // 160)
        assert np.array_equal(mel, ref)
    assert {p.parent.name for p in mels_dir.rglob("*.npy")} == {"train", "dev"}


@pytest.mark.parametrize("name", ["speech_freesound_33711", "vctk_p240_00000", "vctk_p260_00000"])
def test_front_end_and_units_on_real_48_and_24_khz_audio(tmp_path, name):
    """Real recordings (48 kHz freesound, 24 kHz VCTK): softvc-mels equals the original front end, T = floor(S / 160),
    and a HuBERT-shaped content encoder gives N = floor(S / 320) units."""
    from espnet_softvc.units.hubert import ContentEncoder
    from espnet_softvc.units.soft_encoder import SMALL_BACKBONE
    from espnet_softvc.utils.io import load_audio

    (tmp_path / "in").mkdir()
    shutil.copy(REALDEV / f"{name}.wav", tmp_path / "in" / "a.wav")
    run_main("espnet_softvc.bin.mels", tmp_path / "in", tmp_path / "out", check=True)
    mel = np.load(tmp_path / "out" / "a.npy")
    ref, n_samples = reference_mel(REALDEV / f"{name}.wav")
    assert sf.info(REALDEV / f"{name}.wav").samplerate in (24000, 48000)
    assert mel.shape == (128, n_samples // 160) and np.array_equal(mel, ref)
    torch.manual_seed(0)
    encoder = ContentEncoder(SMALL_BACKBONE).eval()
    wav = load_audio(REALDEV / f"{name}.wav")
    with torch.no_grad():
        units = encoder.soft_units(wav[None])
    assert len(wav) == n_samples and units.shape == (1, n_samples // 320, 256)


def test_espnet_feats_extract_matches_cli(tiny_corpus, mels_dir):
    paths = sorted((tiny_corpus / "wavs" / "train").glob("*.wav"))[:2]
    wavs = [torch.from_numpy(sf.read(p, dtype="float32")[0]) for p in paths]
    batch = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    feats, lengths = SoftVCLogMel(fs=22050)(batch, torch.tensor([len(w) for w in wavs]))
    assert feats.shape[-1] == 128
    for feat, length, path in zip(feats, lengths, paths):
        expected = np.load(mels_dir / "train" / path.with_suffix(".npy").name).T
        assert length == expected.shape[0]
        assert np.abs(feat[:length].numpy() - expected).max() <= 1e-5


@pytest.mark.parametrize("kind", ["soft", "discrete"])
def test_generate_cli_round_trip(kind, tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / "model.pt"
    model = AcousticModel(discrete=kind == "discrete")
    save_original(model, ckpt)
    units_dir = tmp_path / "units"
    (units_dir / "sub").mkdir(parents=True)
    lengths = {"a": 7, "sub/b": 11}
    for name, n in lengths.items():
        units = np.random.randint(0, 100, n) if kind == "discrete" else np.random.randn(n, 256).astype(np.float32)
        np.save(units_dir / f"{name}.npy", units)
    out = tmp_path / "mels"
    run_main("espnet_softvc.bin.generate", kind, units_dir, out, "--checkpoint", ckpt, "--device", "cpu", check=True)
    reloaded = load_original(ckpt)
    for name, n in lengths.items():
        mel = np.load(out / f"{name}.npy")
        assert mel.shape == (128, 2 * n) and mel.dtype == np.float32
        expected = reloaded.generate(torch.from_numpy(np.load(units_dir / f"{name}.npy")))[0].T.numpy()
        assert np.abs(mel - expected).max() <= 1e-5
    assert not list(out.rglob("*.tmp")), "no temporary files left behind"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ckpts")
    for kind in ("soft", "discrete"):
        save_original(AcousticModel(discrete=kind == "discrete"), tmp / f"{kind}.pt")
    return tmp


BAD_UNITS = {
    "id_out_of_range": ("discrete", lambda: np.array([1, 2, 100]), "unit id out of range 0..99"),
    "negative_id": ("discrete", lambda: np.array([-1, 2]), "unit id out of range"),
    "soft_wrong_width": ("soft", lambda: np.zeros((5, 255), np.float32), "float (N, 256), got shape (5, 255)"),
    "float_to_discrete": (
        "discrete",
        lambda: np.zeros((5, 256), np.float32),
        "float units given to the discrete model",
    ),
    "int_to_soft": ("soft", lambda: np.zeros(5, np.int64), "integer units given to the soft model"),
    "empty": ("soft", lambda: np.zeros((0, 256), np.float32), "empty array"),
    "nan": ("soft", lambda: np.full((4, 256), np.nan, np.float32), "NaN or Inf"),
}


@pytest.mark.parametrize("case", sorted(BAD_UNITS))
def test_generate_bad_units(case, checkpoints, tmp_path):
    kind, make, message = BAD_UNITS[case]
    np.save(tmp_path / f"{case}.npy", make())
    proc = run_main(
        "espnet_softvc.bin.generate", kind, tmp_path, tmp_path / "out", "--checkpoint", checkpoints / f"{kind}.pt"
    )
    assert_user_error(proc, f"{case}.npy", message)
    assert not (tmp_path / "out" / f"{case}.npy").exists()


def test_generate_corrupt_npy_and_wrong_checkpoint(checkpoints, tmp_path):
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    proc = run_main(
        "espnet_softvc.bin.generate", "soft", tmp_path, tmp_path / "out", "--checkpoint", checkpoints / "soft.pt"
    )
    assert_user_error(proc, "corrupt.npy", "not a readable .npy array")
    np.save(tmp_path / "corrupt.npy", np.zeros((3, 256), np.float32))
    proc = run_main(
        "espnet_softvc.bin.generate", "discrete", tmp_path, tmp_path / "out", "--checkpoint", checkpoints / "soft.pt"
    )
    assert_user_error(proc, "soft.pt", "this is a soft acoustic model, not discrete")
    torch.save({"state_dict": {"w": torch.zeros(3)}}, tmp_path / "other.pt")
    proc = run_main(
        "espnet_softvc.bin.generate", "soft", tmp_path, tmp_path / "out", "--checkpoint", tmp_path / "other.pt"
    )
    assert_user_error(proc, "other.pt", "not a Soft-VC acoustic-model checkpoint")


def test_mels_bad_audio(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 22050)
    proc = run_main("espnet_softvc.bin.mels", tmp_path, tmp_path / "out")
    assert_user_error(proc, "empty.wav", "empty audio")
    (tmp_path / "empty.wav").unlink()
    (tmp_path / "notaudio.wav").write_text("this is not a wav file\n")
    proc = run_main("espnet_softvc.bin.mels", tmp_path, tmp_path / "out")
    assert_user_error(proc, "notaudio.wav", "not a readable audio file")
    proc = run_main("espnet_softvc.bin.mels", tmp_path / "missing", tmp_path / "out")
    assert_user_error(proc, "missing", "does not exist")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.npy"))
