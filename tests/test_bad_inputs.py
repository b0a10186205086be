"""Bad-input matrix (issue: reliability): every case runs a CLI or recipe stage the way a user does and must end in
a non-zero exit with one line ``error: <file or utterance>: <problem>``, never a traceback, and leave no output
file behind under its final name. Hostile files (pickled code, YAML Python tags, shell pipes) must not run.
"""

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
import yaml

from espnet_softvc.feats.log_mel import wav_to_mel
from espnet_softvc.softvc.model import AcousticModel
from espnet_softvc.softvc.original_format import save_original
from espnet_softvc.utils.io import load_audio
from tests.conftest import assert_user_error, copy_recipe, recipe_env, run_cli, run_main, task_args

REPO = Path(__file__).resolve().parents[1]
MELS, GENERATE, DENOISE = "espnet_softvc.bin.mels", "espnet_softvc.bin.generate", "espnet_softvc.bin.denoise"
DUMP_MELS, DATA_PREP, VALIDATE = (
    "espnet_softvc.bin.dump_mels",
    "espnet_softvc.bin.data_prep",
    "espnet_softvc.bin.validate_data_dir",
)
TRAIN, DECODE = "espnet_softvc.bin.softvc_train", "espnet_softvc.bin.softvc_inference"
MARKER = "pwned"  # hostile files try to create this file; it must never appear


@pytest.fixture(scope="module")
def world(tiny_corpus, dumps, tmp_path_factory):  # noqa: F811
    """Good inputs the cases break: a wav, a data dir, both original checkpoints, a denoising postnet, dumps."""
    root = tmp_path_factory.mktemp("world")
    torch.manual_seed(0)
    for kind in ("soft", "discrete"):
        save_original(AcousticModel(discrete=kind == "discrete"), root / f"{kind}.pt")
    from espnet_softvc.postnet.model import DenoisingPostnet

    torch.save({"model": DenoisingPostnet("conv").state_dict(), "config": {"arch": "conv"}}, root / "postnet.pt")
    run_cli(DATA_PREP, tiny_corpus, root / "data", check=True)
    from espnet_softvc.tasks.load import load_model, save_espnet

    save_espnet(load_model(root / "discrete.pt")[0], root / "espnet")  # config.yaml + model.pth, as training leaves
    return dict(root=root, corpus=tiny_corpus, dumps=dumps, wav=sorted((tiny_corpus / "wavs/dev").glob("*.wav"))[0])


def npy_dir(tmp, name, array):
    (tmp / "in").mkdir(exist_ok=True)
    np.save(tmp / "in" / name, array)
    return tmp / "in"


def wav_dir(tmp, name, data=None, write=None):
    (tmp / "in").mkdir(exist_ok=True)
    if write is not None:
        write(tmp / "in" / name)
    else:
        (tmp / "in" / name).write_bytes(data)
    return tmp / "in"


def copy_data(w, tmp, edit):
    """data/train of the world, copied and edited by ``edit(dir)``."""
    data = tmp / "data" / "train"
    shutil.copytree(w["root"] / "data" / "train", data)
    edit(data)
    return data


def edit_lines(path, fn):
    path.write_text("".join(f"{line}\n" for line in fn(path.read_text().splitlines())))


def copy_dumps(w, tmp, kind="discrete", edit=None):
    """The training dumps of ``kind``, copied; ``edit(train_dir)`` breaks the train split."""
    out = tmp / "dump"
    shutil.copytree(w["dumps"] / kind, out / kind)
    for split in ("train", "dev"):  # point the scps at the copied arks
        for scp in (out / kind / split).glob("*.scp"):
            scp.write_text(scp.read_text().replace(str(w["dumps"]), str(out)))
    if edit is not None:
        edit(out / kind / "train")
    return out


def rewrite_ark(scp, fn):
    """Rewrite every array of a kaldi_ark scp (in place, new ark) through ``fn(utt, array)``."""
    arrays = {utt: fn(utt, array) for utt, array in kaldiio.load_scp(str(scp)).items()}
    ark = scp.with_suffix(".new.ark")
    kaldiio.save_ark(str(ark), arrays, scp=str(scp))


def train_case(w, tmp, edit=None, *extra, kind="discrete"):
    return TRAIN, task_args(copy_dumps(w, tmp, kind, edit), tmp / "exp", kind, "--max_epoch", 1, *extra)


def config_case(w, tmp, text):
    config = tmp / "conf.yaml"
    base = yaml.safe_load((REPO / "conf/tuning/train_softvc_discrete_tiny.yaml").read_text())
    config.write_text(yaml.safe_dump(base) + text)
    module, args = train_case(w, tmp)
    args[args.index("--config") + 1] = config
    return module, args


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def generate(w, tmp, kind, array=None, checkpoint=None):
    if array is not None:
        npy_dir(tmp, "utt.npy", array)
    return GENERATE, [kind, tmp / "in", tmp / "out", "--checkpoint", checkpoint or w["root"] / f"{kind}.pt"]


def broken_checkpoint(w, tmp, make):
    path = tmp / "model.pt"
    make(path)
    return generate(w, tmp, "discrete", np.arange(5), checkpoint=path)


def missing_key(path):
    model = AcousticModel(discrete=True).state_dict()
    model.pop("decoder.proj.weight")
    torch.save({"acoustic-model": model, "step": 0, "loss": 0.0}, path)


def mel_case(w, tmp, array):
    npy_dir(tmp, "mel.npy", array)
    return DENOISE, [tmp / "in", tmp / "out", "--model_file", w["root"] / "postnet.pt"]


def scp_case(w, tmp, fn):
    scp = tmp / "wav.scp"
    lines = (w["root"] / "data/train/wav.scp").read_text().splitlines()[:4]
    scp.write_text("".join(f"{line}\n" for line in fn(lines)))
    return DUMP_MELS, [scp, tmp / "out/feats"]


# name -> (build(world, tmp) -> (module, args), needles in the error line)
CASES = {
    # audio
    "wav_empty": (
        lambda w, t: (MELS, [wav_dir(t, "a.wav", write=lambda p: sf.write(p, np.zeros(0), 16000)), t / "out"]),
        ["a.wav", "empty audio"],
    ),
    "wav_truncated": (
        lambda w, t: (MELS, [wav_dir(t, "a.wav", w["wav"].read_bytes()[:20000]), t / "out"]),
        ["a.wav", "truncated"],
    ),
    "wav_header_cut": (
        lambda w, t: (MELS, [wav_dir(t, "a.wav", w["wav"].read_bytes()[:30]), t / "out"]),
        ["a.wav", "not a readable audio file"],
    ),
    "not_audio": (
        lambda w, t: (MELS, [wav_dir(t, "a.wav", b"hello, I am a text file\n" * 50), t / "out"]),
        ["a.wav", "not a readable audio file"],
    ),
    "wav_nan": (
        lambda w, t: (
            MELS,
            [
                wav_dir(t, "a.wav", write=lambda p: sf.write(p, np.full(1600, np.nan), 16000, subtype="FLOAT")),
                t / "out",
            ],
        ),
        ["a.wav", "NaN or Inf"],
    ),
    # Kaldi data dirs and scp files
    "scp_missing_audio": (
        lambda w, t: scp_case(w, t, lambda ls: [ls[0].split()[0] + " /nonexistent/x.wav", *ls[1:]]),
        ["TINY-", "audio file /nonexistent/x.wav not found"],
    ),
    "scp_duplicate_id": (
        lambda w, t: scp_case(w, t, lambda ls: [ls[0], ls[0], *ls[1:]]),
        ["wav.scp:2", "duplicate utterance id"],
    ),
    "scp_unsorted": (lambda w, t: scp_case(w, t, lambda ls: [ls[1], ls[0], *ls[2:]]), ["wav.scp:2", "not sorted"]),
    "scp_pipe_without_flag": (
        lambda w, t: scp_case(w, t, lambda ls: [f"{ls[0].split()[0]} touch {MARKER}; cat x.wav |"]),
        ["wav.scp:1", "shell pipe; pass --allow_pipes"],
    ),
    "text_wav_id_mismatch": (
        lambda w, t: (VALIDATE, [copy_data(w, t, lambda d: edit_lines(d / "text", lambda ls: ls[1:]))]),
        ["text", "utterance ids differ from wav.scp"],
    ),
    "utt2spk_missing": (
        lambda w, t: (VALIDATE, [copy_data(w, t, lambda d: (d / "utt2spk").unlink())]),
        ["utt2spk", "cannot read"],
    ),
    "empty_dev_set": (
        lambda w, t: (DATA_PREP, [flat_corpus(w, t), t / "data", "--dev_list", empty_file(t)]),
        ["the dev set is empty"],
    ),
    # units
    "unit_id_out_of_range": (
        lambda w, t: generate(w, t, "discrete", np.array([1, 2, 100])),
        ["utt.npy", "out of range 0..99"],
    ),
    "unit_id_negative": (
        lambda w, t: generate(w, t, "discrete", np.array([-1, 2, 3])),
        ["utt.npy", "out of range 0..99"],
    ),
    "soft_wrong_width": (
        lambda w, t: generate(w, t, "soft", np.zeros((5, 768), np.float32)),
        ["utt.npy", "(N, 256)", "(5, 768)"],
    ),
    "soft_nan": (lambda w, t: generate(w, t, "soft", np.full((5, 256), np.nan, np.float32)), ["utt.npy", "NaN or Inf"]),
    "float_units_to_discrete": (
        lambda w, t: generate(w, t, "discrete", np.zeros(5, np.float32)),
        ["utt.npy", "float units"],
    ),
    "units_corrupt_npy": (
        lambda w, t: (wav_dir(t, "utt.npy", b"\x93NUMPY\x01\x00garbage"), generate(w, t, "soft"))[1],
        ["utt.npy", "not a readable .npy array"],
    ),
    "units_empty": (lambda w, t: generate(w, t, "soft", np.zeros((0, 256), np.float32)), ["utt.npy", "empty array"]),
    "units_pickled_npy": (
        lambda w, t: generate(w, t, "soft", np.array([Evil()], dtype=object)),
        ["utt.npy", "not a readable .npy"],
    ),
    # checkpoints
    "ckpt_wrong_kind": (
        lambda w, t: generate(w, t, "discrete", np.arange(5), w["root"] / "soft.pt"),
        ["soft.pt", "soft acoustic model, not discrete"],
    ),
    "ckpt_other_model": (
        lambda w, t: broken_checkpoint(w, t, lambda p: torch.save({"hubert": {"proj.weight": torch.zeros(2, 2)}}, p)),
        ["model.pt", "not a Soft-VC acoustic-model checkpoint"],
    ),
    "ckpt_truncated": (
        lambda w, t: broken_checkpoint(
            w, t, lambda p: p.write_bytes((w["root"] / "discrete.pt").read_bytes()[:100000])
        ),
        ["model.pt", "truncated or corrupt"],
    ),
    "ckpt_missing_key": (
        lambda w, t: broken_checkpoint(w, t, missing_key),
        ["model.pt", "missing keys", "decoder.proj.weight"],
    ),
    "ckpt_pickle_code": (
        lambda w, t: broken_checkpoint(w, t, lambda p: torch.save({"acoustic-model": Evil()}, p)),
        ["model.pt", "not a tensor-only checkpoint"],
    ),
    "ckpt_not_found": (lambda w, t: generate(w, t, "discrete", np.arange(5), t / "nope.pt"), ["nope.pt", "not found"]),
    "postnet_given_acoustic_model": (
        lambda w, t: (
            mel_case(w, t, np.zeros((128, 20), np.float32))[0],
            [t / "in", t / "out", "--model_file", w["root"] / "discrete.pt"],
        ),
        ["discrete.pt", "not a denoising-postnet checkpoint"],
    ),
    # mels
    "mel_wrong_width": (lambda w, t: mel_case(w, t, np.zeros((80, 20), np.float32)), ["mel.npy", "128"]),
    "mel_inf": (lambda w, t: mel_case(w, t, np.full((128, 20), np.inf, np.float32)), ["mel.npy", "NaN or Inf"]),
    # training on dumps (ESPnet Trainer)
    "train_mel_shorter_than_2x_units": (
        lambda w, t: train_case(
            w, t, lambda d: rewrite_ark(d / "feats.scp", lambda u, a: a[:-3] if u == "TINY-0003" else a)
        ),
        ["TINY-0003", "mel frames for"],
    ),
    "train_ark_bad_offset": (
        lambda w, t: train_case(
            w, t, lambda d: edit_lines(d / "units.scp", lambda ls: [ls[0].rsplit(":", 1)[0] + ":7", *ls[1:]])
        ),
        ["TINY-", "cannot read"],
    ),
    "train_ark_truncated": (
        lambda w, t: train_case(w, t, lambda d: truncate_ark(d / "feats.scp")),
        ["feats", "cannot read"],
    ),
    "train_feats_nan": (
        lambda w, t: train_case(
            w, t, lambda d: rewrite_ark(d / "feats.scp", lambda u, a: a * np.nan if u == "TINY-0003" else a)
        ),
        ["TINY-0003", "NaN or Inf"],
    ),
    "train_empty_dev": (lambda w, t: empty_valid(w, t), ["dev/units.scp", "empty"]),
    "config_unknown_key": (
        lambda w, t: config_case(w, t, "max_epochs: 3\n"),
        ["conf.yaml", "unknown option max_epochs"],
    ),
    "config_wrong_type": (lambda w, t: config_case(w, t, "batch_size: [4]\n"), ["conf.yaml", "batch_size"]),
    "config_tts_conf_unknown_key": (
        lambda w, t: config_case(w, t, "tts_conf:\n    hidden: 3\n"),
        ["conf.yaml", "tts_conf", "hidden"],
    ),
    "config_python_tag": (
        lambda w, t: config_case(w, t, f"seed: !!python/object/apply:os.system ['touch {MARKER}']\n"),
        ["conf.yaml", "not a plain YAML"],
    ),
    "train_output_dir_unwritable": (
        lambda w, t: ((t / "file").write_text("x"), train_case(w, t, None, "--output_dir", t / "file/exp"))[1],
        ["file/exp", "cannot write"],
    ),
    # decoding and output
    "decode_soft_units_to_discrete_model": (
        lambda w, t: decode_case(w, t, w["root"] / "discrete.pt", units="soft"),
        ["TINY-", "float units given to the discrete model"],
    ),
    "decode_config_python_tag": (
        lambda w, t: decode_case(w, t, w["root"] / "espnet/model.pth", "--train_config", evil_config(w, t)),
        ["config.yaml", "not a plain YAML file"],
    ),
    "decode_config_of_another_task": (
        lambda w, t: decode_case(
            w, t, w["root"] / "espnet/model.pth", "--train_config", evil_config(w, t, "tts: tacotron2\n")
        ),
        ["config.yaml", "not a Soft-VC task config"],
    ),
    "mels_out_dir_unwritable": (
        lambda w, t: ((t / "file").write_text("x"), (MELS, [w["wav"].parent, t / "file/out"]))[1],
        ["file/out", "cannot write"],
    ),
}


def decode_case(w, tmp, model_file, *extra, units="discrete"):
    """softvc_inference on the dev units of ``units`` with ``model_file`` (+ ``extra`` options)."""
    data = f"{w['dumps']}/{units}/dev/units.scp,units,kaldi_ark"
    return DECODE, [
        "--output_dir",
        tmp / "out",
        "--model_file",
        model_file,
        "--data_path_and_name_and_type",
        data,
        *extra,
    ]


def evil_config(w, tmp, text=f"seed: !!python/object/apply:os.system ['touch {MARKER}']\n"):
    config = tmp / "config.yaml"
    config.write_text((w["root"] / "espnet/config.yaml").read_text() + text)
    return config


def flat_corpus(w, tmp):
    """The tiny corpus with all wavs in one folder (LJSpeech layout without a train/dev split)."""
    corpus = tmp / "corpus"
    (corpus / "wavs").mkdir(parents=True)
    shutil.copy(w["corpus"] / "metadata.csv", corpus)
    for wav in (w["corpus"] / "wavs").rglob("*.wav"):
        (corpus / "wavs" / wav.name).symlink_to(wav)
    return corpus


def empty_file(tmp):
    (tmp / "empty.txt").write_text("")
    return tmp / "empty.txt"


def truncate_ark(scp):
    ark = Path(scp.read_text().split()[-1].rsplit(":", 1)[0])
    ark.write_bytes(ark.read_bytes()[: ark.stat().st_size // 2])


def empty_valid(w, tmp):
    module, args = train_case(w, tmp)
    valid = tmp / "dump/discrete/dev/units.scp"
    valid.write_text("")
    return module, args


SLOW = ("train_", "config_", "decode_")  # cases that start ESPnet (seconds of imports each)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n.startswith(SLOW) else n for n in sorted(CASES)]
)
def test_bad_input(name, world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # hostile files would create MARKER here
    build, needles = CASES[name]
    module, args = build(world, tmp_path)
    proc = (run_cli if name.startswith(SLOW) else run_main)(module, *args)  # ESPnet's training in its own process
    assert_user_error(proc, *map(str, needles))
    assert not (tmp_path / MARKER).exists(), "a hostile file ran code"
    assert not list(tmp_path.glob("out/**/*.npy")), "an output was written"
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")], "temporary files left behind"


@pytest.mark.slow
def test_recipe_stage_names_the_bad_data_dir(world, tmp_path):
    """Stage 2 of the recipe, run by a user on a data dir whose text lost an utterance: one line, the file named."""
    recipe = copy_recipe(tmp_path / "ljspeech_softvc")
    shutil.copytree(world["root"] / "data", recipe / "data")
    edit_lines(recipe / "data/train/text", lambda lines: lines[1:])
    cmd = ["./run.sh", "--stage", "2", "--stop_stage", "2"]
    proc = subprocess.run(cmd, cwd=recipe, env=recipe_env(), capture_output=True, text=True)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error: " in line]
    assert len(errors) == 1 and "data/train/text: utterance ids differ from wav.scp" in errors[0], proc.stderr
    assert not (recipe / "dump/train/feats.scp").exists()


def test_full_disk_during_dump_leaves_no_partial_file(world, tmp_path):
    """A dump that runs out of space (RLIMIT_FSIZE: writes past 64 kB fail with EFBIG) fails in one line, no file."""

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    out = tmp_path / "dump/feats"
    proc = subprocess.run(
        [sys.executable, "-m", DUMP_MELS, world["root"] / "data/train/wav.scp", out],
        capture_output=True,
        text=True,
        preexec_fn=limit,
    )
    assert_user_error(proc, "feats", "cannot write")
    assert sorted(p.name for p in out.parent.iterdir()) == [], "no partial ark/scp under any name"


@pytest.mark.parametrize("rate, channels", [(8000, 1), (48000, 1), (22050, 2)])
def test_other_rates_and_stereo_are_resampled_and_averaged(world, tmp_path, rate, channels):
    """Documented handling: any sample rate is resampled to 16 kHz, multi-channel audio is averaged to mono."""
    speech = load_audio(world["wav"]).numpy()
    wav = torchaudio.functional.resample(torch.from_numpy(speech), 16000, rate).numpy()
    stereo = np.stack([wav, 0.5 * wav], 1) if channels == 2 else wav
    sf.write(tmp_path / "a.wav", stereo, rate, subtype="FLOAT")
    proc = run_cli(MELS, tmp_path, tmp_path / "out", check=True)
    mel = np.load(tmp_path / "out/a.npy")
    assert mel.shape[0] == 128 and abs(mel.shape[1] - len(speech) // 160) <= 1, proc.stdout
    reference = wav_to_mel(world["wav"])
    frames = min(mel.shape[1], reference.shape[1])
    gain = np.log(0.75) if channels == 2 else 0.0  # the mono mix of (x, x/2) is 0.75 x
    loud = reference[:, :frames] > reference.max() - 4  # band-limited at 8 kHz: compare the loud low bins only
    assert np.median(np.abs(mel[:, :frames] - reference[:, :frames] - gain)[loud]) < 0.2


def test_wav_scp_pipe_runs_only_with_the_flag(world, tmp_path):
    """A Kaldi ``cmd |`` entry is refused (and not run) by default and decodes like the file with --allow_pipes."""
    scp = tmp_path / "wav.scp"
    scp.write_text(f"pipe sox {world['wav']} -t wav - | \n")
    assert_user_error(run_cli(DUMP_MELS, scp, tmp_path / "refused"), "pipe is a shell pipe")
    assert not (tmp_path / "refused.scp").exists()
    run_cli(DUMP_MELS, "--allow_pipes", scp, tmp_path / "feats", check=True)
    piped = kaldiio.load_scp(str(tmp_path / "feats.scp"))["pipe"]
    np.testing.assert_allclose(piped, wav_to_mel(world["wav"]).T, atol=1e-3)
