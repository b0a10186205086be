"""The Soft-VC acoustic-model configs of every tier (conf/tuning/*_tiny.yaml, *_small.yaml, the paper's conf/*.yaml):
each builds the model of its unit type, the tiers grow in size towards the paper's, and a piecewise learning-rate
schedule spans exactly the training budget (max_epoch x num_iters_per_epoch steps); the results table's tiny
configs share one budget."""

import pytest
import yaml

from espnet_softvc.softvc.espnet_model import SoftVC
from tests.conftest import REPO

ACOUSTIC = sorted(p for p in (REPO / "conf").rglob("train_softvc_*.yaml") if "postnet" not in p.name)


def build(path):
    conf = yaml.safe_load(path.read_text())
    return conf, SoftVC(**conf["tts_conf"])


@pytest.mark.parametrize("path", ACOUSTIC, ids=lambda p: str(p.relative_to(REPO)))
def test_acoustic_config_builds_its_unit_type_and_schedules_its_budget(path):
    conf, model = build(path)
    assert conf["tts"] == "softvc"
    assert model.discrete == ("discrete" in path.name)
    if conf["scheduler"] == "piecewiselinearwarmuplr":
        steps, rates = conf["scheduler_conf"]["warmup_steps_list"], conf["scheduler_conf"]["warmup_lr_list"]
        assert len(steps) == len(rates) and steps == sorted(steps)
        assert steps[-1] == conf["max_epoch"] * conf["num_iters_per_epoch"]
        assert rates[0] == 0 and rates[-1] < max(rates)  # warm-up from 0, decayed by the end


@pytest.mark.parametrize("kind", ["discrete", "soft"])
def test_tiers_grow_towards_the_paper(kind):
    tiers = [f"conf/tuning/train_softvc_{kind}_{tier}.yaml" for tier in ("tiny", "small")]
    built = [build(REPO / path) for path in [*tiers, f"conf/train_softvc_{kind}.yaml"]]
    sizes = [sum(p.numel() for p in model.parameters()) for _, model in built]
    assert sizes[0] < sizes[1] < sizes[2], sizes
    budgets = [conf["max_epoch"] * conf["num_iters_per_epoch"] for conf, _ in built[:2]]
    assert budgets[0] < budgets[1], budgets


def test_the_results_table_trains_every_model_on_one_budget():
    """Stage 9's stock baselines (softvc.sh's all_baselines) get Soft-VC tiny's budget: the same steps of the same
    batch size under the same learning-rate schedule (README, "Results table")."""
    line = next(x for x in (REPO / "egs/ljspeech_softvc/softvc.sh").read_text().splitlines() if "all_baselines=" in x)
    baselines = line.split('"')[1].split()
    assert len(baselines) == 4, baselines
    names = ["softvc_discrete", "softvc_soft", *baselines]
    keys = ("batch_size", "max_epoch", "num_iters_per_epoch", "scheduler", "scheduler_conf")
    budgets = {
        n: {k: yaml.safe_load((REPO / f"conf/tuning/train_{n}_tiny.yaml").read_text())[k] for k in keys} for n in names
    }
    assert all(b == budgets["softvc_discrete"] for b in budgets.values()), budgets
