"""Shared fixtures and helpers: a small corpus, Soft-VC training dumps made from it, and running our CLIs as a
user does. Test modules import nothing from each other; what two of them need lives here.

Markers: ``slow`` (trains models, runs the recipe; ``pytest -m "not slow"`` is the fast subset).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

os.environ.setdefault("NLTK_DATA", "/nonexistent")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:  # -n N: each worker (and the CLIs it starts) gets its share of the cores
    share = max(1, os.cpu_count() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(share))
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

REPO = Path(__file__).resolve().parents[1]
TRAIN = "espnet_softvc.bin.softvc_train"
FRAMES = 80  # mel frames kept per utterance of the training dumps (40 units)
NUM_TRAIN = 8


# The longest files first (the recipe's ~15 min, then the killed stages'): with -n 2 and --dist loadfile (pytest.ini)
# one worker runs them while the other takes the rest; the rest keep their order.
FIRST = ("test_recipe.py", "test_faults.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: FIRST.index(item.path.name) if item.path.name in FIRST else len(FIRST))


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """LJSpeech-layout corpus of 20 utterances of flite's slt (18 train, 2 dev: TINY-0010, TINY-0020), 22.05 kHz."""
    from espnet_softvc.data.corpus import build

    out = tmp_path_factory.mktemp("tiny_corpus")
    build(out, num_utts=20, dev_every=10, others=(), num_test=0, multi=())
    return out


@pytest.fixture(scope="session")
def speech(tiny_corpus):
    """The tiny corpus' training utterances as 16 kHz float64 waveforms (noise mixing, denoiser pairs)."""
    from espnet_softvc.utils.io import find_files, load_audio

    return [load_audio(p).double().numpy() for p in find_files(tiny_corpus / "wavs" / "train", ".wav")]


@pytest.fixture(scope="session")
def dataset(tiny_corpus, tmp_path_factory):
    """Original Soft-VC layout: mels/{train,dev}/X.npy (128, T), discrete/ (N,) int64, soft/ (N, 256) float32.

    Units made here from the mels (k-means of mel-frame pairs for discrete, a random projection for soft), cut to
    0.8 s so that the full-size model trains in seconds per epoch."""
    from sklearn.cluster import KMeans

    from espnet_softvc.feats.log_mel import wav_to_mel
    from espnet_softvc.utils.io import find_files, save_npy

    out = tmp_path_factory.mktemp("dataset")
    wavs = [p for p in find_files(tiny_corpus / "wavs", ".wav") if p.parent.name == "dev"]
    wavs += [p for p in find_files(tiny_corpus / "wavs", ".wav") if p.parent.name == "train"][:NUM_TRAIN]
    mels = {p.relative_to(tiny_corpus / "wavs").with_suffix(".npy"): wav_to_mel(p)[:, :FRAMES] for p in wavs}
    pairs = {k: m.reshape(128, -1, 2).mean(-1).T for k, m in mels.items()}  # (N, 128), N = T / 2
    train = np.concatenate([f for k, f in pairs.items() if k.parts[0] == "train"])
    kmeans = KMeans(100, n_init=1, random_state=0).fit(train)
    projection = np.random.default_rng(0).standard_normal((128, 256)).astype(np.float32) / 128**0.5
    for k, mel in mels.items():
        save_npy(out / "mels" / k, mel)
        save_npy(out / "discrete" / k, kmeans.predict(pairs[k]).astype(np.int64))
        save_npy(out / "soft" / k, ((pairs[k] - train.mean(0)) / train.std(0)) @ projection)
    return out


@pytest.fixture(scope="session")
def dumps(dataset, tmp_path_factory):
    """ESPnet dumps of ``dataset``: ``<kind>/<split>/{units,feats}.scp`` and ``feats_shape``."""
    from espnet_softvc.bin.train import dump_split

    out = tmp_path_factory.mktemp("dump")
    for kind in ("discrete", "soft"):
        for split in ("train", "dev"):
            dump_split(dataset, kind, split, out / kind / split)
    return out


def task_args(dump, out, kind, *extra):
    """``softvc_train`` options for the tiny config of ``kind`` on ``dump`` (``dumps``), output ``out``."""
    args = ["--config", REPO / f"conf/tuning/train_softvc_{kind}_tiny.yaml", "--output_dir", out, "--batch_size", 4]
    args += ["--num_iters_per_epoch", 40]  # the tests' epochs, whatever the tiny tier's budget
    args += ["--tts_conf", "free_running_valid=true"]  # the tests read the trainer's l1_free (the tiny tier skips it)
    for mode, split in (("train", "train"), ("valid", "dev")):
        for name in ("units", "feats"):
            args += [f"--{mode}_data_path_and_name_and_type", f"{dump / kind / split / name}.scp,{name},kaldi_ark"]
        args += [f"--{mode}_shape_file", dump / kind / split / "feats_shape"]
    return [*args, *extra]


def dev_units(dumps, kind="discrete"):
    """{utt: units tensor} of the dev dump of ``kind``."""
    return {k: torch.from_numpy(v) for k, v in kaldiio.load_scp(str(dumps / kind / "dev" / "units.scp")).items()}


def epoch_results(log):
    """ESPnet's "<N>epoch results: [train] k=v, ... [valid] k=v, ..." log lines -> {N: {"train": {k: v}, ...}}."""
    return {
        int(epoch): {
            mode: {k: float(v) for k, v in re.findall(r"(\w+)=([-+\d.e]+)", stats)}
            for mode, stats in re.findall(r"\[(\w+)\] ([^\[]*)", line)
        }
        for epoch, line in re.findall(r"(\d+)epoch results: (.*)", log)
    }


RECIPE_FILES = ("run.sh", "softvc.sh", "cmd.sh", "path.sh", "db.sh", "local", "utils", "pyscripts", "RESULTS.md")


def copy_recipe(dest):
    """The recipe's own files (no data, dump, exp) in ``dest``, with conf -> the repository's conf/."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for name in RECIPE_FILES:
        src = REPO / "egs/ljspeech_softvc" / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    (dest / "conf").symlink_to(REPO / "conf")
    return dest


def recipe_env():
    """The environment of a user running the recipe with this interpreter's venv."""
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    return dict(os.environ, PATH=path, VIRTUAL_ENV=sys.prefix, REALDEV=str(REPO / "tests/data/realdev"))


def run_cli(module, *args, check=None):
    """Run ``python -m module args`` and return the CompletedProcess (text output)."""
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True)
    if check is not None:
        assert (proc.returncode == 0) == check, proc.stderr[-3000:]
    return proc


def run_main(module, *args, check=None):
    """``run_cli`` in this process, without an interpreter's start-up: ``module.main(args)`` with its output
    captured, as a CompletedProcess. An exception the CLI lets through (a traceback) fails the test."""
    import contextlib
    import importlib
    import io

    out, err, code, threads = io.StringIO(), io.StringIO(), 0, torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            importlib.import_module(module).main(list(map(str, args)))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        torch.set_num_threads(threads)  # a CLI may set its own
    proc = subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())
    if check is not None:
        assert (code == 0) == check, proc.stderr[-3000:]
    return proc


def assert_user_error(proc, *needles):
    """A user error: non-zero exit, a one-line ``error: ...`` naming the problem, no traceback."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) >= 1, proc.stderr
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])


REALDEV = Path(__file__).parent / "data" / "realdev"  # real recordings (README there): check on them, never tune


@pytest.fixture(scope="session")
def slt_wavs(tmp_path_factory):
    """Four held-out ARCTIC prompts read by flite's slt (22.05 kHz) and their transcripts: {utt: (path, text)}."""
    from espnet_softvc.data.corpus import sentences, speak

    out = tmp_path_factory.mktemp("slt")
    items = {}
    for i, text in enumerate(sentences()[600:604]):
        speak(text, out / f"slt{i}.wav", "slt")
        items[f"slt{i}"] = (out / f"slt{i}.wav", text)
    return items


def module_prefixed(model):
    """A state dict as the original HiFi-GAN checkpoints save it (DataParallel's ``module.`` prefix)."""
    return {f"module.{k}": v for k, v in model.state_dict().items()}


# ---- small models in the original formats: our offline encoders, small acoustic models, a small HiFi-GAN ----
@pytest.fixture(scope="session")
def small(tmp_path_factory):
    from originals import OriginalGenerator

    from espnet_softvc.softvc.model import AcousticModel
    from espnet_softvc.softvc.original_format import save_original
    from espnet_softvc.units.hubert import ContentEncoder
    from espnet_softvc.units.soft_encoder import SMALL_BACKBONE

    out = tmp_path_factory.mktemp("small")
    torch.manual_seed(0)
    torch.save(ContentEncoder(SMALL_BACKBONE).checkpoint(), out / "soft_encoder.pt")
    centers = torch.randn(100, 39) * 5
    torch.save({"n_features_in_": 39, "_n_threads": 1, "cluster_centers_": centers, "features": "mfcc"}, out / "km.pt")
    sizes = dict(encoder_prenet=32, encoder_channels=32, decoder_prenet=32, decoder_hidden=32)
    for kind in ("soft", "discrete"):
        save_original(AcousticModel(discrete=kind == "discrete", **sizes), out / f"acoustic-{kind}.pt")
    torch.save(module_prefixed(OriginalGenerator(channels=32)), out / "hifigan-small.pt")  # the format, not the size
    return out


def small_s2s(small, kind="soft", **kwargs):
    """``Speech2Speech`` of the ``small`` models of ``kind``."""
    from espnet_softvc.bin.vc_inference import Speech2Speech

    encoder = str(small / ("soft_encoder.pt" if kind == "soft" else "km.pt"))
    return Speech2Speech(model_file=str(small / f"acoustic-{kind}.pt"), **{"content_encoder": encoder, **kwargs})
