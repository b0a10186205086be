"""Phone targets for the offline content encoder: speaker-independent by construction.

flite's CMU ARCTIC voices say which phone they speak when (``flite -psdur``: ``phone:end_time`` per segment), so
every flite utterance of the built-in corpus has an exact phone segmentation. The encoder learns to tell which phone,
and which half of it, each 20 ms frame is: a label means the same sound whoever speaks, so its units carry the words
and not the voice. Voices without a segmentation (espeak-ng, festival) read sentences the target also read and get
its labels by DTW (``units.label_transfer``).

A segmentation file (``<utt>.phones`` beside ``<utt>.wav`` in the built-in corpus) holds ``flite -psdur``'s line:
``pau:0.209 ao:0.330 th:0.439 ...`` (phone, end time in seconds).
"""

from pathlib import Path

import numpy as np

from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.shapes import N_UNITS, UNIT_HOP

# flite's US English phone set (cmulex, as ``flite -ps`` prints it), silence first
PHONES = (
    "pau aa ae ah ao aw ax axr ay b ch d dh dx eh el em en er ey f g hh hv ih iy jh k l m n ng nx ow oy p r s sh t th"
    " uh uw v w y z zh"
).split()
STATES = 2  # each phone's first and second half
NUM_LABELS = STATES * len(PHONES)
assert NUM_LABELS <= N_UNITS  # the discrete units are the predicted labels: they must fit the acoustic model


def phones_path(wav_path):
    """The segmentation file beside a corpus wav: ``x/utt.wav`` -> ``x/utt.phones``."""
    return Path(wav_path).with_suffix(".phones")


def parse_segments(text, name="segments"):
    """``flite -psdur`` output -> [(phone, end seconds), ...]; a clear error naming ``name`` otherwise."""
    segments = []
    for item in text.split():
        phone, _, end = item.rpartition(":")
        try:
            segments.append((phone, float(end)))
        except ValueError:
            raise UserError(f"{name}: not a 'phone:end_time' segment: {item!r}") from None
        if phone not in PHONES:
            raise UserError(f"{name}: unknown phone {phone!r} (flite's US English set: {' '.join(PHONES)})")
    if not segments:
        raise UserError(f"{name}: no segments")
    return segments


def read_segments(path):
    """A ``.phones`` file -> [(phone, end seconds), ...]."""
    return parse_segments(Path(path).read_text(encoding="utf-8"), str(path))


def frame_labels(segments, num_frames, rate=16000):
    """Label of each 20 ms unit frame (N,) int64: ``STATES * phone index + half``, at the frame's centre.

    Frame n covers samples [320 n - 40, 320 n + 360) (the content encoder's receptive field): centre 320 n + 160.
    Frames past the last segment take its label."""
    ends = np.array([end for _, end in segments])
    starts = np.concatenate([[0.0], ends[:-1]])
    ids = np.array([PHONES.index(p) for p, _ in segments])
    centres = (np.arange(num_frames) * UNIT_HOP + UNIT_HOP / 2) / rate
    seg = np.minimum(np.searchsorted(ends, centres, side="right"), len(segments) - 1)
    second_half = centres >= (starts[seg] + ends[seg]) / 2
    return (STATES * ids[seg] + second_half).astype(np.int64)


def label_phone(label):
    """A label -> its phone name (``frame_labels``' inverse, the half dropped)."""
    return PHONES[int(label) // STATES]
