"""The results table: every model variation trained on the same units and mels, scored in raw log-mel space.

One row per ``exp/<tag>/decode_<set><suffix>/`` (a free-running decode; ``<suffix>`` e.g. ``_postnet`` makes a row
"+ postnet") of every ESPnet model dir ``exp/<tag>/`` (``config.yaml`` + ``checkpoint.pth``). Inputs per row:

decode_<set><suffix>/         free-running mels: ``denorm/feats.scp`` (GlobalMVN models) or ``norm/feats.scp``
                              (raw log-mel models); ESPnet's decode log (``*.log``) for the real-time factor
decode_<set>_tf<suffix>/      teacher-forced mels of the dev set (L1 valid teacher-forced), optional
decode_<train_set>_tf<suffix> teacher-forced mels of (a subset of) train (L1 train), optional
checkpoint.pth                the trainer's per-epoch stats: guided-attention loss, epochs, training time, curves
valid.loss.ave.pth ...        parameter count

Soft-VC's own ``l1_loss``/``l1_free`` are raw log-mel L1 per utterance, so they stand in when a teacher-forced
decode is missing; stock models report L1 before + after the postnet in GlobalMVN space, which is never compared.
Writes ``RESULTS.md``, ``results.csv``, ``mels_<utt>.png`` and ``curves.png`` to the output dir. This module fills
the rows and writes the files; reading ``exp/<tag>/`` is ``exp_dirs``, the mel distances ``mel_scores``, the table's
columns and formats ``results_table``, the figures ``plots``, the outside judges ``wav_judging`` and the sections
below the table ``stage_sections``.

    python -m espnet_softvc.bin.results exp dump --set dev --train_set train --out_dir exp --corpus tiny
"""

import datetime
import importlib.metadata
import itertools
import os
import platform
import subprocess
from pathlib import Path

import torch
import yaml

from espnet_softvc.scoring.exp_dirs import (
    MODEL_FILES,
    capped_utterances,
    count_parameters,
    decoded_mels,
    describe,
    epoch_seconds,
    find_model_dirs,
    load_stats,
    real_time_factor,
)
from espnet_softvc.scoring.mel_scores import read_mels, score
from espnet_softvc.scoring.plots import plot_curves, plot_mels
from espnet_softvc.scoring.results_table import MEL_COLUMNS, Row, format_table, write_csv
from espnet_softvc.scoring.stage_sections import conversion_table, denoising_table, speaker_table
from espnet_softvc.scoring.wav_judging import judge, reference_rows
from espnet_softvc.utils.io import atomic_path


def _teacher_forced_l1(row, column, decode_dir, reference, normalized, own_l1):
    """L1 of a teacher-forced decode dir; else Soft-VC's own reported L1 (``own_l1`` = (value, note)); else n/a."""
    decode = decoded_mels(decode_dir, normalized)
    if decode is not None:
        row.set(column, score(decode, reference, str(decode_dir))["l1"], None)
        if len(decode) < len(reference):
            row.reasons[column + "_source"] = f"teacher-forced on {len(decode)} of {len(reference)} utterances"
    elif own_l1:
        row.set(column, own_l1[0], None)
        row.reasons[column + "_source"] = own_l1[1]
    else:
        row.set(column, None, f"no teacher-forced decode `{decode_dir.name}/`")


def _free_running(row, decode_dir, reference, normalized, maxlenratio, reduction_factor):
    """Free-running columns of ``decode_dir``; returns its mels (None if there is no such decode)."""
    decode = decoded_mels(decode_dir, normalized)
    if decode is None:
        for key in (*MEL_COLUMNS, "rtf"):
            row.set(key, None, f"no free-running decode `{decode_dir.name}/`")
        return None
    row.set_mel_scores(score(decode, reference, str(decode_dir)))
    row.set("rtf", real_time_factor(decode_dir), f"no `inference speed` lines in the logs of `{decode_dir}/`")
    capped = capped_utterances(decode_dir, maxlenratio, reduction_factor)
    if capped:
        row.reasons["length_error_source"] = (
            f"{capped} of {len(decode)} utterances stopped at the decoder's maximum "
            f"length (--maxlenratio {maxlenratio}): no stop token"
        )
    return decode


def _training(row, tts, stats, best, params, model_dir):
    """Columns from the trainer's stats: guided-attention loss at ``best``, epochs, time; parameters; curves."""
    valid = stats[best].get("valid", {})
    ga_key = next((k for k in ("attn_loss", "enc_dec_attn_loss") if k in valid), None)
    no_ga = {
        "softvc": "no attention (units are upsampled, 2 frames each)",
        "fastspeech2": "no attention (durations given)",
    }.get(tts, "guided attention off: not computed")
    row.set("ga_loss", ga_key and valid[ga_key], no_ga)
    row.set("params", params, f"no model file ({', '.join(MODEL_FILES)}) in `{model_dir}/`")
    row.set("epochs", len(stats), None)
    epoch_time = epoch_seconds(stats)
    row.set("train_time", sum(epoch_time.values()), None)
    elapsed = dict(zip(sorted(stats), itertools.accumulate(epoch_time[e] for e in sorted(stats))))
    row.curves = {
        split: [(elapsed[e], stats[e][split]["l1_loss"]) for e in sorted(stats) if "l1_loss" in stats[e].get(split, ())]
        for split in ("train", "valid")
    }


def model_rows(model_dir, reference, train_reference, eval_set, train_set, maxlenratio=3.0, judging=None):
    """The rows of one ``exp/<tag>/``: one per free-running decode dir ``decode_<eval_set><suffix>`` (at least one)."""
    model_dir = Path(model_dir)
    config = yaml.safe_load((model_dir / "config.yaml").read_text()) or {}
    label, _ = describe(config)
    normalized = config.get("normalize") is not None
    stats = load_stats(model_dir)
    valid = [e for e in stats if "loss" in stats[e].get("valid", {})]
    best = min(valid, key=lambda e: stats[e]["valid"]["loss"]) if valid else max(stats)
    params = count_parameters(model_dir)
    prefix = f"decode_{eval_set}"
    suffixes = sorted(p.name[len(prefix) :] for p in model_dir.glob(prefix + "*") if p.is_dir() and "_tf" not in p.name)
    rows = []
    for suffix in suffixes or [""]:
        row = Row(label + (f" + {suffix.strip('_')}" if suffix else ""), model_dir.name + suffix, model_dir.name)
        for column, decode_set, ref, split in (
            ("l1_train", train_set, train_reference, "train"),
            ("l1_valid_tf", eval_set, reference, "valid"),
        ):
            own = None  # Soft-VC reports raw log-mel L1 per utterance, the same quantity (not after a postnet;
            # a postnet-option training, whose acoustic model is frozen, reports none)
            if config.get("tts") == "softvc" and not suffix and "l1_loss" in stats[best].get(split, {}):
                note = f"Soft-VC's own {split} l1_loss at epoch {best} (lowest valid loss)"
                own = (stats[best][split]["l1_loss"], note)
            _teacher_forced_l1(row, column, model_dir / f"decode_{decode_set}_tf{suffix}", ref, normalized, own)
        reduction_factor = (config.get("tts_conf") or {}).get("reduction_factor", 1)
        decode_dir = model_dir / f"{prefix}{suffix}"
        row.decoded = _free_running(row, decode_dir, reference, normalized, maxlenratio, reduction_factor)
        if row.decoded is not None:
            judge(row, decode_dir / "wav", decode_dir / "score", judging, row.decoded)
        else:
            judge(row, decode_dir, decode_dir, None)
        _training(row, config.get("tts"), stats, best, params, model_dir)
        rows.append(row)
    return rows


def environment():
    """Markdown lines: when, on what and with which code and versions the table was made (as ESPnet's RESULTS.md)."""
    root = Path(__file__).resolve().parents[2]
    git = ["git", "-C", str(root)]
    try:
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
        commit += " (with uncommitted changes)" if dirty.stdout.strip() else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    versions = {name: _version(name) for name in ("torch", "torchaudio", "espnet", "espnet-softvc")}
    return [
        "## Environment",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()} {cpu}, {os.cpu_count()} CPU cores, {gpu}",
        f"- commit: {commit}",
        f"- versions: python {platform.python_version()}, " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "",
    ]


def _cpuinfo():
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def write_results(
    exp_dir,
    ref_dir,
    out_dir,
    eval_set="dev",
    train_set="train",
    corpus="",
    tags=None,
    plot_utts=2,
    maxlenratio=3.0,
    judging=None,
):
    """Score every model of ``exp_dir`` and write RESULTS.md, results.csv and the figures; returns the rows.
    ``judging`` (a ``Judging``): also WER / speaker similarity / DNSMOS of every row, and the reference rows."""
    out_dir = Path(out_dir)
    reference = read_mels(Path(ref_dir) / eval_set / "feats.scp")
    train_reference = read_mels(Path(ref_dir) / train_set / "feats.scp")
    rows = reference_rows(reference, judging) if judging is not None else []
    for model_dir in find_model_dirs(exp_dir, tags):
        rows += model_rows(model_dir, reference, train_reference, eval_set, train_set, maxlenratio, judging)
    table, notes = format_table(rows)
    epochs = sorted({int(r.values["epochs"]) for r in rows if "epochs" in r.values})
    utts = sorted(reference)[:plot_utts]
    figures = plot_mels(rows, reference, utts, out_dir) + [out_dir / "curves.png"]
    plot_curves(rows, out_dir / "curves.png")
    text = [
        "# Results: Soft-VC and stock ESPnet TTS models on the same units and mels",
        "",
        f"Corpus: {corpus or Path(ref_dir).resolve().parent.name}; {len(train_reference)} train / {len(reference)} "
        f"{eval_set} utterances; epochs: {', '.join(map(str, epochs))}; scored on `{eval_set}`. "
        "Generated by `python -m espnet_softvc.bin.results`.",
        "",
        *environment(),
        "## Models",
        "",
        *table,
        "",
        *notes,
        "",
        "Figures: " + ", ".join(f"[{p.name}]({p.name})" for p in figures),
        "",
        *conversion_table(exp_dir),
        *denoising_table(exp_dir),
        *speaker_table(exp_dir),
    ]
    with atomic_path(out_dir / "RESULTS.md") as tmp:
        tmp.write_text("\n".join(text))
    write_csv(rows, out_dir / "results.csv")
    return rows
