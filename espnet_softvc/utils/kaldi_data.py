"""Kaldi data dirs and dumps: checked scp reading, data-dir validation, atomic ark/scp writing via kaldiio."""

import contextlib
import io
import os
import subprocess
from pathlib import Path

import kaldiio
import numpy as np

from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import atomic_path, load_audio, write_lines


def is_pipe(value):
    """A Kaldi ``cmd |`` value (a shell command whose output is the data), not a file path."""
    return value.rstrip().endswith("|")


def read_scp(path, allow_pipes=False):
    """Ordered ``{utt_id: value}`` from a Kaldi ``utt_id value`` file; ids must be unique and sorted.

    A ``cmd |`` value (Kaldi pipe) is refused unless ``allow_pipes``: it would run a shell command.
    """
    entries = {}
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read ({e})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        utt_id, _, value = line.strip().partition(" ")
        if not value.strip():
            raise UserError(f"{path}:{lineno}: expected 'utt_id value', got {line.strip()!r}")
        if utt_id in entries:
            raise UserError(f"{path}:{lineno}: duplicate utterance id {utt_id}")
        if entries and utt_id < next(reversed(entries)):
            raise UserError(f"{path}:{lineno}: utterance ids not sorted ({utt_id} after {next(reversed(entries))})")
        value = value.strip()
        if is_pipe(value) and not allow_pipes:
            raise UserError(f"{path}:{lineno}: {utt_id} is a shell pipe; pass --allow_pipes to run it")
        entries[utt_id] = value
    if not entries:
        raise UserError(f"{path}: empty, no utterances")
    return entries


def merge_scp(out, parts):
    """Merge Kaldi ``utt_id value`` part files (e.g. one per job) into one sorted file, atomically."""
    merged = {}
    for part in parts:
        for key, value in read_scp(part, allow_pipes=True).items():
            if key in merged:
                raise UserError(f"{part}: utterance {key} also in another part")
            merged[key] = value
    write_lines(out, [f"{k} {v}" for k, v in sorted(merged.items())])


def load_wav_entry(utt_id, value, sample_rate=16000):
    """Mono audio at ``sample_rate`` for a wav.scp value: a file path, or (already allowed) a ``cmd |`` pipe."""
    if not is_pipe(value):
        if not os.path.isfile(value):
            raise UserError(f"{utt_id}: audio file {value} not found")
        return load_audio(value, sample_rate, name=f"{utt_id} ({value})")
    proc = subprocess.run(value[:-1], shell=True, capture_output=True)
    if proc.returncode != 0:
        raise UserError(f"{utt_id}: pipe command failed ({proc.stderr.decode(errors='replace').strip()[:200]})")
    return load_audio(io.BytesIO(proc.stdout), sample_rate, name=f"{utt_id} (pipe output)")


def validate_data_dir(data_dir):
    """Check wav.scp / text / utt2spk / spk2utt agree: same sorted unique ids, files present."""
    data_dir = Path(data_dir)
    wav = read_scp(data_dir / "wav.scp", allow_pipes=True)
    for name in ("text", "utt2spk"):
        ids = read_scp(data_dir / name)
        if list(ids) != list(wav):
            diff = sorted(set(ids) ^ set(wav))
            raise UserError(f"{data_dir / name}: utterance ids differ from wav.scp (e.g. {diff[:3]})")
    spk2utt = read_scp(data_dir / "spk2utt")
    if sorted(u for utts in spk2utt.values() for u in utts.split()) != sorted(wav):
        raise UserError(f"{data_dir / 'spk2utt'}: does not list the utterances of utt2spk")
    missing = [u for u, v in wav.items() if not is_pipe(v) and not os.path.isfile(v)]
    if missing:
        raise UserError(
            f"{data_dir / 'wav.scp'}: {len(missing)} audio files missing (first: {missing[0]} -> {wav[missing[0]]})"
        )
    return len(wav)


@contextlib.contextmanager
def ark_scp_writer(ark_path, scp_path):
    """A kaldiio ``WriteHelper`` (``writer[utt_id] = array``) whose ark and scp are written to temporary files and
    moved into place only when the block succeeds, the scp last (it points at the final ark name)."""
    ark_path, scp_path = Path(ark_path), Path(scp_path)
    try:
        with atomic_path(scp_path) as tmp_scp, atomic_path(ark_path) as tmp_ark:
            with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
                yield writer
            tmp_scp.write_text(tmp_scp.read_text().replace(f"{tmp_ark}:", f"{ark_path}:"))
    except OSError as e:
        raise UserError(f"{ark_path}: cannot write ({e.strerror or e})") from None


def write_ark_scp(arrays, ark_path, scp_path):
    """Write ``{utt_id: array}`` as Kaldi ark + scp atomically."""
    with ark_scp_writer(ark_path, scp_path) as writer:
        for utt_id, array in arrays.items():
            writer[utt_id] = array


class CheckedLoader:
    """Wraps an ESPnet data loader (``{utt_id: array}``, e.g. a lazy kaldi_ark scp) of ``path``: a failed read or a
    NaN/Inf in a float array is a one-line ``UserError`` naming the utterance and the file."""

    def __init__(self, loader, path):
        self.loader, self.path = loader, path

    def __getitem__(self, utt_id):
        try:
            value = self.loader[utt_id]
        except Exception as e:  # kaldiio raises many types for bad offsets and truncated arks
            raise UserError(f"{utt_id}: cannot read it from {self.path} ({type(e).__name__}: {e})") from None
        array = np.asarray(value[1] if isinstance(value, tuple) else value)
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise UserError(f"{utt_id}: NaN or Inf in {self.path}")
        return value

    def __getattr__(self, name):  # keys(), items(), ... of the wrapped loader
        return getattr(self.loader, name)

    def __iter__(self):
        return iter(self.loader)

    def __len__(self):
        return len(self.loader)

    def __contains__(self, utt_id):
        return utt_id in self.loader


def read_ark_entry(utt_id, value):
    """Load one ``ark:offset`` scp value with a clear error for corrupt or missing arks."""
    try:
        array = kaldiio.load_mat(value)
    except Exception as e:  # kaldiio raises many types for bad offsets/files
        raise UserError(f"{utt_id}: cannot read {value} ({type(e).__name__}: {e})") from None
    if isinstance(array, tuple):  # (rate, wav) from a wav ark
        array = array[1]
    array = np.asarray(array)
    if array.size == 0:
        raise UserError(f"{utt_id}: empty array in {value}")
    return array
