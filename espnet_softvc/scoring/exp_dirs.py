"""What ESPnet's training and decoding leave in ``exp/<tag>/``, read without scoring: which dirs are trained models
and which variation each is (``config.yaml``), the trainer's per-epoch stats (``checkpoint.pth``), the parameter
count (model files), the decoded raw log-mels (``decode_*/``) and ESPnet's decode logs (real-time factor,
utterances that ran into the decoder's maximum length)."""

import datetime
import re
from pathlib import Path

import yaml

from espnet_softvc.scoring.mel_scores import read_mels
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.shapes import HOP, SAMPLE_RATE
from espnet_softvc.utils.torch_files import load_trainer_checkpoint, torch_load

FRAME_SECONDS = HOP / SAMPLE_RATE
MODEL_FILES = ("valid.loss.ave.pth", "valid.loss.best.pth", "latest.pth")


def find_model_dirs(exp_dir, tags=None):
    """ESPnet training dirs under ``exp_dir`` (config.yaml + checkpoint.pth), Soft-VC first, then the baselines."""
    exp_dir = Path(exp_dir)
    if tags:
        dirs = [exp_dir / tag for tag in tags]
        missing = [d for d in dirs if not (d / "checkpoint.pth").exists()]
        if missing:
            raise UserError(f"{missing[0]}: no checkpoint.pth (not a finished ESPnet training dir)")
        return dirs
    configs = {d.parent: d.parent / "config.yaml" for d in exp_dir.glob("*/checkpoint.pth")}
    # the standalone denoiser maps mels to mels: it is scored through the "+ postnet" rows, not as a model
    dirs = [
        d for d, c in configs.items() if c.exists() and (yaml.safe_load(c.read_text()) or {}).get("tts") != "denoiser"
    ]
    if not dirs:
        raise UserError(f"{exp_dir}: no trained models (exp/<tag>/config.yaml + checkpoint.pth)")
    rank = {d: describe(yaml.safe_load((d / "config.yaml").read_text()) or {})[1] for d in dirs}
    return sorted(dirs, key=lambda d: (rank[d], d.name))


def describe(config):
    """A readable name of the variation from an ESPnet ``config.yaml``, and its sort rank."""
    tts, conf = config.get("tts"), config.get("tts_conf") or {}
    guided = conf.get("use_guided_attn_loss", True)  # ESPnet's default for Tacotron2 and Transformer-TTS
    attention = f"guided attention {'on' if guided else 'off'}"
    units = "discrete" if conf.get("discrete") else "soft"
    postnet = " + denoising postnet" if conf.get("postnet") else ""  # the postnet option, trained on the frozen model
    names = {
        "softvc": (f"Soft-VC {units}{postnet}", 0 if conf.get("discrete") else 1),
        "tacotron2": (f"Tacotron2, {attention}", 3 if guided else 2),
        "transformer": (f"Transformer-TTS, {attention}", 4),
        "fastspeech2": ("FastSpeech2, 2 frames per unit", 5),
    }
    return names.get(tts, (str(tts), 6))


def load_stats(model_dir):
    """The trainer's ``{epoch: {"train": {...}, "valid": {...}, ...}}`` from ``checkpoint.pth`` (weights_only)."""
    return load_trainer_checkpoint(model_dir)["reporter"]["stats"]


def _seconds(value):
    return value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)


def epoch_seconds(stats):
    """``{epoch: seconds}`` of the trainer's stats: each epoch's training + validation time, startup excluded."""
    return {e: sum(_seconds(p.get("time", 0)) for p in stats[e].values() if isinstance(p, dict)) for e in stats}


def count_parameters(model_dir):
    """Parameter count of the ``tts`` module (no normalizer, no batch-norm statistics) in the first model file found."""
    for name in MODEL_FILES:
        path = Path(model_dir) / name
        if path.exists():
            state = torch_load(path)
            buffers = ("running_mean", "running_var", "num_batches_tracked")
            return sum(v.numel() for k, v in state.items() if k.startswith("tts.") and not k.endswith(buffers))
    return None


def decoded_mels(decode_dir, normalized):
    """The raw log-mel scp of a decode dir: ``denorm/feats.scp``, or ``norm/feats.scp`` for a model without
    GlobalMVN; None if the dir does not exist."""
    decode_dir = Path(decode_dir)
    for scp in (decode_dir / "denorm" / "feats.scp", decode_dir / "feats.scp", decode_dir / "norm" / "feats.scp"):
        if scp.exists() and (scp.parent.name != "norm" or not normalized):
            return read_mels(scp)
    if decode_dir.exists():
        raise UserError(f"{decode_dir}: no denorm/feats.scp (nor raw feats.scp) of raw log-mels to score")
    return None


def real_time_factor(decode_dir):
    """Generation time / audio time from ESPnet's decode log lines ``inference speed = X frames / sec`` and
    ``uttid (size:a->b)``; None when the log has none."""
    seconds = frames = 0.0
    speed = None
    for log in sorted(Path(decode_dir).rglob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if match := re.search(r"inference speed = ([\d.]+) frames / sec", line):
                speed = float(match.group(1))
            elif (match := re.search(r"\(size:\d+->(\d+)\)", line)) and speed:
                seconds += int(match.group(1)) / speed
                frames += int(match.group(1))
                speed = None
    return seconds / (frames * FRAME_SECONDS) if frames else None


def capped_utterances(decode_dir, maxlenratio, reduction_factor=1):
    """How many utterances of ESPnet's decode log (``uttid (size:N+1->T)``) reached the decoder's maximum length
    ``maxlenratio * (N + 1)`` frames (ESPnet's own warning misses the ones that overshoot it by a partial step)."""
    sizes = [
        tuple(map(int, m))
        for log in sorted(Path(decode_dir).rglob("*.log"))
        for m in re.findall(r"\(size:(\d+)->(\d+)\)", log.read_text(errors="replace"))
    ]
    return sum(frames > int(tokens * maxlenratio) - reduction_factor for tokens, frames in sizes)
