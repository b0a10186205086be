"""Outside judges that nobody here wrote, all offline (their weights ship inside their wheels), on 16 kHz mono audio.

- ASR: pocketsphinx 5.1.1, its default US-English acoustic model, language model and dictionary;
- speaker similarity: resemblyzer 0.1.4 (GE2E speaker encoder, 256-dim unit-norm embeddings);
- DNSMOS P.835 (SIG / BAK / OVRL): speechmos;
- F0: WORLD (pyworld, as ESPnet's ``evaluate_f0``) for log-F0 RMSE and correlation.

Each judge loads once per process, on first use. They are an optional extra (``pip install 'espnet-softvc[eval]'``,
resemblyzer then with ``--no-deps``, as ``scripts/setup.sh``): nothing imports them before a judge is asked for, and
a missing one is a one-line error saying how to install it (``_import``).
"""

import functools
import importlib
import math
import re
import unicodedata

import numpy as np
import torch

from espnet_softvc.utils.errors import not_installed
from espnet_softvc.utils.shapes import SAMPLE_RATE

ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
QUOTES = str.maketrans("‘’‚‛ʼʹ′`´“”„‟″", "'" * 9 + '"' * 5)  # curly, modifier, prime -> straight


EVAL = "pip install 'espnet-softvc[eval]'"
# resemblyzer's declared dependencies do not install on Python 3.11 (scripts/setup.sh): it comes on its own, its
# webrtcvad with the extra (webrtcvad-wheels)
INSTALL = {"resemblyzer": f"{EVAL} && pip install --no-deps resemblyzer==0.1.4"}


def _import(name):
    """Module ``name`` of an outside judge; if it (or a package it needs) is not installed, a UserError naming the
    missing package and how to install it."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        missing = (e.name or name).partition(".")[0]
        raise not_installed(missing, INSTALL.get(missing, EVAL)) from None


def _number(n):
    """English words of a non-negative integer (below a million; longer numbers digit by digit)."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        return ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + _number(n % 100))
    if n < 1_000_000:
        return _number(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + _number(n % 1000))
    return " ".join(ONES[int(c)] for c in str(n))


def normalize_text(text):
    """The usual normalisation before WER: curly quotes made straight, case folded, accents dropped (NFKD without
    its combining diacritics, U+0300-036F: "café" -> "cafe"; other scripts' marks kept), numbers spelled out, hyphens
    split, punctuation dropped (letters of any script kept; apostrophes inside words too: the dictionary has
    "don't"), whitespace collapsed."""
    text = unicodedata.normalize("NFKD", text.translate(QUOTES).casefold())
    text = unicodedata.normalize("NFC", re.sub("[\u0300-\u036f]", "", text)).replace("-", " ")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    text = re.sub(r"\d+", lambda m: f" {_number(int(m.group()))} ", text)
    text = "".join(c if c == "'" or unicodedata.category(c)[0] in "LMN" else " " for c in text)
    text = re.sub(r"(?<!\S)'+|'+(?!\S)", " ", text)
    return " ".join(text.split())


def error_rates(references, hypotheses):
    """WER and CER in percent (jiwer) of normalised texts over the whole set: errors / reference words (chars)."""
    jiwer = _import("jiwer")
    refs = [normalize_text(r) for r in references]
    hyps = [normalize_text(h) for h in hypotheses]
    return 100 * jiwer.process_words(refs, hyps).wer, 100 * jiwer.process_characters(refs, hyps).cer


@functools.lru_cache(maxsize=1)
def _decoder():
    # en-us acoustic model, en-us.lm.bin and cmudict from the wheel, 16 kHz
    return _import("pocketsphinx").Decoder(loglevel="FATAL")


def transcribe(wav):
    """16 kHz float waveform (S,) -> pocketsphinx's hypothesis (lower-case words)."""
    decoder = _decoder()
    pcm = (np.clip(np.asarray(wav, dtype=np.float64), -1, 1) * 32767).astype("<i2").tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, no_search=False, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


SOUND_DBFS = -70.0  # a 10 ms frame whose RMS is below this is silence (16-bit dither: about -100 dBFS)
MIN_SOUND_S = 0.5  # seconds of such frames that speaker similarity and DNSMOS need (see skip_reason)


def skip_reason(wav):
    """Why speaker similarity and DNSMOS must not judge a 16 kHz waveform, or None: silent (no 10 ms frame above
    ``SOUND_DBFS``) or too short (under ``MIN_SOUND_S`` of such frames). Neither judge refuses these: resemblyzer
    zero-pads to its 1.6 s window (silence: a similarity of about 0.4 to any speaker) and DNSMOS repeats the clip up
    to 9 s (silence: about 1.8). Half a second of real speech still tells two speakers apart (similarity 0.68 to the
    same VCTK speaker, 0.51 to another) and gets a DNSMOS near the full clip's; a tenth of a second does not."""
    wav = np.asarray(wav, dtype=np.float64)
    frames = np.pad(wav, (0, -len(wav) % 160)).reshape(-1, 160)
    sound = 0.01 * np.count_nonzero(10 * np.log10((frames**2).mean(1) + 1e-20) > SOUND_DBFS)
    if sound == 0:
        peak = np.abs(wav).max(initial=0.0)
        return f"silent (peak {20 * math.log10(peak) if peak else -math.inf:.0f} dBFS)"
    if sound < MIN_SOUND_S:
        return f"too short ({sound:.2f} s of sound above {SOUND_DBFS:.0f} dBFS, need >= {MIN_SOUND_S} s)"
    return None


@functools.lru_cache(maxsize=1)
def _voice_encoder():
    return _import("resemblyzer").VoiceEncoder("cpu", verbose=False)  # pretrained.pt from the wheel


def speaker_embedding(wav):
    """16 kHz float waveform -> resemblyzer's (256,) unit-norm utterance embedding (its own preprocessing:
    loudness normalisation and VAD trimming of long silences)."""
    preprocess_wav = _import("resemblyzer").preprocess_wav
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small LSTM: extra threads only wait on each other
    try:
        audio = preprocess_wav(np.asarray(wav, dtype=np.float32), source_sr=SAMPLE_RATE)
        if audio.size < SAMPLE_RATE // 10:  # VAD left (almost) nothing: embed the untrimmed audio
            audio = np.asarray(wav, dtype=np.float32)
        return _voice_encoder().embed_utterance(audio)
    finally:
        torch.set_num_threads(threads)


def mean_embedding(embeddings):
    """Speaker embedding of several utterances: their mean, renormalised (resemblyzer's ``embed_speaker``)."""
    mean = np.mean(embeddings, axis=0)
    return mean / np.linalg.norm(mean)


def dnsmos(wav):
    """DNSMOS P.835 of a 16 kHz waveform: {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"} (1..5)."""
    model = _import("speechmos.dnsmos")
    audio = np.asarray(wav, dtype=np.float32)
    peak = np.abs(audio).max()
    scores = model.run(audio / peak if peak > 1 else audio, sr=SAMPLE_RATE)
    return {"dnsmos_ovrl": scores["ovrl_mos"], "dnsmos_sig": scores["sig_mos"], "dnsmos_bak": scores["bak_mos"]}


def f0(wav, frame_ms=10.0):
    """WORLD F0 (Hz, 0 = unvoiced) every ``frame_ms`` of a 16 kHz waveform (harvest, 40-800 Hz as ESPnet)."""
    import pyworld

    values, _ = pyworld.harvest(
        np.asarray(wav, dtype=np.float64), SAMPLE_RATE, f0_floor=40.0, f0_ceil=800.0, frame_period=frame_ms
    )
    return values


def f0_scores(est, ref):
    """log-F0 RMSE and Pearson correlation of two aligned F0 tracks over the frames voiced in both (None if fewer
    than 2 such frames; the correlation None if either track is flat there)."""
    voiced = (est > 0) & (ref > 0)
    if voiced.sum() < 2:
        return None, None
    a, b = np.log(est[voiced]), np.log(ref[voiced])
    rmse = float(np.sqrt(np.mean((a - b) ** 2)))
    return rmse, float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else None
