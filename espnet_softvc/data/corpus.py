"""The built-in corpus: the CMU ARCTIC prompts read by flite's CMU ARCTIC voices, in LJSpeech layout.

Deterministic and offline (Debian's ``flite`` 2.2 and ``espeak-ng``), built in a minute or two::

    out/metadata.csv                  id|text|text for every utterance below
    out/wavs/train/TINY-NNNN.wav      the target speaker (``voice``, default flite ``slt``, US female), 22.05 kHz,
    out/wavs/dev/TINY-NNNN.wav        on the ARCTIC "a" prompts; every ``dev_every``-th goes to dev
    out/wavs/test/TINY-1NNN.wav       the target speaker on held-out "b" prompts (never in train or dev)
    out/wavs/others/<spk>-1NNN.wav    other speakers on held-out "b" prompts: flite ``rms`` (US male), ``awb``
                                      (Scottish male), ``kal16`` (US male, diphone) and espeak-ng voices
    out/wavs/multi/<spk>-NNNN.wav     other voices on the first ``MULTI_UTTS`` train prompts (ids parallel to train):
                                      for speaker-independent units (``softvc-train-units --extra_train``), never
                                      for the acoustic model; flite ``rms``, ``awb``, ``kal16`` and two espeak-ng
                                      voices that are not among the held-out ones

Sentences: the 1132 prompts of the CMU ARCTIC databases (``arctic_prompts.txt`` beside this file: ``id<TAB>text``,
festvox's ``cmuarctic.data``), phonetically balanced sentences from out-of-copyright Project Gutenberg texts, the
prompts flite's ARCTIC voices were recorded from. A ``voice`` that flite knows is spoken by flite, any other by
espeak-ng (``--voice en-us`` gives the earlier espeak-ng corpus).
"""

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from espnet_softvc.data.phones import parse_segments, phones_path
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import atomic_path

PROMPTS = Path(__file__).with_name("arctic_prompts.txt")
SAMPLE_RATE = 22050  # LJSpeech's
FLITE_VOICES = {"slt": 16000, "rms": 16000, "awb": 16000, "kal16": 16000, "kal": 8000}
FESTIVAL_VOICES = {"kal_diphone": 16000, "ked_diphone": 16000}  # Debian festvox-kallpc16k, festvox-kdlpc16k
OTHERS = ("rms", "awb", "kal16", "en-us", "en-gb-scotland", "en-us+f3")  # held-out speakers
HELD_OUT = 60  # held-out "b" prompts spoken by the target speaker (test)
OTHERS_UTTS = 20  # held-out "b" prompts per other speaker
# voices reading train prompts, for the content encoder: flite (with phone segmentations), festival, espeak-ng
MULTI = ("rms", "awb", "kal16", "kal", "kal_diphone", "ked_diphone", "en+m3", "en-us+f2")
MULTI_UTTS = 100  # train prompts per voice of MULTI


def prompts():
    """{"a": [593 texts], "b": [539 texts]}: the two CMU ARCTIC prompt sets, in order."""
    sets = {"a": [], "b": []}
    for line in PROMPTS.read_text(encoding="utf-8").splitlines():
        if line.strip():
            prompt_id, text = line.split("\t", 1)
            sets[prompt_id.removeprefix("arctic_")[0]].append(text.strip())
    return sets


def sentences():
    """All 1132 prompts ("a" then "b")."""
    sets = prompts()
    return sets["a"] + sets["b"]


def speaker_name(voice):
    """Speaker id of a voice in utterance ids (no ``-``: Kaldi's speaker is the id up to the first ``-``)."""
    if voice in FLITE_VOICES:
        return voice
    if voice in FESTIVAL_VOICES:
        return "festival_" + voice
    return "espeak_" + voice.replace("-", "_").replace("+", "_")


def engine_of(voice):
    """The synthesizer that speaks ``voice``: flite, festival (its diphone voices) or espeak-ng (any other)."""
    return "flite" if voice in FLITE_VOICES else "festival" if voice in FESTIVAL_VOICES else "espeak-ng"


def speak(text, path, voice):
    """Synthesize ``text`` with ``voice`` (flite, festival or espeak-ng) into ``path``: 22.05 kHz 16-bit."""
    engine = engine_of(voice)
    program = "text2wave" if engine == "festival" else engine
    if shutil.which(program) is None:
        package = "festival festvox-kallpc16k festvox-kdlpc16k" if engine == "festival" else "flite espeak-ng"
        raise UserError(f"{program} not found: install it (apt-get install -y {package})")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        if engine == "flite":
            cmd = ["flite", "-voice", voice, "-psdur", "-t", text, "-o", str(raw)]  # prints its phone segments
        elif engine == "festival":
            (Path(tmp) / "text.txt").write_text(text + "\n", encoding="utf-8")
            cmd = ["text2wave", "-eval", f"(voice_{voice})", "-o", str(raw), str(Path(tmp) / "text.txt")]
        else:
            cmd = ["espeak-ng", "-v", voice, "-w", str(raw), text]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not raw.is_file():
            raise UserError(f"{engine} voice {voice} failed: {proc.stderr.strip()[:200]}")
        wav, rate = sf.read(raw, dtype="float32")
    expected = {**FLITE_VOICES, **FESTIVAL_VOICES}.get(voice)
    if expected is not None and rate != expected:  # flite falls back to kal (8 kHz) on unknown voices
        raise UserError(f"{engine} voice {voice}: got {rate} Hz audio, expected {expected} (voice missing?)")
    if rate != SAMPLE_RATE:
        wav = torchaudio.functional.resample(torch.from_numpy(wav), rate, SAMPLE_RATE).numpy()
    if engine == "flite":  # the phone segmentation beside the wav (``data.phones``): exact phone targets
        parse_segments(proc.stdout, f"flite -voice {voice} -psdur")
        with atomic_path(phones_path(path)) as tmp:
            tmp.write_text(proc.stdout.strip() + "\n", encoding="utf-8")
    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(wav, -1, 1), SAMPLE_RATE, subtype="PCM_16", format="WAV")


def plan(num_utts=None, voice="slt", dev_every=15, others=OTHERS, num_test=HELD_OUT, multi=MULTI):
    """(utt_id, text, relative wav path, voice) of every utterance of the corpus: the first ``num_utts`` "a"
    prompts in train / dev, ``num_test`` "b" prompts by the target speaker (test, ids from 1001), the first
    ``OTHERS_UTTS`` "b" prompts by each of ``others`` (the same ids, so test and others are parallel) and the first
    ``MULTI_UTTS`` train prompts by each of ``multi`` (the same numbers as their train ids)."""
    sets = prompts()
    rows = []
    for i, text in enumerate(sets["a"][:num_utts], 1):
        split = "dev" if i % dev_every == 0 else "train"
        rows.append((f"TINY-{i:04d}", text, f"wavs/{split}/TINY-{i:04d}.wav", voice))
    for i, text in enumerate(sets["b"][:num_test], 1001):
        rows.append((f"TINY-{i:04d}", text, f"wavs/test/TINY-{i:04d}.wav", voice))
    for other in others:
        for i, text in enumerate(sets["b"][:OTHERS_UTTS], 1001):
            utt = f"{speaker_name(other)}-{i:04d}"
            rows.append((utt, text, f"wavs/others/{utt}.wav", other))
    train = [(i, t) for i, t in enumerate(sets["a"][:num_utts], 1) if i % dev_every != 0][:MULTI_UTTS]
    for other in multi:
        for i, text in train:
            utt = f"{speaker_name(other)}-{i:04d}"
            rows.append((utt, text, f"wavs/multi/{utt}.wav", other))
    return rows


def build(out_dir, num_utts=None, voice="slt", dev_every=15, others=OTHERS, num_test=HELD_OUT, nj=2, multi=MULTI):
    """Synthesize the corpus into ``out_dir`` (skipping wavs already there); returns ``plan``'s rows."""
    out_dir = Path(out_dir)
    rows = plan(num_utts, voice, dev_every, others, num_test, multi)
    todo = [
        (text, out_dir / rel, v)
        for _, text, rel, v in rows
        if not (out_dir / rel).exists() or (engine_of(v) == "flite" and not phones_path(out_dir / rel).exists())
    ]
    with ThreadPoolExecutor(nj) as pool:
        list(pool.map(lambda job: speak(*job), todo))
    with atomic_path(out_dir / "metadata.csv") as tmp:
        tmp.write_text("".join(f"{u}|{t}|{t}\n" for u, t, _, _ in rows), encoding="utf-8")
    return rows
