"""Speech units: HuBERT parity with the original content encoder, offline k-means and soft encoder, dumps, errors.

The reference below restates bshall/hubert's ``Hubert`` from DESIGN.md section 4 with the original parameter
names; it does not import espnet_softvc. Random weights are saved in both original checkpoint formats.
"""

import shutil

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio
import yaml
from conftest import assert_user_error, run_cli
from sklearn.cluster import KMeans

ENCODE = "espnet_softvc.bin.encode"
TRAIN = "espnet_softvc.bin.train_units"
DUMP = "espnet_softvc.bin.dump_units"


class RefFeatureExtractor(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv1d(1, 512, 10, 5, bias=False)
        self.norm0 = nn.GroupNorm(512, 512)
        for i, (k, s) in enumerate([(3, 2)] * 4 + [(2, 2)] * 2, 1):
            setattr(self, f"conv{i}", nn.Conv1d(512, 512, k, s, bias=False))

    def forward(self, x):
        x = F.gelu(self.norm0(self.conv0(x)))
        for i in range(1, 7):
            x = F.gelu(getattr(self, f"conv{i}")(x))
        return x


class RefFeatureProjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(512)
        self.projection = nn.Linear(512, 768)

    def forward(self, x):
        return self.projection(self.norm(x))


class RefWeightNormConv(nn.Module):
    """Conv1d(768, 768, 128, padding=64, groups=16) with weight norm over dim 2: weight = g * v / ||v||."""

    def __init__(self):
        super().__init__()
        conv = nn.Conv1d(768, 768, 128, padding=64, groups=16)
        self.weight_v = nn.Parameter(conv.weight.detach().clone())
        self.weight_g = nn.Parameter(conv.weight.detach().norm(dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(conv.bias.detach().clone())

    def forward(self, x):
        weight = self.weight_g * self.weight_v / self.weight_v.norm(dim=(0, 1), keepdim=True)
        return F.conv1d(x, weight, self.bias, padding=64, groups=16)


class RefPositionalEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = RefWeightNormConv()

    def forward(self, x):
        x = self.conv(x.transpose(1, 2))
        return F.gelu(x[:, :, :-1]).transpose(1, 2)


class RefEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = lambda: nn.TransformerEncoderLayer(768, 12, 3072, activation="gelu", batch_first=True)  # noqa: E731
        self.layers = nn.ModuleList([layer() for _ in range(12)])

    def forward(self, x, output_layer=None):
        for layer in self.layers[:output_layer]:
            x = layer(x)
        return x


class RefHubert(nn.Module):
    """bshall/hubert Hubert: units(wav (1, 1, S)) pads 40 + 40 samples; soft = proj(all 12 layers)."""

    def __init__(self, num_labels):
        super().__init__()
        self.feature_extractor = RefFeatureExtractor()
        self.feature_projection = RefFeatureProjection()
        self.positional_embedding = RefPositionalEmbedding()
        self.norm = nn.LayerNorm(768)
        self.encoder = RefEncoder()
        self.proj = nn.Linear(768, 256)
        self.masked_spec_embed = nn.Parameter(torch.rand(768))
        self.label_embedding = nn.Embedding(num_labels, 256)

    def encode(self, wav, layer=None):
        x = self.feature_extractor(F.pad(wav, (40, 40)))
        x = self.feature_projection(x.transpose(1, 2))
        x = self.norm(x + self.positional_embedding(x))
        return self.encoder(x, output_layer=layer)

    def soft_units(self, wav):
        return self.proj(self.encode(wav))


def ref_kmeans(checkpoint):
    """bshall/hubert's kmeans100(): a sklearn KMeans whose fitted attributes come from the file."""
    kmeans = KMeans(100)
    kmeans.__dict__["n_features_in_"] = checkpoint["n_features_in_"]
    kmeans.__dict__["_n_threads"] = checkpoint["_n_threads"]
    kmeans.__dict__["cluster_centers_"] = checkpoint["cluster_centers_"].numpy()
    return kmeans


def read_16k(path):
    wav, sr = sf.read(path, dtype="float32")
    return torchaudio.functional.resample(torch.from_numpy(wav), sr, 16000)


def random_hubert(num_labels, seed):
    """A reference model with every parameter random (norm gains, biases and weight-norm g included)."""
    torch.manual_seed(seed)
    model = RefHubert(num_labels).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
            elif name.endswith("weight_g"):
                p.mul_(1 + 0.2 * torch.rand_like(p))
    return model


@pytest.fixture(scope="module")
def hubert_files(tmp_path_factory, tiny_corpus):
    """Random HuBERT-Soft (v0.1 bare) and HuBERT-Discrete (v0.2, 504 labels) files, a kmeans100 file, 2 wavs."""
    out = tmp_path_factory.mktemp("hubert")
    wav_dir = out / "wavs"
    (wav_dir / "sub").mkdir(parents=True)
    train = sorted((tiny_corpus / "wavs" / "train").glob("*.wav"))
    shutil.copy(train[0], wav_dir / "a.wav")
    shutil.copy(train[1], wav_dir / "sub" / "b.wav")
    wavs = {name: read_16k(wav_dir / name) for name in ("a.wav", "sub/b.wav")}

    soft, discrete = random_hubert(100, seed=0), random_hubert(504, seed=1)
    torch.save(soft.state_dict(), out / "soft-v0.1.pt")
    torch.save({"hubert": {f"module.{k}": v for k, v in soft.state_dict().items()}}, out / "soft-v0.2.pt")
    torch.save({"hubert": {f"module.{k}": v for k, v in discrete.state_dict().items()}}, out / "discrete-v0.2.pt")
    with torch.inference_mode():
        ref = {
            name: {
                "layer7": discrete.encode(wav[None, None], layer=7)[0],
                "soft": soft.soft_units(wav[None, None])[0],
                "layer7_soft": soft.encode(wav[None, None], layer=7)[0],
            }
            for name, wav in wavs.items()
        }
    # centres near real frames (so many ids occur), as the kmeans100 file stores them
    frames = torch.cat([r["layer7"] for r in ref.values()])
    centers = frames[torch.randperm(len(frames), generator=torch.Generator().manual_seed(0))[:100]]
    kmeans = {"n_features_in_": 768, "_n_threads": 4, "cluster_centers_": centers + 0.05 * torch.randn_like(centers)}
    torch.save(kmeans, out / "kmeans100.pt")
    for r in ref.values():
        r["labels"] = ref_kmeans(kmeans).predict(r["layer7"].numpy())
    return {"dir": out, "wav_dir": wav_dir, "wavs": wavs, "ref": ref}


@pytest.mark.parametrize("fmt", ["v0.1", "v0.2"])
def test_hubert_matches_original(hubert_files, fmt):
    from espnet_softvc.units.hubert import load_content_encoder

    model, kind = load_content_encoder(hubert_files["dir"] / f"soft-{fmt}.pt")
    assert kind == "hubert-soft"
    for name, wav in hubert_files["wavs"].items():
        ref = hubert_files["ref"][name]
        with torch.inference_mode():
            soft, layer7 = model.soft_units(wav[None])[0], model.encode(wav[None], layer=7)[0]
        assert soft.shape == ref["soft"].shape == (len(wav) // 320, 256)
        assert (soft - ref["soft"]).abs().max() <= 1e-4
        assert (layer7 - ref["layer7_soft"]).abs().max() <= 1e-4


@pytest.mark.slow
def test_encode_cli_matches_original(hubert_files, tmp_path):
    files, wav_dir = hubert_files["dir"], hubert_files["wav_dir"]
    run_cli(ENCODE, "soft", wav_dir, tmp_path / "soft", "--checkpoint", files / "soft-v0.1.pt", "--nj", 2, check=True)
    run_cli(
        ENCODE,
        "discrete",
        wav_dir,
        tmp_path / "discrete",
        "--checkpoint",
        files / "discrete-v0.2.pt",
        "--kmeans",
        files / "kmeans100.pt",
        check=True,
    )
    for name, ref in hubert_files["ref"].items():
        soft = np.load(tmp_path / "soft" / name.replace(".wav", ".npy"))
        labels = np.load(tmp_path / "discrete" / name.replace(".wav", ".npy"))
        assert soft.dtype == np.float32 and soft.shape == (len(hubert_files["wavs"][name]) // 320, 256)
        assert np.abs(soft - ref["soft"].numpy()).max() <= 1e-4
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(labels, ref["labels"])
    assert len(set(np.concatenate([r["labels"] for r in hubert_files["ref"].values()]))) > 10


@pytest.fixture(scope="module")
def offline(tmp_path_factory, tiny_corpus):
    """softvc-train-units on the tiny corpus (train dir, dev dir), few steps."""
    out = tmp_path_factory.mktemp("offline")
    wavs = tiny_corpus / "wavs"
    run_cli(
        TRAIN,
        wavs / "train",
        out,
        "--dev",
        wavs / "dev",
        "--num_clusters",
        100,
        "--steps",
        30,
        "--warmup",
        1,
        "--lr",
        2e-3,
        "--batch_size",
        4,
        "--segment",
        50,
        "--valid_interval",
        30,
        check=True,
    )
    data = tmp_path_factory.mktemp("data")
    for split in ("train", "dev"):
        paths = sorted((wavs / split).glob("*.wav"))
        (data / split).mkdir()
        (data / split / "wav.scp").write_text("".join(f"{p.stem} {p}\n" for p in paths))
    return out, data


@pytest.mark.slow
def test_offline_kmeans_units(offline, tmp_path):
    out, data = offline
    proc = run_cli(DUMP, "discrete", data / "train", tmp_path / "train", "--kmeans", out / "kmeans.pt", "--nj", 2)
    assert proc.returncode == 0, proc.stderr[-2000:]
    units = dict(kaldiio.load_scp(str(tmp_path / "train" / "units.scp")))
    paths = dict(line.split() for line in (data / "train" / "wav.scp").read_text().splitlines())
    assert sorted(units) == sorted(paths)
    for utt, ids in units.items():
        assert ids.dtype == np.int32 and ids.shape == (len(read_16k(paths[utt])) // 320,)
    assert set(np.concatenate(list(units.values()))) == set(range(100))  # every configured id is used on train
    text = dict(line.split(maxsplit=1) for line in (tmp_path / "train" / "text").read_text().splitlines())
    assert {u: [int(t) for t in text[u].split()] for u in text} == {u: ids.tolist() for u, ids in units.items()}
    tokens = (tmp_path / "train" / "tokens.txt").read_text().split()
    assert tokens == ["<blank>", "<unk>", *map(str, range(100)), "<sos/eos>"]
    # a rerun keeps finished shards; the dev set uses the k-means learned on train
    ark = tmp_path / "train" / "data" / "units.1.ark"
    mtime = ark.stat().st_mtime_ns
    run_cli(DUMP, "discrete", data / "train", tmp_path / "train", "--kmeans", out / "kmeans.pt", "--nj", 2, check=True)
    assert ark.stat().st_mtime_ns == mtime
    run_cli(DUMP, "discrete", data / "dev", tmp_path / "dev", "--kmeans", out / "kmeans.pt", check=True)
    assert len((tmp_path / "dev" / "text").read_text().splitlines()) == 2


@pytest.mark.slow
def test_soft_encoder_trains_and_encodes(offline, tmp_path):
    out, data = offline
    history = yaml.safe_load((out / "train_log.yaml").read_text())["soft_encoder"]["history"]
    losses = [entry["loss"] for entry in history]
    assert len(losses) == 30 and np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.1
    assert "dev_accuracy" in history[-1]
    proc = run_cli(DUMP, "soft", data / "dev", tmp_path / "dev", "--checkpoint", out / "soft_encoder.pt")
    assert proc.returncode == 0, proc.stderr[-2000:]
    paths = dict(line.split() for line in (data / "dev" / "wav.scp").read_text().splitlines())
    for utt, units in kaldiio.load_scp(str(tmp_path / "dev" / "units.scp")).items():
        assert units.dtype == np.float32 and units.shape == (len(read_16k(paths[utt])) // 320, 256)
        assert np.isfinite(units).all() and units.std() > 0


@pytest.mark.slow
def test_user_errors(offline, hubert_files, tmp_path):
    out, _ = offline
    kmeans = out / "kmeans.pt"
    (tmp_path / "empty").mkdir()
    sf.write(tmp_path / "empty" / "x.wav", np.zeros(0, dtype=np.float32), 16000)
    proc = run_cli(ENCODE, "discrete", tmp_path / "empty", tmp_path / "o", "--kmeans", kmeans)
    assert_user_error(proc, "x.wav", "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "y.wav").write_text("not audio at all\n")
    proc = run_cli(ENCODE, "discrete", tmp_path / "text", tmp_path / "o", "--kmeans", kmeans)
    assert_user_error(proc, "y.wav", "audio")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "wav.scp").write_text(f"utt1 {tmp_path / 'text' / 'y.wav'}\n")
    assert_user_error(run_cli(DUMP, "discrete", tmp_path / "data", tmp_path / "d", "--kmeans", kmeans), "utt1", "audio")
    narrow = {"n_features_in_": 39, "_n_threads": 1, "cluster_centers_": torch.randn(100, 39)}  # no "features": HuBERT
    torch.save(narrow, tmp_path / "kmeans39.pt")
    proc = run_cli(
        ENCODE,
        "discrete",
        hubert_files["wav_dir"],
        tmp_path / "o",
        "--kmeans",
        tmp_path / "kmeans39.pt",
        "--checkpoint",
        hubert_files["dir"] / "discrete-v0.2.pt",
    )
    assert_user_error(proc, "kmeans39.pt", "width 39")
    proc = run_cli(
        ENCODE,
        "soft",
        hubert_files["wav_dir"],
        tmp_path / "o",
        "--checkpoint",
        hubert_files["dir"] / "discrete-v0.2.pt",
    )
    assert_user_error(proc, "discrete-v0.2.pt", "HuBERT-Discrete")
    torch.save({"something": torch.zeros(3)}, tmp_path / "other.pt")
    proc = run_cli(ENCODE, "soft", hubert_files["wav_dir"], tmp_path / "o", "--checkpoint", tmp_path / "other.pt")
    assert_user_error(proc, "other.pt", "not a bshall/hubert checkpoint")
