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
Writes ``RESULTS.md``, ``results.csv``, ``mels_<utt>.png`` and ``curves.png`` to the output dir.

    python -m espnet_softvc.bin.results exp dump --set dev --train_set train --out_dir . --corpus tiny
"""

import csv
import datetime
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import kaldiio
import numpy as np
import torch
import yaml

from espnet_softvc.scoring import metrics
from espnet_softvc.scoring.denoising import denoising_lines
from espnet_softvc.scoring.speakers import speaker_lines
from espnet_softvc.utils.checkpoint import load_trainer_checkpoint, torch_load
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import atomic_path
from espnet_softvc.utils.shapes import HOP, SAMPLE_RATE

FRAME_SECONDS = HOP / SAMPLE_RATE
MODEL_FILES = ("valid.loss.ave.pth", "valid.loss.best.pth", "latest.pth")
COLUMNS = {  # key: (header, format)
    "l1_train": ("L1 train", "{:.3f}"),
    "l1_valid_tf": ("L1 valid (teacher-forced)", "{:.3f}"),
    "l1_valid_fr": ("L1 valid (free-running)", "{:.3f}"),
    "ga_loss": ("guided-attention loss (valid)", "{:.2e}"),
    "mel_snr": ("mel-SNR (dB)", "{:.2f}"),
    "lsd": ("LSD (dB)", "{:.2f}"),
    "mcd": ("MCD (dB)", "{:.2f}"),
    "wer": ("WER (%)", "{:.1f}"),
    "spk_sim": ("speaker similarity", "{:.3f}"),
    "dnsmos": ("DNSMOS OVRL", "{:.2f}"),
    "length_error": ("length error (%)", "{:.1f}"),
    "params": ("parameters", "{:,.0f}"),
    "epochs": ("epochs", "{:.0f}"),
    "train_time": ("training time (s)", "{:.0f}"),
    "rtf": ("RTF", "{:.3f}"),
}
METHOD_NOTES = [
    "All mel distances are computed on raw natural-log mels (Soft-VC's scale): Soft-VC outputs them directly; "
    "the GlobalMVN baselines are read back denormalized (`denorm/feats.scp`). Means over utterances.",
    "L1 = mean |log-mel difference| per bin and frame. L1 / mel-SNR / LSD compare frame by frame over the common "
    "length (the longer mel is truncated): attention models stop on their own, so their free-running length "
    "differs; `length error` = mean |T_generated - T_reference| / T_reference shows by how much.",
    "MCD: the field's definition (as ESPnet's `evaluate_mcd`): mel-cepstra c1..c24 (orthonormal DCT-II of the "
    "natural-log mel, c0 excluded), aligned by DTW, 10 sqrt(2) / ln 10 x the euclidean distance per frame, averaged.",
    "WER (pocketsphinx en-us, normalised text), speaker similarity (resemblyzer cosine to the ground-truth "
    "speaker's mean embedding) and DNSMOS OVRL (speechmos) are judged on the decoded wavs (Griffin-Lim unless the "
    "decode used another vocoder), the same way for every row: `softvc-score`, per-utterance scores in "
    "`<decode dir>/score/`.",
    "RTF = mel generation time / audio duration (10 ms per frame), from ESPnet's decode log, vocoder excluded.",
    "Training time: the trainer's summed epoch times (training + validation), startup excluded.",
]


@dataclass
class Row:
    label: str
    tag: str
    model: str  # the exp/<tag> dir name
    values: dict = field(default_factory=dict)  # column -> float; absent = n/a
    reasons: dict = field(default_factory=dict)  # column -> why it is n/a
    curves: dict = field(default_factory=dict)  # "train"/"valid" -> [(training seconds at epoch end, l1_loss)]
    decoded: dict = None  # free-running {uttid: (T, 128)} for the figures

    def set(self, column, value, reason):
        if value is None:
            self.reasons[column] = reason
        else:
            self.values[column] = float(value)


def read_mels(scp):
    """``{uttid: (T, 128) float64}`` from a Kaldi ark scp (dumps) or ESPnet's npy scp (decodes); order kept."""
    mels = {}
    try:
        lines = Path(scp).read_text().splitlines()
    except OSError as e:
        raise UserError(f"{scp}: cannot read ({e.strerror or e})") from None
    for line in filter(str.strip, lines):
        utt, _, value = line.strip().partition(" ")
        try:
            mel = np.load(value.strip()) if value.strip().endswith(".npy") else kaldiio.load_mat(value.strip())
        except Exception as e:  # kaldiio / numpy raise many types for bad files
            raise UserError(f"{scp}: {utt}: cannot read {value.strip()} ({type(e).__name__}: {e})") from None
        mels[utt] = np.asarray(mel, dtype=np.float64)
    if not mels:
        raise UserError(f"{scp}: no utterances")
    return mels


def score(generated, reference, name="decode"):
    """Mean over the generated utterances of l1, mel_snr, lsd (common length), mcd (DTW) and length_error (%)."""
    missing = sorted(set(generated) - set(reference))
    if missing:
        raise UserError(f"{name}: {missing[0]} has no ground-truth mel ({len(missing)} utterances)")
    scores = {key: [] for key in ("l1", "mel_snr", "lsd", "mcd", "length_error")}
    for utt, est in generated.items():
        ref = reference[utt]
        n = min(len(est), len(ref))
        scores["l1"].append(metrics.l1(est[:n], ref[:n]))
        scores["mel_snr"].append(metrics.mel_snr(est[:n], ref[:n]))
        scores["lsd"].append(metrics.log_spectral_distance(est[:n], ref[:n]))
        scores["mcd"].append(metrics.mel_cepstral_distortion(est, ref))
        scores["length_error"].append(100 * abs(len(est) - len(ref)) / len(ref))
    return {key: float(np.mean(values)) for key, values in scores.items()}


def load_stats(model_dir):
    """The trainer's ``{epoch: {"train": {...}, "valid": {...}, ...}}`` from ``checkpoint.pth`` (weights_only)."""
    return load_trainer_checkpoint(model_dir)["reporter"]["stats"]


def _seconds(value):
    return value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)


def count_parameters(model_dir):
    """Parameter count of the ``tts`` module (no normalizer, no batch-norm statistics) in the first model file found."""
    for name in MODEL_FILES:
        path = Path(model_dir) / name
        if path.exists():
            state = torch_load(path)
            buffers = ("running_mean", "running_var", "num_batches_tracked")
            return sum(v.numel() for k, v in state.items() if k.startswith("tts.") and not k.endswith(buffers))
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
        for key in ("l1_valid_fr", "mel_snr", "lsd", "mcd", "length_error", "rtf"):
            row.set(key, None, f"no free-running decode `{decode_dir.name}/`")
        return None
    scores = score(decode, reference, str(decode_dir))
    for key in ("mel_snr", "lsd", "mcd", "length_error"):
        row.set(key, scores[key], None)
    row.set("l1_valid_fr", scores["l1"], None)
    row.set("rtf", real_time_factor(decode_dir), f"no `inference speed` lines in the logs of `{decode_dir}/`")
    capped = capped_utterances(decode_dir, maxlenratio, reduction_factor)
    if capped:
        row.reasons["length_error_source"] = (
            f"{capped} of {len(decode)} utterances stopped at the decoder's maximum "
            f"length (--maxlenratio {maxlenratio}): no stop token"
        )
    return decode


@dataclass
class Judging:
    """What the outside judges need: the Kaldi ``text`` and ``wav.scp`` of the evaluation set, where reference
    decodes go, the vocoder of the resynthesis rows (None: Griffin-Lim only) and how many processes judge at once."""

    text: Path
    wav_scp: Path
    work_dir: Path
    vocoder_file: str = None
    nj: int = 1


def _vocode(mels, wav_dir, vocoder):
    """Write ``{utt: (T, 128)}`` as ``wav_dir/<utt>.wav`` with ``vocoder`` (skipped if already complete)."""
    from tqdm import tqdm

    from espnet_softvc.utils.io import check_file_name, save_wav

    for utt in mels:
        check_file_name(utt, wav_dir)
    if sorted(p.stem for p in Path(wav_dir).glob("*.wav")) == sorted(mels):
        return
    for utt, mel in tqdm(mels.items(), desc=f"vocode {wav_dir}"):
        save_wav(Path(wav_dir) / f"{utt}.wav", vocoder(torch.from_numpy(mel).float()).numpy(), vocoder.sample_rate)


def _judge(row, wavs, out_dir, judging, mels=None):
    """WER, speaker similarity and DNSMOS of ``wavs`` (a dir of wavs or a wav.scp; made from ``mels`` with
    Griffin-Lim when there is none) with ``softvc-score``, cached in ``out_dir/summary.json``. Without its wav-level
    MCD and F0 (``pairs=False``): the table's mel distances come from the mels (``score``), and WORLD's harvest F0 of
    two wavs per utterance would be 40 % of the judging time."""
    from espnet_softvc.scoring.score import score_dir

    if judging is None:
        for key in ("wer", "spk_sim", "dnsmos"):
            row.set(key, None, "not judged (no --text / --wav_scp given)")
        return
    wavs = Path(wavs)
    if mels is not None and not any(wavs.glob("*.wav")):
        from espnet_softvc.vocoders import GriffinLim

        wavs = wavs.with_name("wav_gl")
        _vocode(mels, wavs, GriffinLim())
    summary_file = Path(out_dir) / "summary.json"
    inputs = [wavs] if wavs.is_file() else list(wavs.glob("*.wav"))
    fresh = summary_file.exists() and summary_file.stat().st_mtime > max(p.stat().st_mtime for p in inputs)
    summary = (
        json.loads(summary_file.read_text())
        if fresh
        else score_dir(wavs, out_dir, judging.text, judging.wav_scp, nj=judging.nj, pairs=False)
    )
    row.set("wer", summary.get("wer"), "no transcript")
    row.set("spk_sim", summary.get("spk_sim"), "no reference speaker")
    row.set("dnsmos", summary.get("dnsmos_ovrl"), "no DNSMOS")


def reference_rows(reference, judging):
    """The ceiling rows: the ground-truth recordings, and their mels resynthesised by Griffin-Lim (and by the given
    vocoder), judged the same way as the models; mel distances of the resynthesis' own mel to the ground truth."""
    from espnet_softvc.feats.log_mel import wav_to_mel
    from espnet_softvc.vocoders import GriffinLim, load_vocoder

    truth = Row("ground truth (recordings)", "ground_truth", "ground_truth")
    for key in (
        "l1_train",
        "l1_valid_tf",
        "l1_valid_fr",
        "ga_loss",
        "mel_snr",
        "lsd",
        "mcd",
        "length_error",
        "params",
        "epochs",
        "train_time",
        "rtf",
    ):
        truth.set(key, None, "reference row")
    _judge(truth, judging.wav_scp, judging.work_dir / "ground_truth" / "score", judging)
    rows = [truth]
    vocoders = {"Griffin-Lim": (GriffinLim(), "resynthesis_gl")}
    if judging.vocoder_file:
        vocoders[Path(judging.vocoder_file).name] = (load_vocoder(judging.vocoder_file), "resynthesis_vocoder")
    for name, (vocoder, tag) in vocoders.items():
        row = Row(f"{name} resynthesis of the ground-truth mels", tag, tag)
        wav_dir = judging.work_dir / tag / "wav"
        _vocode(reference, wav_dir, vocoder)
        resynthesized = {utt: wav_to_mel(wav_dir / f"{utt}.wav").T.astype(np.float64) for utt in reference}
        scores = score(resynthesized, reference, tag)
        for key in ("mel_snr", "lsd", "mcd", "length_error"):
            row.set(key, scores[key], None)
        row.set("l1_valid_fr", scores["l1"], None)
        for key in ("l1_train", "l1_valid_tf", "ga_loss", "params", "epochs", "train_time", "rtf"):
            row.set(key, None, "reference row")
        _judge(row, wav_dir, judging.work_dir / tag / "score", judging)
        rows.append(row)
    return rows


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
    epoch_time = {e: sum(_seconds(p.get("time", 0)) for p in stats[e].values() if isinstance(p, dict)) for e in stats}
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
            _judge(row, decode_dir / "wav", decode_dir / "score", judging, row.decoded)
        else:
            _judge(row, decode_dir, decode_dir, None)
        _training(row, config.get("tts"), stats, best, params, model_dir)
        rows.append(row)
    return rows


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


def format_table(rows):
    """Markdown table lines and footnote lines; every missing value is ``n/a [k]`` with its reason as note k."""
    notes = list(METHOD_NOTES)
    header = ["variation", "model dir", *(h for h, _ in COLUMNS.values())]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.label, f"`{row.tag}`"]
        for column, (_, fmt) in COLUMNS.items():
            if column in row.values:
                value = row.values[column]
                cell = "inf" if math.isinf(value) else fmt.format(value)
                source = row.reasons.get(column + "_source")
            else:
                cell, source = "n/a", row.reasons[column]
            if source:
                if source not in notes:
                    notes.append(source)
                cell += f" [{notes.index(source) + 1}]"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return lines, [f"[{i}] {note}" for i, note in enumerate(notes, 1)]


def write_csv(rows, path):
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["variation", "model_dir", *COLUMNS, "notes"])
        for row in rows:
            values = [row.values.get(c, "n/a") for c in COLUMNS]
            notes = "; ".join(f"{c}: {r}" for c, r in row.reasons.items())
            writer.writerow([row.label, row.tag, *values, notes])


def plot_mels(rows, reference, utts, out_dir):
    """``mels_<utt>.png``: ground truth and each row's free-running mel, one panel each, same colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for utt in utts:
        panels = [("ground truth", reference[utt])]
        panels += [(row.label, row.decoded[utt]) for row in rows if row.decoded is not None and utt in row.decoded]
        fig, axes = plt.subplots(len(panels), 1, figsize=(10, 1.8 * len(panels)), squeeze=False)
        low, high = reference[utt].min(), reference[utt].max()
        frames = max(len(mel) for _, mel in panels)
        for ax, (title, mel) in zip(axes[:, 0], panels):
            ax.imshow(mel.T, origin="lower", aspect="auto", vmin=low, vmax=high, interpolation="none")
            ax.set_xlim(0, frames)
            ax.set_title(title, fontsize=9)
            ax.set_ylabel("mel bin")
        axes[-1, 0].set_xlabel("frame (10 ms)")
        fig.suptitle(f"{utt}: log-mel, raw scale")
        fig.tight_layout()
        paths.append(Path(out_dir) / f"mels_{utt}.png")
        with atomic_path(paths[-1]) as tmp:
            fig.savefig(tmp, format="png", dpi=80)
        plt.close(fig)
    return paths


def plot_curves(rows, path):
    """Left: every model's reported ``l1_loss`` against its training time (train solid, valid dashed, one point per
    epoch, log scale). Right: each row's WER against its training time, the reference rows as horizontal lines.
    Returns the WER panel's points {label: (seconds or None, WER)}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, wer_ax) = plt.subplots(1, 2, figsize=(13, 5))
    first_row = {}  # rows of one model dir (with/without postnet) share its training curves
    for row in rows:
        if row.curves:
            first_row.setdefault(row.model, row)
    color = {model: f"C{index}" for index, model in enumerate(dict.fromkeys(r.model for r in rows))}
    for row in first_row.values():
        for split, style in (("train", "-"), ("valid", "--")):
            if row.curves.get(split):
                seconds, values = zip(*row.curves[split])
                ax.plot(seconds, values, style, color=color[row.model], marker=".", label=f"{row.label} ({split})")
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("reported l1_loss")
    ax.set_yscale("log")
    ax.set_title("L1 (Soft-VC: raw log-mel L1; ESPnet TTS: L1 before + after postnet, GlobalMVN)", fontsize=9)
    points = {}
    for row in (r for r in rows if "wer" in r.values):
        seconds = row.values.get("train_time")
        points[row.label] = (seconds, row.values["wer"])
        if seconds is None:  # a reference row: no training
            wer_ax.axhline(row.values["wer"], color=color[row.model], linestyle=":", label=row.label)
        else:
            wer_ax.plot([seconds], [row.values["wer"]], "o", color=color[row.model], label=row.label)
    wer_ax.set_xlim(left=0)
    wer_ax.set_xlabel("training time (s)")
    wer_ax.set_ylabel("WER (%), pocketsphinx on the decoded dev speech")
    wer_ax.set_title("WER of the final model (reference rows: dotted)", fontsize=9)
    for axis in (ax, wer_ax):
        if axis.lines:
            axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return points


def conversion_table(exp_dir):
    """Markdown lines of the voice-conversion scores (recipe stage 11: ``exp/softvc_<kind>/convert_<set>/score/``)
    and of the units' speaker probe (``exp/units/train_log.yaml``), or [] when there are none."""
    exp_dir = Path(exp_dir)
    lines = []
    summaries = sorted(exp_dir.glob("softvc_*/convert_*/score/summary.json"))
    if summaries:
        lines += [
            "## Voice conversion: held-out speakers and real recordings into the target voice (stage 11)",
            "",
            "| model | source set | utts | WER % | spk_sim to target | spk_sim to source | closer to target % "
            "| DNSMOS OVRL |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for path in summaries:
            summary, convert_dir = json.loads(path.read_text()), path.parent.parent
            scaled = {"closer_to_target": 100}  # a share, shown in percent
            cells = [
                f"{summary[key] * scaled.get(key, 1):.3g}" if summary.get(key) is not None else "n/a"
                for key in ("wer", "spk_sim", "spk_sim_src", "closer_to_target", "dnsmos_ovrl")
            ]
            name = convert_dir.name.removeprefix("convert_")
            lines.append(f"| {convert_dir.parent.name} | {name} | {summary['n_utts']} | {' | '.join(cells)} |")
        lines += [
            "",
            "spk_sim: resemblyzer cosine to the target's training speech (mean embedding) and to the utterance's own "
            "source speech; WER against the source text (n/a: no transcript).",
            "",
        ]
    log = exp_dir / "units" / "train_log.yaml"
    probe = (yaml.safe_load(log.read_text()) or {}).get("probe") if log.is_file() else None
    if probe:
        lines += [
            "## Speaker probe of the units (lower is better)",
            "",
            "| features | accuracy | chance | speakers | utterances |",
            "|---|---|---|---|---|",
            *(
                f"| {name} | {r['accuracy']:.3f} | {r['chance']:.3f} | {r['speakers']} | {r['utterances']} |"
                for name, r in probe.items()
            ),
            "",
        ]
    return lines


def speaker_table(exp_dir):
    """Markdown lines of recipe stage 12 (``exp/speakers/<tag>/score/summary.json``: a multi-speaker model asked for
    each voice, a model before / after fine-tuning), or [] when there are none."""
    paths = sorted(Path(exp_dir).glob("speakers/*/score/summary.json"))
    summaries = {path.parent.parent.name: json.loads(path.read_text()) for path in paths}
    if not summaries:
        return []
    return [
        "## Several target voices and fine-tuning onto a new voice (stage 12)",
        "",
        "Resemblyzer cosine of the generated dev speech to each reference speaker's mean embedding (bold: the voice "
        "asked for); identified: utterances most similar to that voice.",
        "",
        *speaker_lines(summaries),
    ]


def denoising_table(exp_dir):
    """Markdown lines of the real-noise denoising evaluation (recipe stage 7: ``exp/denoiser_*/real_noise/``)."""
    lines = []
    for path in sorted(Path(exp_dir).glob("denoiser_*/real_noise/summary.json")):
        summary = json.loads(path.read_text())
        lines += [
            f"## Denoising real speech in recorded noise: `{path.parent.parent.name}` next to RNNoise and "
            "DeepFilterNet3 (stage 7)",
            "",
            *denoising_lines(summary),
            "",
            f"mel-SNR improvement (dB) of the Soft-VC log-mel; {summary['n_speech']} real speech clips x "
            f"{summary['excerpts']} excerpts of {summary['n_noises']} recorded noise(s) per SNR; clean kept: the "
            "output for the clean input scored against it; `X + ours`: our denoiser on X's output; bold: best mean.",
            "",
        ]
    return lines


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
        f"Generated by `python -m espnet_softvc.bin.results` on {datetime.date.today()}.",
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
