"""Faults (issue 11): training and every dump stage killed (SIGKILL) mid-way resume to the same result.

Every kill is triggered by an observable event, never by a sleep: a temporary file ``.<name>.<pid>.*.tmp`` of
``espnet_softvc.utils.io.atomic_path`` appearing (a checkpoint, model file or shard being written: killed mid-save),
a log line, or the k-th output file appearing; the test polls the filesystem for it.

Training: ``softvc_train`` on the tiny dumps of ``conftest`` killed three times, then ``--resume true``.
Dumps: recipe stages 1-4 (data prep, mel dump, unit dump, collect_stats) on a copy of the recipe, each killed
mid-way and rerun; the outputs must be byte-identical to an uninterrupted run's, and a killed stage may leave
no partial file under a final name (every file there is already the finished one).
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from espnet_softvc.bin.softvc_inference import Unit2Speech
from tests.conftest import TRAIN, copy_recipe, dev_units, epoch_results, recipe_env, task_args

pytestmark = pytest.mark.slow
MAX_EPOCH = 6  # enough that the third kill still finds the run training
POLL = 0.002  # seconds between two looks at the filesystem


def start(cmd, log, cwd=None, env=None):
    """Popen in a process group of its own (to SIGKILL it with every child), output to ``log``."""
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def kill(proc):
    assert proc.poll() is None, "the process ended before the kill"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def kill_on(proc, log, event, what, timeout=300):
    """SIGKILL ``proc`` (and its children) as soon as ``event()`` is true; ``proc`` must still be running then."""
    deadline = time.monotonic() + timeout
    while not event():
        assert proc.poll() is None, f"ended before {what}: {Path(log).read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} in {timeout} s: {Path(log).read_text()[-3000:]}"
        time.sleep(POLL)
    kill(proc)


def temporary(root, name_glob):
    """An event: a temporary file of ``atomic_path`` for a file matching ``name_glob`` exists under ``root``."""
    return lambda: any(Path(root).rglob(f".{name_glob}.*.tmp"))


def count(root, name_glob, k):
    """An event: at least ``k`` files matching ``name_glob`` exist under ``root``."""
    return lambda: sum(1 for _ in Path(root).rglob(name_glob)) >= k


def epochs(out):
    return {int(p.name.removesuffix("epoch.pth")) for p in Path(out).glob("*epoch.pth")}


def new_epoch_file(out):
    """An event: a model file ``<N>epoch.pth`` of an epoch later than any there now (older ones get removed)."""
    last = max(epochs(out), default=0)
    return lambda: max(epochs(out), default=0) > last


def in_log(path, needle):
    return lambda: Path(path).is_file() and needle in Path(path).read_text(errors="replace")


def assert_complete(out):
    """No partial file under a final name: checkpoint.pth and every model file load."""
    for path in sorted(out.glob("*.pth")):
        if path.exists():  # not a dangling link
            torch.load(path, map_location="cpu", weights_only=False)


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
    out = tmp_path / "exp"
    logs = []
    kills = [  # mid-save of checkpoint.pth; mid-save of an epoch's model file; right after a later epoch's model file
        (temporary(out, "checkpoint.pth"), "checkpoint.pth being written"),
        (temporary(out, "*epoch.pth"), "a model file being written"),
        (None, "a new epoch's model file"),
    ]
    for attempt, (event, what) in enumerate(kills):
        logs.append(tmp_path / f"run{attempt}.log")
        if event is None:
            event = new_epoch_file(out)
        proc = start(train_cmd(dumps, out, MAX_EPOCH), logs[-1])
        kill_on(proc, logs[-1], event, what)
        assert_complete(out)
    assert (out / "checkpoint.pth").exists()
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
COMMON = ["--num_utts", "16", "--unit_type", "discrete", "--nj", "1"]  # 15 train, 1 dev (every 15th)
COMMON += ["--units_opts", "--targets phones --perturb true --steps 20 --warmup 5 --valid_interval 10"]


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
    return _content(checkpoint)


def _content(value):
    """Tensors as bytes, nested dicts (a content encoder's ``model``) too."""
    if torch.is_tensor(value):
        return value.numpy().tobytes()
    return {k: _content(v) for k, v in value.items()} if isinstance(value, dict) else value


def run_stage(recipe, stage, log):
    proc = start(["./run.sh", "--stage", str(stage), "--stop_stage", str(stage), *COMMON], log, recipe, recipe_env())
    assert proc.wait() == 0, Path(log).read_text()[-3000:]


def test_each_dump_stage_killed_mid_way_reruns_to_identical_outputs(tmp_path):
    recipe = copy_recipe(tmp_path / "ljspeech_softvc")
    for stage in STAGES:  # the uninterrupted reference run
        run_stage(recipe, stage, tmp_path / f"reference{stage}.log")
    reference = snapshot(recipe)
    assert any(name.endswith("units.scp") for name in reference) and any(".npz" in name for name in reference)
    for top in OUTPUTS:
        shutil.rmtree(recipe / top)

    events = {  # stage -> the event that triggers its kill: mid-way through the stage's main work
        1: count(recipe / "downloads/tiny/wavs", "*.wav", 3),  # the 3rd corpus wav written
        2: in_log(recipe / "dump/org/train/log/dump_mels.0.log", "mels:"),  # computing the train mels
        3: temporary(recipe / "dump/discrete/train/data", "units.*.ark"),  # a unit shard being written
        4: lambda: (recipe / "exp/stats_softvc_discrete/.collect_stats.tmp").exists(),  # collect_stats staging
    }
    for stage, name in STAGES.items():
        cmd = ["./run.sh", "--stage", str(stage), "--stop_stage", str(stage), *COMMON]
        log = tmp_path / f"killed{stage}.log"
        proc = start(cmd, log, recipe, recipe_env())
        kill_on(proc, log, events[stage], f"stage {stage} ({name}) under way")
        partial = {k: v for k, v in snapshot(recipe).items() if reference.get(k) != v}
        assert not partial, f"stage {stage} ({name}) killed left partial or unexpected files: {sorted(partial)}"
        run_stage(recipe, stage, tmp_path / f"rerun{stage}.log")
    rerun = snapshot(recipe)
    assert sorted(rerun) == sorted(reference)
    assert [k for k in reference if rerun[k] != reference[k]] == []
    assert not list(recipe.rglob("*.tmp")), "temporaries of killed writers are cleaned up by the reruns"
