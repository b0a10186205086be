"""Checked, atomic file I/O shared by every CLI: audio, .npy arrays, text, YAML."""

import contextlib
import errno
import glob
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio
import yaml

from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.shapes import SAMPLE_RATE

_UMASK = os.umask(0)
os.umask(_UMASK)


def _alive(pid):
    """Whether process ``pid`` runs: a zombie has ended (a worker killed with its parent may stay one, unreaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True  # no /proc: the signal's answer


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    Temporaries are named ``.<name>.<pid>.<random>.tmp``: those of ``path`` left by a killed writer are removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    for stale in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        writer = _writer(stale)
        if writer is not None and not _alive(writer):
            stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the permissions open() would
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _writer(tmp):
    """The pid in an ``atomic_path`` temporary's name ``.<name>.<pid>.<random>.tmp`` (mkstemp's random part has no
    dot), or None for another file."""
    writer = re.fullmatch(r"\..+\.(\d+)\.[^.]+\.tmp", Path(tmp).name)
    return writer and int(writer[1])


def remove_temporaries(root, writers):
    """Unlink the ``atomic_path`` temporaries under the folder ``root`` (recursively) that the processes ``writers``
    (pids, ended) left: the parent of killed workers (``utils.workers.Pool``) cleans up after them."""
    writers = set(writers)
    for tmp in Path(root).rglob(".*.tmp"):
        if _writer(tmp) in writers:
            tmp.unlink(missing_ok=True)


def save_npy(path, array):
    """Write ``array`` to ``path`` (.npy) atomically; a full disk or dead process leaves no partial file."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array))
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e})") from None


def write_lines(path, lines):
    """Write text lines to ``path`` atomically."""
    try:
        with atomic_path(path) as tmp:
            tmp.write_text("".join(f"{line}\n" for line in lines))
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e})") from None


def save_wav(path, wav, sample_rate=SAMPLE_RATE):
    """Write a mono float waveform as 16-bit PCM wav, atomically."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    try:
        with atomic_path(path) as tmp:
            sf.write(tmp, np.clip(wav, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e})") from None


def load_audio(source, sample_rate=SAMPLE_RATE, name=None):
    """Read an audio file (path or file object) as a mono float32 tensor ``(S,)`` resampled to ``sample_rate``.

    Multi-channel files are averaged to mono. Unreadable and empty files raise ``UserError`` naming ``name``
    (default: the path).
    """
    path = name or source
    try:
        with sf.SoundFile(source if hasattr(source, "read") else str(source)) as f:
            wav, sr = f.read(dtype="float32", always_2d=True), f.samplerate
            declared = re.search(r"^data\s*:\s*(\d+) \(should be (\d+)\)", f.extra_info, re.M)  # libsndfile's WAV log
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise UserError(f"{path}: not a readable audio file ({e})") from None
    if declared and int(declared[2]) < int(declared[1]) < 0x7FFF0000:  # larger: a streamed wav's size placeholder
        raise UserError(
            f"{path}: truncated audio file (header declares {declared[1]} bytes of audio, {declared[2]} present)"
        )
    if wav.shape[0] == 0:
        raise UserError(f"{path}: empty audio (0 samples)")
    wav = torch.from_numpy(wav.mean(axis=1) if wav.shape[1] > 1 else wav[:, 0])
    if not torch.isfinite(wav).all():
        raise UserError(f"{path}: audio contains NaN or Inf samples")
    if sr != sample_rate:
        wav = torchaudio.functional.resample(wav, sr, sample_rate)
    return wav


def load_npy(path):
    """Load a numeric .npy array (no pickles); corrupt, empty or non-finite files raise ``UserError``."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npy array ({e})") from None
    if array.size == 0:
        raise UserError(f"{path}: empty array {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise UserError(f"{path}: expected a numeric array, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise UserError(f"{path}: array contains NaN or Inf")
    return array


def load_yaml(path):
    """A YAML config as plain data (``yaml.safe_load``: Python tags are refused, never run): a mapping."""
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}: not a plain YAML file{where} ({getattr(e, 'problem', None) or e})") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: expected a mapping of options, got {type(config).__name__}")
    return config


def same_options(path, options):
    """Whether ``path`` holds ``options`` (a mapping: the options of the run that wrote the outputs beside it; an
    unreadable file holds none), then records ``options`` there: a rerun with the same options may skip what is
    complete (``softvc-dump-units``' shards, ``softvc-convert``'s wavs)."""
    try:
        same = Path(path).is_file() and yaml.safe_load(Path(path).read_text(encoding="utf-8")) == options
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        same = False
    write_lines(path, yaml.safe_dump(options).splitlines())
    return same


def find_files(in_dir, extension):
    """Sorted files under ``in_dir`` ending in ``extension``, in any case (``x.WAV`` too), like the original
    ``rglob``; hidden files (ours in progress) are left out."""
    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise UserError(f"{in_dir}: input directory does not exist")
    extension = extension.lower()
    paths = sorted(
        p for p in in_dir.rglob("*") if p.name.lower().endswith(extension) and p.is_file() and p.name[0] != "."
    )
    if not paths:
        raise UserError(f"{in_dir}: no *{extension} files found")
    return paths


def mirror(path, in_dir, out_dir, suffix=".npy"):
    """The output path of ``path`` (a file under ``in_dir``): the same relative path under ``out_dir``, ``suffix``."""
    return (Path(out_dir) / Path(path).relative_to(in_dir)).with_suffix(suffix)


def check_file_name(name, source):
    """``name`` (an utterance id from ``source``) as a plain file name; a path separator, ``..``, an absolute path
    or an empty name raises ``UserError``: names from data never become paths outside the output directory."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise UserError(f"{source}: utterance id {name!r} is not a plain file name (no '/', '\\' or '..')")
    return name


def check_outputs(outputs, inputs, out_dir=None):
    """Before any work: no output path resolves to an input path (symlinks followed), and ``out_dir`` (if given)
    is a directory this process can write. Raises ``UserError`` naming the output and the input."""
    sources = {}
    for path in inputs:
        sources.setdefault(Path(path).resolve(), path)
    for path in outputs:
        source = sources.get(Path(path).resolve())
        if source is not None:
            raise UserError(f"{path}: this output would overwrite the input {source}; choose another output")
    if out_dir is not None:
        check_writable_dir(out_dir)


def check_writable_dir(out_dir):
    """Check that ``out_dir`` is, or can be made, a directory this process can write in, without making it (a
    command that fails later leaves nothing behind): else a one-line ``UserError``."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: the output directory is a file")
    existing = next(p for p in (out_dir, *out_dir.absolute().parents) if p.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"{out_dir}: cannot write the output directory ({e.strerror or e})") from None
