"""The Soft-VC acoustic-model configs of every tier (conf/tuning/*_tiny.yaml, *_small.yaml, the paper's conf/*.yaml):
each builds the model of its unit type, the tiers grow in size towards the paper's, and a piecewise learning-rate
schedule spans exactly the training budget (max_epoch x num_iters_per_epoch steps)."""

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
