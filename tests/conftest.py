"""Shared fixtures: a small espeak-ng corpus and helpers to run our CLIs as a user does."""
import os
import subprocess
import sys

import pytest

os.environ.setdefault("NLTK_DATA", "/nonexistent")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """LJSpeech-layout corpus of 20 espeak-ng utterances (18 train, 2 dev) at 22.05 kHz."""
    from espnet_softvc.data.tiny_corpus import build

    out = tmp_path_factory.mktemp("tiny_corpus")
    build(out, num_utts=20)
    return out


def run_cli(module, *args, check=None):
    """Run ``python -m module args`` and return the CompletedProcess (text output)."""
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True)
    if check is not None:
        assert (proc.returncode == 0) == check, proc.stderr[-3000:]
    return proc


def assert_user_error(proc, *needles):
    """A user error: non-zero exit, a one-line ``error: ...`` naming the problem, no traceback."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) >= 1, proc.stderr
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
