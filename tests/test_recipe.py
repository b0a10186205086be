"""The recipe as a user runs it: stages 1-6 and 8 on a small tiny corpus, smallest settings (issue: recipe)."""

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

from espnet_softvc.softvc.model import AcousticModel

REPO = Path(__file__).resolve().parents[1]


def run_recipe(recipe, *args):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", VIRTUAL_ENV=sys.prefix)
    proc = subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    recipe = tmp_path_factory.mktemp("recipe") / "ljspeech_softvc"
    keep = ("run.sh", "cmd.sh", "path.sh", "utils")
    shutil.copytree(
        REPO / "egs/ljspeech_softvc",
        recipe,
        ignore=lambda d, names: [n for n in names if d.endswith("ljspeech_softvc") and n not in keep],
    )
    (recipe / "conf").symlink_to(REPO / "conf")
    common = ["--num_utts", "24", "--unit_type", "discrete", "--nj", "2"]
    run_recipe(recipe, "--stop_stage", "6", *common, "--train_args", "--max_epoch 2 --batch_size 4 --num_att_plot 1")
    proc = run_recipe(recipe, "--stage", "8", "--stop_stage", "8", *common)
    return recipe, proc


def test_files_exist(recipe):
    recipe, proc = recipe
    for path in [
        "data/train/wav.scp",
        "data/dev/text",
        "dump/train/feats.scp",
        "dump/dev/feats.scp",
        "dump/discrete/train/units.scp",
        "dump/discrete/train/text",
        "exp/softvc_discrete/config.yaml",
        "exp/softvc_discrete/valid.loss.ave.pth",
        "exp/softvc_discrete/decode_dev/norm/feats.scp",
        "exp/softvc_discrete/decode_dev/wav/wav.scp",
        "RESULTS.md",
        "results.csv",
    ]:
        assert (recipe / path).is_file(), path
    assert len(list((recipe / "exp/softvc_discrete/decode_dev/wav").glob("*.wav"))) == 2  # 24 utts, every 10th is dev
    assert list((recipe / "exp/softvc_discrete/images/mels").glob("*.png"))
    assert "Soft-VC discrete" in (recipe / "RESULTS.md").read_text()
    assert "RESULTS.md" in proc.stdout
    assert not list(recipe.rglob("*.tmp")), "no temporary files left behind"


def test_losses_finite_and_decreasing(recipe):
    recipe, _ = recipe
    log = (recipe / "exp/softvc_discrete/train.log").read_text()
    train = [float(x) for x in re.findall(r"epoch results: \[train\].*? l1_loss=([\d.e+-]+)", log)]
    valid = [float(x) for x in re.findall(r"\[valid\] l1_loss=([\d.e+-]+)", log)]
    assert len(train) == len(valid) == 2, log[-2000:]
    assert all(math.isfinite(v) for v in train + valid)
    assert train[1] < train[0] and valid[1] < valid[0]


def test_decoded_mels_beat_an_untrained_model(recipe, monkeypatch):
    recipe, _ = recipe
    monkeypatch.chdir(recipe)  # scp files name their arks relative to the recipe dir, as in ESPnet
    truth = kaldiio.load_scp(str(recipe / "dump/dev/feats.scp"))
    decoded = kaldiio.load_scp(str(recipe / "exp/softvc_discrete/decode_dev/norm/feats.scp"))
    units = kaldiio.load_scp(str(recipe / "dump/discrete/dev/units.scp"))
    torch.manual_seed(0)
    untrained = AcousticModel(discrete=True)
    trained_l1, untrained_l1 = [], []
    for utt in decoded:
        target = truth[utt][: decoded[utt].shape[0]]
        assert decoded[utt].shape == (2 * len(units[utt]), 128)
        trained_l1.append(np.abs(decoded[utt] - target).mean())
        untrained_l1.append(np.abs(untrained.generate(torch.from_numpy(units[utt]).long())[0].numpy() - target).mean())
    assert np.mean(trained_l1) < np.mean(untrained_l1)


def test_rerun_skips_finished_work(recipe):
    recipe, _ = recipe
    proc = run_recipe(recipe, "--stage", "2", "--stop_stage", "2", "--num_utts", "24")
    assert "complete, skipped" in proc.stdout


def test_bad_option_is_a_one_line_error(recipe):
    recipe, _ = recipe
    proc = subprocess.run(["./run.sh", "--corpus", "nope"], cwd=recipe, capture_output=True, text=True)
    assert proc.returncode != 0 and "error: --corpus must be tiny or ljspeech" in proc.stderr
