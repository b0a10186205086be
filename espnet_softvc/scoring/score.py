"""Scores of a directory of wavs by the outside judges (``softvc-score``): what a listener would check.

For every ``*.wav`` of ``pred_dir`` (utterance id = file stem; any rate, any channel count; read as 16 kHz mono;
a Kaldi ``wav.scp`` works too, for ``pred_dir`` and ``ref_dir``):

- ``wer`` / ``cer`` (%): pocketsphinx's transcript against ``text`` (Kaldi ``uttid transcript``), normalised;
- ``spk_sim``: cosine of the utterance's resemblyzer embedding to the speaker embedding of ``ref_dir``'s wavs;
- ``dnsmos_ovrl`` / ``dnsmos_sig`` / ``dnsmos_bak``: DNSMOS P.835;
- with ``src_dir`` (voice conversion: the source speech, same ids): ``spk_sim_src``, cosine to the embedding of the
  utterance's source speech, and ``closer_to_target`` (1 when ``spk_sim`` > ``spk_sim_src``; its mean in the
  summary is the share of utterances that sound more like the target than like their source speaker);
- with a wav of the same id in ``ref_dir``: ``mcd`` (dB; mel-cepstra of the Soft-VC log-mel, c1..c24, DTW, the
  formula of ESPnet's ``evaluate_mcd``), ``log_f0_rmse`` and ``f0_corr`` (WORLD F0 on the MCD's DTW path, frames
  voiced in both).

Silence and clips with under half a second of sound get no speaker similarity or DNSMOS (``judges.skip_reason``):
their cells are NaN, ``skipped`` says why, and the summary's means leave them out (``n_skipped`` counts them).

Writes ``out_dir/scores.csv`` (a row per utterance) and ``out_dir/summary.json`` (WER / CER over the whole set,
other scores as means, and the counts).
"""

import csv
import json
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from espnet_softvc.feats.log_mel import logmel
from espnet_softvc.scoring import judges, metrics
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import atomic_path, check_writable_dir, find_files, load_audio
from espnet_softvc.utils.kaldi_data import load_wav_entry, read_scp
from espnet_softvc.utils.workers import Pool

SIMILARITY = ["spk_sim", "spk_sim_src", "closer_to_target"]
DNSMOS = ["dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"]
MEANS = [*SIMILARITY, *DNSMOS, "mcd", "log_f0_rmse", "f0_corr"]  # per-utterance scores averaged in the summary
COLUMNS = ["utt", "seconds", "wer", "cer", "hyp", *MEANS, "skipped"]


def read_wavs(source, name):
    """{utterance id: 16 kHz mono waveform} of ``source``: a directory (``**/*.wav``, id = file stem, unique) or a
    Kaldi ``wav.scp`` (paths, no pipes)."""
    source = Path(source)
    if source.is_file():
        return {utt: load_wav_entry(utt, path).numpy() for utt, path in read_scp(source).items()}
    wavs = {}
    for path in find_files(source, ".wav"):
        if path.stem in wavs:
            raise UserError(f"{path}: utterance id {path.stem} appears twice in {name} {source}")
        wavs[path.stem] = load_audio(path).numpy()
    return wavs


def pair_scores(est, ref):
    """MCD (DTW) and log-F0 RMSE / correlation on its path, of two 16 kHz waveforms."""
    mel_est, mel_ref = (
        logmel(torch.as_tensor(w, dtype=torch.float32), name).T for w, name in ((est, "pred"), (ref, "ref"))
    )
    path = metrics.dtw_path(mel_est, mel_ref)
    mcd = metrics.mel_cepstral_distortion(mel_est[path[:, 0]], mel_ref[path[:, 1]], dtw=False)
    f0_est, f0_ref = judges.f0(est), judges.f0(ref)
    pairs = np.minimum(path, [len(f0_est) - 1, len(f0_ref) - 1])
    rmse, corr = judges.f0_scores(f0_est[pairs[:, 0]], f0_ref[pairs[:, 1]])
    return {"mcd": mcd, "log_f0_rmse": rmse, "f0_corr": corr}


def score_utterance(utt, wav, text=None, speaker=None, dnsmos=True, ref=None, src=None):
    """The judges' scores of one 16 kHz utterance: a row of ``scores.csv`` (see the module's docstring)."""
    row = {"utt": utt, "seconds": len(wav) / 16000}
    if text is not None:
        row["hyp"] = judges.transcribe(wav)
        row["wer"], row["cer"] = judges.error_rates([text], [row["hyp"]])
    skipped = judges.skip_reason(wav) if speaker is not None or dnsmos else None
    if skipped is not None:  # silence or a blip: NaN similarity and DNSMOS cells, and why
        similarity = [] if speaker is None else SIMILARITY[:1] if src is None else SIMILARITY
        row.update(dict.fromkeys(similarity + (DNSMOS if dnsmos else []), math.nan), skipped=skipped)
        speaker = dnsmos = None
    if speaker is not None:
        embedding = judges.speaker_embedding(wav)
        row["spk_sim"] = float(embedding @ speaker)
        if src is not None and (src_skipped := judges.skip_reason(src)) is not None:
            row.update(spk_sim_src=math.nan, closer_to_target=math.nan, skipped=f"source {src_skipped}")
        elif src is not None:
            row["spk_sim_src"] = float(embedding @ judges.speaker_embedding(src))
            row["closer_to_target"] = float(row["spk_sim"] > row["spk_sim_src"])
    if dnsmos:
        row.update(judges.dnsmos(wav))
    if ref is not None:
        row.update(pair_scores(wav, ref))
    return row


def _score_block(jobs, progress=False):
    """A block of utterances, in order, with a fresh pocketsphinx decoder: it adapts its cepstral mean across the
    utterances it decodes, so a block's transcripts depend on the block alone (deterministic for a given nj, and
    the same whatever this process scored before)."""
    judges._decoder.cache_clear()
    return [score_utterance(**job) for job in tqdm(jobs, desc="score", disable=not progress)]


def score_dir(pred_dir, out_dir, text=None, ref_dir=None, dnsmos=True, src_dir=None, nj=1, pairs=True, asr_ref=False):
    """Score every wav of ``pred_dir``; write ``scores.csv`` and ``summary.json`` into ``out_dir``; return the
    summary. ``text``: Kaldi text file (WER / CER); ``ref_dir``: wavs of the reference speaker (similarity) and,
    under the same ids, references for MCD and F0; ``dnsmos``: run DNSMOS (about 1 s per utterance); ``src_dir``:
    the source wavs of converted speech (same ids), for the similarity to the source speaker; ``nj``: utterances
    scored in that many processes at once, in contiguous blocks (deterministic; pocketsphinx adapts its cepstral
    mean across the utterances one process decodes, so its transcripts can differ a little between nj values);
    ``pairs=False``: no MCD / F0 even for ids in ``ref_dir`` (speaker similarity only); ``asr_ref``: for sources
    without a transcript, the ASR's transcript of each source wav is the reference (written to ``out_dir/ref_text``;
    the WER then says how much of what the ASR hears in the source the conversion keeps). The inputs and ``out_dir``
    are checked before any judging; silent or too short reference wavs are left out of the speaker embedding."""
    preds = read_wavs(pred_dir, "PRED_DIR")
    texts = read_scp(text) if text is not None else None
    if texts is not None:
        missing = sorted(set(preds) - set(texts))
        if missing:
            raise UserError(f"{text}: no transcript for {len(missing)} wavs of {pred_dir} (first: {missing[0]})")
    refs = read_wavs(ref_dir, "REF_DIR") if ref_dir is not None else {}
    voiced = [w for w in refs.values() if judges.skip_reason(w) is None]  # the speaker: not silence or blips
    if refs and not voiced:
        raise UserError(f"{ref_dir}: no reference wav has {judges.MIN_SOUND_S} s of sound (all silent or too short)")
    sources = read_wavs(src_dir, "SRC_DIR") if src_dir is not None else None
    if sources is not None:
        missing = sorted(set(preds) - set(sources))
        if missing:
            raise UserError(f"{src_dir}: no source wav for {len(missing)} wavs of {pred_dir} (first: {missing[0]})")
        if not refs:
            raise UserError(f"{src_dir}: the similarity to the source needs --ref_dir (the target speaker) too")
    if asr_ref and (texts is not None or sources is None):
        raise UserError(f"{pred_dir}: the ASR reference replaces a missing transcript and needs the source wavs")
    check_writable_dir(out_dir)  # before the judging
    if asr_ref:
        judges._decoder.cache_clear()  # a fresh decoder, as for a block: the references do not depend on nj
        texts = {utt: judges.transcribe(sources[utt]) for utt in tqdm(sorted(preds), desc="ASR references")}
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        with atomic_path(Path(out_dir) / "ref_text") as tmp:
            tmp.write_text("".join(f"{utt} {t}\n" for utt, t in texts.items()), encoding="utf-8")
    speaker = judges.mean_embedding([judges.speaker_embedding(w) for w in voiced]) if refs else None
    jobs = [
        dict(
            utt=utt,
            wav=wav,
            text=None if texts is None else texts[utt],
            speaker=speaker,
            dnsmos=dnsmos,
            ref=refs.get(utt) if pairs else None,
            src=None if sources is None else sources[utt],
        )
        for utt, wav in sorted(preds.items())
    ]
    if nj > 1 and len(jobs) > 1:
        size = math.ceil(len(jobs) / nj)
        blocks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        with Pool(len(blocks), "spawn") as pool:
            rows = [
                row for block in tqdm(pool.map(_score_block, blocks), total=len(blocks), desc="score") for row in block
            ]
    else:
        rows = _score_block(jobs, progress=True)
    summary = summarize(rows, texts)
    summary.update(pred_dir=str(pred_dir), ref_dir=None if ref_dir is None else str(ref_dir), n_ref_wavs=len(voiced))
    if asr_ref:
        summary["reference_text"] = "asr"
    write(rows, summary, out_dir)
    return summary


def summarize(rows, texts):
    """WER / CER over the set (errors / reference length), means of the other scores, counts."""
    summary = {"n_utts": len(rows)}
    if texts is not None:
        refs, hyps = [texts[r["utt"]] for r in rows], [r["hyp"] for r in rows]
        summary["wer"], summary["cer"] = judges.error_rates(refs, hyps)
        summary["n_words"] = sum(len(judges.normalize_text(t).split()) for t in refs)
    for key in MEANS:
        values = [r[key] for r in rows if r.get(key) is not None and not math.isnan(r[key])]
        if values:
            summary[key] = float(np.mean(values))
    summary["n_paired"] = sum("mcd" in r for r in rows)
    summary["n_skipped"] = sum("skipped" in r for r in rows)
    return summary


def write(rows, summary, out_dir):
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "scores.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in COLUMNS})
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return value
