"""Soft-VC as an ESPnet task: Trainer runs (loss, resume, CPU DDP), Unit2Speech, conversions, ESPnet's TTSTask, errors.

The data are the tiny espeak-ng corpus, its own mels and simple 50 Hz units made here (k-means of mel-frame pairs
for discrete, a random projection for soft), cut to 0.8 s so that the full-size model trains in seconds per epoch.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap
import types

import kaldiio
import matplotlib.pyplot as plt
import numpy as np
import pytest
import soundfile as sf
import torch

from espnet_softvc.softvc.espnet_model import SoftVC
from espnet_softvc.softvc.model import AcousticModel
from espnet_softvc.softvc.original_format import load_original, save_original
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.shapes import TOKEN_OFFSET
from tests.conftest import NUM_TRAIN, REPO, TRAIN, assert_user_error, dev_units, epoch_results, run_cli, task_args


@pytest.fixture(scope="module")
def trained(dumps, tmp_path_factory):
    """A discrete model trained 2 epochs, then 'interrupted' and rerun to 3 epochs with --resume true."""
    out = tmp_path_factory.mktemp("exp") / "softvc_discrete"
    first = run_cli(TRAIN, *task_args(dumps, out, "discrete", "--max_epoch", 2), check=True)
    second = run_cli(TRAIN, *task_args(dumps, out, "discrete", "--max_epoch", 3, "--resume", "true"), check=True)
    return types.SimpleNamespace(dir=out, first=first.stderr, second=second.stderr)


@pytest.mark.slow
def test_trainer_reports_l1_free_running_l1_and_mel_plots(trained):
    results = epoch_results(trained.first + trained.second)
    assert sorted(results) == [1, 2, 3], trained.first[-2000:]
    first, last = results[1], results[3]
    assert last["train"]["loss"] < first["train"]["loss"] and last["valid"]["loss"] < first["valid"]["loss"], results
    assert all(r["valid"]["l1_loss"] == r["valid"]["loss"] and 0 < r["valid"]["l1_free"] < 20 for r in results.values())
    for image in [*(f"mels/TINY-0010.{epoch}ep.png" for epoch in (1, 2, 3)), "l1_free.png"]:
        pixels = plt.imread(trained.dir / "images" / image)
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.std() > 0.05, image  # a drawn figure
    averaged = torch.load(trained.dir / "valid.loss.ave.pth", weights_only=True)
    assert averaged.keys() == torch.load(trained.dir / "3epoch.pth", weights_only=True).keys()


@pytest.mark.slow
def test_resume_continues_from_the_saved_epoch(trained):
    assert "The training was resumed" in trained.second
    assert "3/3epoch started" in trained.second
    assert "1/3epoch started" not in trained.second and "2/3epoch started" not in trained.second
    checkpoint = torch.load(trained.dir / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert checkpoint["reporter"]["epoch"] == 3


@pytest.mark.slow
def test_ddp_two_cpu_processes_gloo(dumps, tmp_path):
    out = tmp_path / "ddp"
    args = task_args(
        dumps,
        out,
        "soft",
        "--max_epoch",
        1,
        "--batch_size",
        2,
        "--num_att_plot",
        0,
        "--ngpu",
        0,
        "--multiprocessing_distributed",
        "false",
        "--dist_backend",
        "gloo",
    )
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", TRAIN]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ":0/2]" in proc.stderr  # ESPnet's rank-0 log prefix in a 2-process world
    assert "l1_free" in epoch_results(proc.stderr)[1]["valid"] and (out / "1epoch.pth").exists()


@pytest.mark.slow
def test_unit2speech_and_decode_cli(trained, dumps, tmp_path):
    from espnet_softvc.bin.softvc_inference import Unit2Speech, main

    unit2speech = Unit2Speech(trained.dir / "config.yaml", trained.dir / "valid.loss.ave.pth")
    units = dev_units(dumps)
    output = unit2speech(units["TINY-0010"].numpy())
    n = len(units["TINY-0010"])
    assert output["feat_gen"].shape == (2 * n, 128) and torch.isfinite(output["feat_gen"]).all()
    assert output["wav"].dim() == 1 and abs(len(output["wav"]) - 2 * n * 160) <= 1024

    main(
        [
            "--model_file",
            str(trained.dir / "valid.loss.ave.pth"),
            "--output_dir",
            str(tmp_path / "decode"),
            "--data_path_and_name_and_type",
            f"{dumps / 'discrete/dev/units.scp'},units,kaldi_ark",
        ]
    )
    feats = kaldiio.load_scp(str(tmp_path / "decode/norm/feats.scp"))
    assert sorted(feats) == sorted(units) == ["TINY-0010", "TINY-0020"]
    assert np.array_equal(feats["TINY-0010"], output["feat_gen"].numpy())
    wav_scp = dict(line.split() for line in (tmp_path / "decode/wav/wav.scp").read_text().splitlines())
    wav, sr = sf.read(wav_scp["TINY-0020"])
    assert sr == 16000 and len(wav) > 2 * len(units["TINY-0020"]) * 160 - 1024


@pytest.mark.slow
def test_round_trip_espnet_original_espnet_is_bit_exact(trained, dumps, tmp_path):
    from espnet_softvc.bin.checkpoint import main
    from espnet_softvc.bin.softvc_inference import Unit2Speech

    model_file = trained.dir / "valid.loss.best.pth"
    main(["to-original", str(model_file), str(tmp_path / "original.pt")])
    main(["to-espnet", str(tmp_path / "original.pt"), str(tmp_path / "back")])
    before = torch.load(model_file, weights_only=True)
    after = torch.load(tmp_path / "back/model.pth", weights_only=True)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert load_original(tmp_path / "original.pt").discrete

    units = dev_units(dumps)["TINY-0020"]
    espnet = Unit2Speech(trained.dir / "config.yaml", model_file)(units, vocode=False)["feat_gen"]
    original = Unit2Speech(model_file=tmp_path / "original.pt")(units, vocode=False)["feat_gen"]
    imported = Unit2Speech(tmp_path / "back/config.yaml", tmp_path / "back/model.pth")(units, vocode=False)
    assert torch.equal(espnet, original) and torch.equal(espnet, imported["feat_gen"])


@pytest.mark.slow
def test_original_soft_checkpoint_imports_with_identical_generate(tmp_path):
    from espnet_softvc.bin.softvc_inference import Unit2Speech
    from espnet_softvc.tasks.load import load_model, save_espnet

    torch.manual_seed(0)
    acoustic = AcousticModel(discrete=False).eval()
    save_original(acoustic, tmp_path / "soft.pt")
    config, model_file = save_espnet(load_model(tmp_path / "soft.pt")[0], tmp_path / "espnet")
    units = torch.randn(12, 256)
    generated = Unit2Speech(config, model_file)(units, vocode=False)["feat_gen"]
    assert torch.equal(generated, acoustic.generate(units)[0])


@pytest.mark.parametrize("dtype, precision", [("bfloat16", "bf16"), ("float16", "fp16")])
def test_unit2speech_dtype_reaches_the_decoder(tmp_path, monkeypatch, dtype, precision):
    """dtype sets the encoder's dtype and the autoregressive decoder's precision, not the encoder's alone."""
    from espnet_softvc.bin.softvc_inference import Unit2Speech
    from espnet_softvc.softvc import fast

    torch.manual_seed(0)
    save_original(AcousticModel(discrete=False), tmp_path / "soft.pt")
    units = torch.randn(15, 256)
    half = Unit2Speech(model_file=tmp_path / "soft.pt", dtype=dtype)
    asked, decode = [], fast.decode
    monkeypatch.setattr(fast, "decode", lambda dec, xs, prec, *a: asked.append(prec) or decode(dec, xs, prec, *a))
    out = half(units, vocode=False)["feat_gen"]
    assert asked == [precision]
    model = half.model.tts.model
    assert torch.equal(out, model.generate(units.to(getattr(torch, dtype)), precision=precision)[0])
    exact = Unit2Speech(model_file=tmp_path / "soft.pt")(units, vocode=False)["feat_gen"]
    assert 0 < (out - exact).abs().mean() < 0.05  # reduced precision: close to fp32, not equal


@pytest.mark.slow
def test_original_training_cli_checks_the_config_first(dataset, tmp_path):
    """softvc-train runs the same checks as softvc_train: a config typo is one line, before any work."""
    (tmp_path / "conf.yaml").write_text("max_epochs: 3\n")
    proc = run_cli("espnet_softvc.bin.train", dataset, tmp_path / "out", "--config", tmp_path / "conf.yaml")
    assert_user_error(proc, "conf.yaml: unknown option max_epochs")


@pytest.mark.slow
def test_espnet_ttstask_loads_discrete_softvc_after_import(trained, dumps, tmp_path):
    """ESPnet's own TTSTask (imported after espnet_softvc) rebuilds our model; ESPnet token ids u + 2 give units u."""
    from espnet_softvc.bin.softvc_inference import Unit2Speech

    units = dev_units(dumps)["TINY-0010"]
    np.save(tmp_path / "ids.npy", (units + TOKEN_OFFSET).numpy())
    config, model_file = str(trained.dir / "config.yaml"), str(trained.dir / "valid.loss.ave.pth")
    script = textwrap.dedent(f"""
        import numpy, torch, espnet_softvc
        from espnet2.tasks.tts import TTSTask
        model, _ = TTSTask.build_model_from_file({config!r}, {model_file!r})
        ids = torch.from_numpy(numpy.load({str(tmp_path / "ids.npy")!r})).long()
        with torch.no_grad():
            feat_gen = model.eval().inference(ids, use_teacher_forcing=False)["feat_gen"]
        numpy.save({str(tmp_path / "feat_gen.npy")!r}, feat_gen.numpy())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = Unit2Speech(trained.dir / "config.yaml", trained.dir / "valid.loss.ave.pth")(units, vocode=False)
    # another process: its thread count may sum in another order (the tolerance of every cross-process decode)
    np.testing.assert_allclose(np.load(tmp_path / "feat_gen.npy"), expected["feat_gen"].numpy(), rtol=0, atol=1e-5)


def test_registration_into_an_already_imported_tts_task():
    from espnet2.train.class_choices import ClassChoices

    import espnet_softvc

    tts_task = types.SimpleNamespace(tts_choices=ClassChoices("tts", classes={}, default=None))
    espnet_softvc.register(tts_task)
    assert tts_task.tts_choices.get_class("softvc") is SoftVC


@pytest.mark.parametrize(
    "kind, units, frames, needle",
    [
        (
            "discrete",
            torch.tensor([[1, 2, 3, 4], [5, 150, 6, 0]]),
            8,
            "uttB: unit id out of range 0..99 (found 0..150)",
        ),
        ("discrete", torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]]), 7, "uttB: 7 mel frames for 4 units"),
        ("soft", torch.zeros(2, 4, 128), 8, "uttA: expected soft units, float (N, 256), got shape (2, 4, 128)"),
        ("discrete", torch.zeros(2, 4), 8, "uttA: float units given to the discrete model"),
        ("tokens", torch.tensor([[3, 4, 5, 6], [0, 4, 5, 6]]), 8, "uttB: unit id out of range 0..99 (found -2..4)"),
    ],
)
def test_bad_units_name_the_utterance(kind, units, frames, needle):
    tts = SoftVC(idim=103 if kind == "tokens" else None, discrete=kind != "soft")
    lengths = torch.tensor([4, 4])
    feats = torch.zeros(2, 8, 128)
    with pytest.raises(UserError, match=re.escape(needle)):
        tts(units, lengths, feats, torch.tensor([8, frames]), utt_id=["uttA", "uttB"])


@pytest.mark.slow
def test_training_cli_names_the_bad_utterance(dumps, tmp_path):
    for split in ("train", "dev"):
        source, target = dumps / "discrete" / split, tmp_path / "dump" / "discrete" / split
        target.mkdir(parents=True)
        with kaldiio.WriteHelper(f"ark,scp:{target / 'units.ark'},{target / 'units.scp'}") as writer:
            for key, units in kaldiio.load_scp(str(source / "units.scp")).items():
                writer[key] = units + 100 if key == "TINY-0003" else units
        for name in ("feats.scp", "feats_shape"):
            shutil.copy(source / name, target / name)
    args = task_args(tmp_path / "dump", tmp_path / "exp", "discrete", "--max_epoch", 1, "--batch_size", NUM_TRAIN)
    proc = run_cli(TRAIN, *args)
    assert_user_error(proc, "TINY-0003: unit id", "out of range 0..99")


@pytest.mark.slow
def test_original_training_cli_fine_tunes_an_original_checkpoint(trained, dataset, tmp_path):
    from espnet_softvc.bin.checkpoint import to_original

    to_original(trained.dir / "valid.loss.best.pth", tmp_path / "published.pt")
    out = tmp_path / "checkpoints"
    config = REPO / "conf/tuning/train_softvc_discrete_tiny.yaml"
    proc = run_cli(
        "espnet_softvc.bin.train",
        "--discrete",
        "--resume",
        tmp_path / "published.pt",
        dataset,
        out,
        "--config",
        config,
        "--max_epoch",
        1,
        "--num_iters_per_epoch",
        40,
        "--batch_size",
        4,
        check=True,
    )
    assert "Loading pretrained params from" in proc.stderr
    fine_tuned, from_scratch = epoch_results(proc.stderr)[1]["valid"], epoch_results(trained.first)[1]["valid"]
    assert fine_tuned["loss"] < from_scratch["loss"]  # epoch 1 starts from the trained weights, not from scratch
    assert sorted(kaldiio.load_scp(str(out / "dump/dev/feats.scp"))) == ["TINY-0010", "TINY-0020"]
    assert load_original(out / "model-best.pt", kind="discrete").discrete
