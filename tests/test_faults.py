"""Faults (issue 11): training and every dump stage killed (SIGKILL) at random points resume to the same result.

Training: ``softvc_train`` on the tiny dumps of ``conftest`` killed three times, then ``--resume true``.
Dumps: recipe stages 1-4 (data prep, mel dump, unit dump, collect_stats) on a copy of the recipe, each killed
mid-way and rerun; the outputs must be byte-identical to an uninterrupted run's, and a killed stage may leave
no partial file under a final name (every file there is already the finished one).
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from espnet_softvc.bin.softvc_inference import Unit2Speech
from tests.conftest import REPO, TRAIN, dev_units, epoch_results, task_args

MAX_EPOCH = 6  # enough that the third kill still finds the run training


def start(cmd, log, cwd=None, env=None):
    """Popen in a process group of its own (to SIGKILL it with every child), output to ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def kill(proc):
    assert proc.poll() is None, "the process ended before the kill"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def wait_for(path, needles, proc, timeout=180):
    """Until ``needles`` (one of them, if a tuple) is in the log ``path``; ``proc`` must stay alive."""
    deadline = time.monotonic() + timeout
    while not any(needle in Path(path).read_text() for needle in ((needles,) if isinstance(needles, str) else needles)):
        assert proc.poll() is None and time.monotonic() < deadline, Path(path).read_text()[-3000:]
        time.sleep(0.05)


def train_cmd(dumps, out, max_epoch):  # noqa: F811
    """One batch of 2 utterances per epoch, no plots: epochs of a few seconds."""
    args = task_args(
        dumps,
        out,
        "discrete",
        "--max_epoch",
        max_epoch,
        "--num_att_plot",
        0,
        "--resume",
        "true",
        "--batch_size",
        2,
        "--num_iters_per_epoch",
        1,
        "--keep_nbest_models",
        1,
        "--use_matplotlib",
        "false",
    )
    return [sys.executable, "-m", TRAIN, *map(str, args)]


def test_training_killed_three_times_resumes_to_max_epoch(dumps, tmp_path):  # noqa: F811
    rng = random.Random(0)
    out = tmp_path / "exp"
    logs = []
    saved = ("best model has been updated", "no improvements in this epoch")  # logged after an epoch's files
    for attempt, (after, delay) in enumerate([("epoch results", 1.0), (saved, 2.0), (saved, 2.0)]):
        logs.append(tmp_path / f"run{attempt}.log")  # killed while saving an epoch, or in the next one
        proc = start(train_cmd(dumps, out, MAX_EPOCH), logs[-1])
        wait_for(logs[-1], after, proc)
        time.sleep(rng.uniform(0.0, delay))
        kill(proc)
    # as if the last kill had come between checkpoint.pth and the epoch's model file and links
    epoch = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)["reporter"]["epoch"]
    for name in (f"{epoch}epoch.pth", "latest.pth", "valid.loss.best.pth"):
        (out / name).unlink(missing_ok=True)
    (out / ".checkpoint.pth.x1y2z3.tmp").write_bytes(b"partial write of a killed save")
    logs.append(tmp_path / "final.log")
    proc = start(train_cmd(dumps, out, MAX_EPOCH), logs[-1])
    assert proc.wait() == 0, logs[-1].read_text()[-3000:]
    text = [log.read_text() for log in logs]
    assert "The training was resumed" in text[-1] and f"{epoch}epoch.pth missing" in text[-1], text[-1][-3000:]
    assert set(epoch_results("".join(text))) == set(range(1, MAX_EPOCH + 1))
    checkpoint = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert checkpoint["reporter"]["epoch"] == MAX_EPOCH
    assert (out / "latest.pth").resolve().name == f"{MAX_EPOCH}epoch.pth"
    units = dev_units(dumps)["TINY-0010"]
    mel = Unit2Speech(out / "config.yaml", out / "valid.loss.ave.pth")(units, vocode=False)["feat_gen"]
    assert mel.shape == (2 * len(units), 128) and torch.isfinite(mel).all()
    best = torch.load(out / "valid.loss.best.pth", weights_only=True)
    assert best.keys() == torch.load(out / "valid.loss.ave.pth", weights_only=True).keys()
    assert not list(out.rglob("*.tmp"))


# --- dump stages ---------------------------------------------------------------------------------------------------
STAGES = {1: "data prep", 2: "mel dump", 3: "unit dump", 4: "collect_stats"}
OUTPUTS = ("downloads", "data", "dump", "exp")
COMMON = ["--num_utts", "10", "--unit_type", "discrete", "--nj", "1"]


def snapshot(recipe):
    """{relative path: bytes} of the stage outputs (.pt: their content); logs and train_log.yaml (it holds timings)
    left out.

    Temporary files and dirs (``*.tmp``) are left out too: they never carry a final name."""
    files = {}
    for top in OUTPUTS:
        for path in sorted((recipe / top).rglob("*")):
            rel = path.relative_to(recipe)
            temporary = any(part.endswith(".tmp") for part in rel.parts)  # atomic_path's, collect_stats' staging
            log = path.name.endswith((".log", "train_log.yaml")) or "log" in rel.parts
            if path.is_file() and not (temporary or log):
                files[str(rel)] = checkpoint_content(path) if path.suffix == ".pt" else path.read_bytes()
    return files


def checkpoint_content(path):
    """A torch.save zip names its records after the file it was first written to (a temporary name): compare
    what it holds. A partial file has no content."""
    try:
        checkpoint = torch.load(path, weights_only=True)
    except Exception:
        return None
    return {k: v.numpy().tobytes() if torch.is_tensor(v) else v for k, v in checkpoint.items()}


def recipe_env():
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", VIRTUAL_ENV=sys.prefix)


def run_stage(recipe, stage, log):
    proc = start(["./run.sh", "--stage", str(stage), "--stop_stage", str(stage), *COMMON], log, recipe, recipe_env())
    assert proc.wait() == 0, Path(log).read_text()[-3000:]


def test_each_dump_stage_killed_mid_way_reruns_to_identical_outputs(tmp_path):
    recipe = tmp_path / "ljspeech_softvc"
    keep = ("run.sh", "cmd.sh", "path.sh", "utils")
    ignore = lambda d, names: [n for n in names if d.endswith("ljspeech_softvc") and n not in keep]  # noqa: E731
    shutil.copytree(REPO / "egs/ljspeech_softvc", recipe, ignore=ignore)
    (recipe / "conf").symlink_to(REPO / "conf")
    durations = {}
    for stage in STAGES:  # the uninterrupted reference run
        began = time.monotonic()
        run_stage(recipe, stage, tmp_path / f"reference{stage}.log")
        durations[stage] = time.monotonic() - began
    reference = snapshot(recipe)
    assert any(name.endswith("units.scp") for name in reference) and any(".npz" in name for name in reference)
    for top in OUTPUTS:
        shutil.rmtree(recipe / top)

    rng = random.Random(0)
    for stage, name in STAGES.items():
        cmd = ["./run.sh", "--stage", str(stage), "--stop_stage", str(stage), *COMMON]
        proc = start(cmd, tmp_path / f"killed{stage}.log", recipe, recipe_env())
        time.sleep(rng.uniform(0.3, 0.8) * durations[stage])
        kill(proc)
        partial = {k: v for k, v in snapshot(recipe).items() if reference.get(k) != v}
        assert not partial, f"stage {stage} ({name}) killed left partial or unexpected files: {sorted(partial)}"
        run_stage(recipe, stage, tmp_path / f"rerun{stage}.log")
    rerun = snapshot(recipe)
    assert sorted(rerun) == sorted(reference)
    assert [k for k in reference if rerun[k] != reference[k]] == []
    assert not list(recipe.rglob("*.tmp")), "temporaries of killed writers are cleaned up by the reruns"
