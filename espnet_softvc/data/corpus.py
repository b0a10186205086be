"""A tiny LJSpeech-layout corpus spoken by espeak-ng: deterministic, offline, built in seconds.

out/wavs/{train,dev}/TINY-NNNN.wav (22.05 kHz, 16-bit mono), out/metadata.csv (``id|text|text``).
Every tenth utterance goes to dev. Sentences: ``sentences.txt`` beside this file, written for this project.
"""

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import atomic_path

SENTENCES = Path(__file__).with_name("sentences.txt")
SAMPLE_RATE = 22050


def sentences():
    return [line.strip() for line in SENTENCES.read_text().splitlines() if line.strip()]


def _speak(text, path, voice, speed):
    with atomic_path(path) as tmp:
        cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(tmp), text]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def build(out_dir, num_utts=None, voice="en-us", speed=165, dev_every=10, nj=4):
    """Synthesize the corpus into ``out_dir`` (skipping wavs already there); returns the metadata rows."""
    if shutil.which("espeak-ng") is None:
        raise UserError("espeak-ng not found: install it (apt-get install -y espeak-ng)")
    texts = sentences()[:num_utts]
    out_dir = Path(out_dir)
    rows = []
    jobs = []
    for i, text in enumerate(texts, 1):
        utt_id = f"TINY-{i:04d}"
        split = "dev" if i % dev_every == 0 else "train"
        path = out_dir / "wavs" / split / f"{utt_id}.wav"
        rows.append((utt_id, text, split))
        if not path.exists():
            jobs.append((text, path))
    with ThreadPoolExecutor(nj) as pool:
        list(pool.map(lambda job: _speak(*job, voice, speed), jobs))
    with atomic_path(out_dir / "metadata.csv") as tmp:
        tmp.write_text("".join(f"{u}|{t}|{t}\n" for u, t, _ in rows))
    return rows
