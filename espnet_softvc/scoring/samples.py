"""A samples page of voice conversion (``softvc-samples``), like the original Soft-VC demo page.

After the recipe's stage 11 the experiment dir holds, per model kind (``soft``, ``discrete``) and converted set::

    EXP_DIR/softvc_<kind>/convert_<set>/wav/<utt>.wav          converted speech (16 kHz)
    EXP_DIR/softvc_<kind>/convert_<set>/score/scores.csv       the outside judges, a row per utterance
    EXP_DIR/softvc_<kind>/convert_<set>/score/summary.json     their summary

and ``DATA_DIR/<set>/{wav.scp,utt2spk[,text]}`` the source speech. ``write_samples`` writes ``out_dir/index.html``:
a target-speaker example on top, then per set and speaker (``utt2spk``) up to ``per_speaker`` utterances: the source
and each model's conversion side by side, each with its audio, its Soft-VC log-mel and its scores (WER, similarity
to the target and to the source speaker, DNSMOS; the transcript where the set has one). The audio (re-encoded as
16 kHz 16-bit wav) lies under ``out_dir/audio/``, the mel images (PNG) under ``out_dir/mel/``; every link of the page
is relative and it loads nothing from the network: the folder can be zipped, moved and opened anywhere.
"""

import csv
import hashlib
import html
import json
import math
import re
from pathlib import Path
from urllib.parse import quote

import numpy as np
from tqdm import tqdm

from espnet_softvc.feats.log_mel import logmel
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import atomic_path, save_wav
from espnet_softvc.utils.kaldi_data import load_wav_entry, read_scp
from espnet_softvc.utils.shapes import HOP, LOG_FLOOR, SAMPLE_RATE

KIND_ORDER = ("soft", "discrete")  # columns in this order; other softvc_<kind> dirs after them, sorted
SUMMARY_KEYS = (  # (summary.json key, header, format)
    ("n_utts", "utts", "{:.0f}"),
    ("wer", "WER %", "{:.1f}"),
    ("cer", "CER %", "{:.1f}"),
    ("spk_sim", "sim. to target", "{:.3f}"),
    ("spk_sim_src", "sim. to source", "{:.3f}"),
    ("closer_to_target", "closer to target", "{:.0%}"),
    ("dnsmos_ovrl", "DNSMOS", "{:.2f}"),
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
.note { color: #555; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ddd; padding: 0.4em; vertical-align: top; text-align: left; }
thead th { background: #f4f4f4; }
table.summary td { text-align: right; }
th.utt { max-width: 16em; font-weight: normal; }
th.utt code { font-weight: bold; }
th.utt q { display: block; margin-top: 0.4em; color: #444; font-style: italic; }
audio { width: 320px; display: block; }
img.mel { width: 320px; height: 112px; display: block; margin-top: 0.3em; image-rendering: auto; }
ul.scores { list-style: none; padding: 0; margin: 0.3em 0 0; font-size: 0.85em; color: #333; }
ul.scores .hyp { color: #666; max-width: 320px; }
td.missing { color: #999; text-align: center; vertical-align: middle; }
"""


def _safe_name(name):
    """A file name for an utterance / set id: kept if plain, else sanitised with a short hash (no collisions)."""
    if re.fullmatch(r"[\w.-]+", name) and not name.startswith("."):
        return name
    return re.sub(r"[^\w.-]", "_", name).lstrip(".") + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]


def _kinds_and_sets(exp_dir, sets):
    """{set: {kind: convert wav dir}} of ``exp_dir/softvc_<kind>/convert_<set>/wav``."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise UserError(f"{exp_dir}: experiment directory does not exist")
    found = {}
    for wav_dir in sorted(exp_dir.glob("softvc_*/convert_*/wav")):
        if wav_dir.is_dir():
            kind = wav_dir.parent.parent.name.removeprefix("softvc_")
            found.setdefault(wav_dir.parent.name.removeprefix("convert_"), {})[kind] = wav_dir
    if not found:
        raise UserError(f"{exp_dir}: no softvc_<kind>/convert_<set>/wav directories (run the recipe's stage 11)")
    if sets:
        missing = [s for s in sets if s not in found]
        if missing:
            raise UserError(f"{exp_dir}: no softvc_<kind>/convert_{missing[0]}/wav (converted sets: {sorted(found)})")
        found = {s: found[s] for s in sets}
    rank = {k: i for i, k in enumerate(KIND_ORDER)}
    return {
        s: dict(sorted(kinds.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))) for s, kinds in found.items()
    }


def _float(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def read_scores(path):
    """{utt: {column: value}} of a ``softvc-score`` scores.csv (numbers as floats, empty cells left out); {} if the
    file is absent (the set was converted but not scored)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{path}: cannot read ({e})") from None
    if rows and "utt" not in rows[0]:
        raise UserError(f"{path}: no 'utt' column (not a softvc-score scores.csv)")
    scores = {}
    for row in rows:
        values = {k: (v if k == "hyp" else _float(v)) for k, v in row.items() if k != "utt" and v not in (None, "")}
        scores[row["utt"]] = {k: v for k, v in values.items() if v is not None}
    return scores


def _read_summary(path):
    try:
        summary = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: cannot read ({e})") from None
    return summary if isinstance(summary, dict) else {}


def _pick(utts, utt2spk, converted, per_speaker, utt2spk_path):
    """{speaker: [utt, ...]}: per speaker, the first ``per_speaker`` utterances (sorted) converted by the most
    models."""
    by_speaker = {}
    for utt in utts:
        if not any(utt in c for c in converted.values()):
            continue
        if utt not in utt2spk:
            raise UserError(f"{utt2spk_path}: no speaker for utterance {utt}")
        by_speaker.setdefault(utt2spk[utt], []).append(utt)
    return {
        spk: sorted(spk_utts, key=lambda u: (-sum(u in c for c in converted.values()), u))[:per_speaker]
        for spk, spk_utts in sorted(by_speaker.items())
    }


class _Assets:
    """Writes the audio (16 kHz PCM16 wav) and mel images (PNG) of the page under ``out_dir``."""

    def __init__(self, out_dir):
        from matplotlib.figure import Figure  # no pyplot: no GUI backend, nothing global

        self.out_dir, self.figure = Path(out_dir), Figure

    def add(self, wav, name, rel):
        """Write ``audio/<rel>.wav`` and ``mel/<rel>.png`` of a 16 kHz waveform; return their relative links and
        the duration."""
        audio, image = f"audio/{rel}.wav", f"mel/{rel}.png"
        save_wav(self.out_dir / audio, wav.numpy(), SAMPLE_RATE)
        self.mel_png(logmel(wav, name), self.out_dir / image)
        return quote(audio), quote(image), wav.numel() / SAMPLE_RATE

    def mel_png(self, mel, path):
        fig = self.figure(figsize=(4.0, 1.4), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
        seconds = mel.shape[1] * HOP / SAMPLE_RATE
        vmin = math.log(LOG_FLOOR)
        ax.imshow(
            mel,
            origin="lower",
            aspect="auto",
            cmap="magma",
            interpolation="nearest",
            vmin=vmin,
            vmax=max(float(np.max(mel)), vmin + 1.0),
            extent=(0, seconds, 0, mel.shape[0]),
        )
        ax.set_axis_off()
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                fig.savefig(f, format="png")
        except OSError as e:
            raise UserError(f"{path}: cannot write ({e.strerror or e})") from None


def _e(text):
    return html.escape(str(text), quote=True)


def _media(audio, image, label, seconds):
    return (
        f'<audio controls preload="metadata" src="{audio}"></audio>'
        f'<img class="mel" src="{image}" alt="log-mel spectrogram of {_e(label)}" title="{seconds:.2f} s">'
    )


def _scores_html(row):
    items = []
    if "wer" in row:
        cer = f" (CER {row['cer']:.1f} %)" if "cer" in row else ""
        items.append(f"WER {row['wer']:.1f} %{cer}")
    if "spk_sim" in row:
        items.append(f"sim. to target {row['spk_sim']:.3f}")
    if "spk_sim_src" in row:
        items.append(f"sim. to source {row['spk_sim_src']:.3f}")
    if "dnsmos_ovrl" in row:
        parts = [f"{k} {row[f'dnsmos_{k}']:.2f}" for k in ("sig", "bak") if f"dnsmos_{k}" in row]
        items.append(f"DNSMOS {row['dnsmos_ovrl']:.2f}" + (f" ({', '.join(parts)})" if parts else ""))
    if "mcd" in row:
        items.append(f"MCD {row['mcd']:.2f} dB")
    lines = [f"<li>{_e(item)}</li>" for item in items]
    if row.get("hyp"):
        lines.append(f'<li class="hyp">ASR: {_e(row["hyp"])}</li>')
    return f'<ul class="scores">{"".join(lines)}</ul>' if lines else ""


def _summary_html(summaries):
    keys = [k for k in SUMMARY_KEYS if any(_float(s.get(k[0])) is not None for s in summaries.values())]
    if not keys:
        return ""
    head = "".join(f"<th>{_e(header)}</th>" for _, header, _ in keys)
    rows = []
    for kind, summary in summaries.items():
        cells = []
        for key, _, fmt in keys:
            value = _float(summary.get(key))
            cells.append(f"<td>{_e(fmt.format(value)) if value is not None else '&ndash;'}</td>")
        rows.append(f"<tr><th>{_e(kind)}</th>{''.join(cells)}</tr>")
    return (
        f'<table class="summary"><thead><tr><th>model (whole set)</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def write_samples(
    exp_dir, data_dir, target_scp, out_dir, per_speaker=2, sets=None, target_utt=None, title=None, allow_pipes=False
):
    """Write the samples page ``out_dir/index.html`` with its audio and mel images; return its path.

    ``exp_dir``: the recipe's ``exp`` (``softvc_<kind>/convert_<set>/{wav,score}``); ``data_dir``: the data dirs of
    the sets (``<set>/wav.scp``, ``utt2spk``, optional ``text``); ``target_scp``: a Kaldi wav.scp of the target
    speaker, whose first utterance (or ``target_utt``) is the example on top; ``per_speaker``: utterances shown per
    source speaker; ``sets``: the converted sets to show (default: all); ``allow_pipes``: run the ``cmd |`` entries
    of the wav.scp files (Kaldi pipes)."""
    if per_speaker < 1:
        raise UserError(f"--per_speaker {per_speaker}: must be at least 1")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    converted_sets = _kinds_and_sets(exp_dir, sets)
    targets = read_scp(target_scp, allow_pipes=allow_pipes)
    if target_utt is None:
        target_utt = next(iter(targets))
    elif target_utt not in targets:
        raise UserError(f"{target_scp}: no utterance {target_utt}")

    plan = []  # per set: (set, {kind: {utt: wav}}, {kind: scores}, {kind: summary}, wav.scp, text, {spk: [utt]})
    for dset, kinds in converted_sets.items():
        scp_path = data_dir / dset / "wav.scp"
        if not scp_path.is_file():
            raise UserError(f"{scp_path}: not found (the source speech of exp softvc_*/convert_{dset})")
        sources = read_scp(scp_path, allow_pipes=allow_pipes)
        utt2spk_path = data_dir / dset / "utt2spk"
        if not utt2spk_path.is_file():
            raise UserError(f"{utt2spk_path}: not found (the speakers of {scp_path})")
        utt2spk = read_scp(utt2spk_path)
        text_path = data_dir / dset / "text"
        text = read_scp(text_path) if text_path.is_file() else {}
        converted = {kind: {p.stem: p for p in wav_dir.glob("*.wav") if p.is_file()} for kind, wav_dir in kinds.items()}
        speakers = _pick(sources, utt2spk, converted, per_speaker, utt2spk_path)
        if not speakers:
            dirs = ", ".join(str(d) for d in kinds.values())
            raise UserError(f"{scp_path}: none of its utterances has a converted wav in {dirs}")
        scores = {kind: read_scores(wav_dir.parent / "score" / "scores.csv") for kind, wav_dir in kinds.items()}
        summaries = {kind: _read_summary(wav_dir.parent / "score" / "summary.json") for kind, wav_dir in kinds.items()}
        plan.append((dset, converted, scores, summaries, sources, text, speakers))

    assets = _Assets(out_dir)
    n_utts = sum(len(utts) for *_, speakers in plan for utts in speakers.values())
    progress = tqdm(total=1 + n_utts, desc="samples", unit="utt")
    target = assets.add(load_wav_entry(target_utt, targets[target_utt]), target_utt, f"target/{_safe_name(target_utt)}")
    progress.update()

    body = [
        f"<h1>{_e(title or 'Soft-VC voice conversion samples')}</h1>",
        '<p class="note">Any-to-one voice conversion with the Soft-VC acoustic models (soft and discrete speech '
        "units) into the voice of the target speaker. Per source speaker: the source utterance, then each model's "
        "conversion, with the Soft-VC log-mel spectrogram and the outside judges' scores: WER of an ASR against "
        "the source transcript, speaker similarity (resemblyzer) to the target and to the source speaker, "
        "DNSMOS P.835.</p>",
        '<section id="target"><h2>Target speaker</h2>',
        f"<figure>{_media(*target[:2], f'target speaker, {target_utt}', target[2])}"
        f"<figcaption><code>{_e(target_utt)}</code></figcaption></figure></section>",
    ]
    for dset, converted, scores, summaries, sources, text, speakers in plan:
        kinds = list(converted)
        body.append(f'<section id="set-{_e(_safe_name(dset))}"><h2>{_e(dset)}</h2>')
        body.append(_summary_html({k: s for k, s in summaries.items() if s}))
        head = "".join(f"<th>{_e(kind)}</th>" for kind in kinds)
        for spk, utts in speakers.items():
            body.append(f"<h3>Speaker <code>{_e(spk)}</code></h3>")
            body.append(
                f'<table class="samples"><thead><tr><th>utterance</th><th>source</th>{head}</tr></thead><tbody>'
            )
            for utt in utts:
                name = _safe_name(utt)
                label = f"<code>{_e(utt)}</code>" + (f"<q>{_e(text[utt])}</q>" if utt in text else "")
                cells = [f'<th class="utt" scope="row">{label}</th>']
                source = assets.add(load_wav_entry(utt, sources[utt]), utt, f"{_safe_name(dset)}/source/{name}")
                cells.append(f"<td>{_media(*source[:2], f'{utt} (source)', source[2])}</td>")
                for kind in kinds:
                    if utt not in converted[kind]:
                        cells.append('<td class="missing">not converted</td>')
                        continue
                    path = converted[kind][utt]
                    wav = load_wav_entry(utt, str(path))
                    media = assets.add(wav, str(path), f"{_safe_name(dset)}/{_safe_name(kind)}/{name}")
                    cells.append(
                        f"<td>{_media(*media[:2], f'{utt} ({kind})', media[2])}"
                        f"{_scores_html(scores[kind].get(utt, {}))}</td>"
                    )
                body.append(f"<tr>{''.join(cells)}</tr>")
                progress.update()
            body.append("</tbody></table>")
        body.append("</section>")
    progress.close()

    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title or 'Soft-VC voice conversion samples')}</title>\n<style>{STYLE}</style>\n</head>\n"
        "<body>\n" + "\n".join(part for part in body if part) + "\n</body>\n</html>\n"
    )
    index = out_dir / "index.html"
    try:
        with atomic_path(index) as tmp:
            tmp.write_text(page, encoding="utf-8")
    except OSError as e:
        raise UserError(f"{index}: cannot write ({e.strerror or e})") from None
    return index
