"""Safe opening of ESPnet packed models (``pack_funcs.pack`` zip/tar with ``meta.yaml``) and unpacked folders.

ESPnet's own ``unpack`` extracts members as they are and its ``build_model_from_file`` unpickles with
``weights_only=False``, so a model from a stranger could write outside the target folder or run code. Here
every member is checked before anything is written, and the error names the member:

- names: no absolute paths, no ``..``; links (tar symlinks/hardlinks, zip symlinks, folder symlinks) must point
  inside (they are written as plain copies); other special files are refused;
- content by suffix: checkpoints (.pth .pt .pkl .ckpt) load with ``torch.load(weights_only=True)``, YAML with
  ``yaml.safe_load``, .npy/.npz without pickles; plain data (.md .txt .png .json .log) is copied as it is;
  anything else is refused.

As in ESPnet, paths inside the YAML files that name a packed file are rewritten to where it now lies.
"""

import contextlib
import io
import os
import posixpath
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
import yaml
from espnet2.main_funcs.pack_funcs import find_path_and_change_it_recursive

from espnet_softvc.utils.errors import UserError

CHECKPOINTS = {".pth", ".pt", ".pkl", ".ckpt"}
YAMLS = {".yaml", ".yml"}
ARRAYS = {".npy", ".npz"}
PLAIN = {".md", ".txt", ".png", ".json", ".log"}


def check_name(source, name):
    """A member name must be relative and stay inside the target folder."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UserError(f"{source}: member {name!r} has an absolute path; refused")
    if ".." in name.replace("\\", "/").split("/"):
        raise UserError(f"{source}: member {name!r} contains '..'; refused")


def link_target(source, name, target, relative_to_member=True):
    """Normalised member name a link points to; links leaving the archive are refused."""
    joined = posixpath.join(posixpath.dirname(name), target) if relative_to_member else target
    resolved = posixpath.normpath(joined)
    if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise UserError(f"{source}: member {name!r} is a link pointing outside the archive ({target}); refused")
    return resolved


def check_content(source, name, data):
    """Refuse members that are not tensor-only checkpoints, safe YAML, pickle-free arrays or plain data."""
    suffix = posixpath.splitext(name)[1].lower()
    try:
        if suffix in CHECKPOINTS:
            torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        elif suffix in YAMLS:
            yaml.safe_load(data)
        elif suffix == ".npy":
            np.load(io.BytesIO(data), allow_pickle=False)
        elif suffix == ".npz":
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                for key in arrays.files:
                    arrays[key]  # reading each array refuses object (pickled) arrays
        elif suffix not in PLAIN:
            raise UserError(f"{source}: member {name!r} is not a checkpoint, YAML, array or plain data file; refused")
    except UserError:
        raise
    except Exception as e:  # any loader failure: corrupt, or a pickle / YAML tag that would run code
        kind = "tensor-only checkpoint" if suffix in CHECKPOINTS else "safe YAML" if suffix in YAMLS else "plain array"
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise UserError(f"{source}: member {name!r} is not a {kind} ({reason}); refused") from None


def read_archive(path):
    """Checked members of a zip or tar file: {name: bytes} (links resolved to copies of their target)."""
    entries = []  # (name, kind, payload): kind "file" (bytes), "symlink" or "hardlink" (target name)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    if not info.is_dir():
                        link = stat.S_ISLNK(info.external_attr >> 16)
                        data = z.read(info)
                        entries.append((info.filename, "symlink" if link else "file", data.decode() if link else data))
        else:
            with tarfile.open(path) as t:
                for info in t.getmembers():
                    if info.isdir():
                        continue
                    if not (info.isfile() or info.issym() or info.islnk()):
                        raise UserError(f"{path}: member {info.name!r} is a device or fifo; refused")
                    kind = "symlink" if info.issym() else "hardlink" if info.islnk() else "file"
                    entries.append((info.name, kind, t.extractfile(info).read() if kind == "file" else info.linkname))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise UserError(f"{path}: not a readable zip or tar archive ({e})") from None
    for name, _, _ in entries:
        check_name(path, name)
    files = {name: data for name, kind, data in entries if kind == "file"}
    for name, kind, target in entries:
        if kind != "file":
            resolved = link_target(path, name, target, relative_to_member=kind == "symlink")
            if resolved not in files:
                raise UserError(f"{path}: member {name!r} links to {target}, not a file in the archive; refused")
            files[name] = files[resolved]
    for name, data in files.items():
        check_content(path, name, data)
    return files


def read_meta(source, data):
    meta = yaml.safe_load(data)
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), dict) for k in ("files", "yaml_files")):
        raise UserError(f"{source}: meta.yaml has no files/yaml_files mapping (not an ESPnet packed model)")
    return meta


def unpack(archive, outdir):
    """Safely unpack an ESPnet packed model into ``outdir``; returns ``{key: path}`` from ``meta.yaml``
    (e.g. ``train_config``, ``model_file``), the keyword arguments of the inference class."""
    files = read_archive(archive)
    metas = [name for name in files if posixpath.basename(name) == "meta.yaml"]
    if not metas:
        raise UserError(f"{archive}: no meta.yaml inside (not an ESPnet packed model)")
    meta = read_meta(archive, files[metas[0]])
    for name in [*meta["yaml_files"].values(), *meta["files"].values()]:
        if name not in files:
            raise UserError(f"{archive}: meta.yaml names {name!r}, which is not a file in the archive")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    yaml_names = set(meta["yaml_files"].values())
    for name, data in files.items():
        out = outdir / name
        out.parent.mkdir(parents=True, exist_ok=True)
        if name in yaml_names:
            config = yaml.safe_load(data)
            for other in files:
                config = find_path_and_change_it_recursive(config, other, str(outdir / other))
            data = yaml.safe_dump(config).encode()
        out.write_bytes(data)
    return {key: str(outdir / name) for key, name in {**meta["yaml_files"], **meta["files"]}.items()}


def open_folder(folder, workdir, root=None):
    """Use an unpacked model folder (``meta.yaml`` inside) in place: check the files it names, write its YAML
    files, with packed paths rewritten, into ``workdir``; returns ``{key: path}`` like ``unpack``.

    ``root``: links may point anywhere inside it (default ``folder``; a Hugging Face cache snapshot links into
    the repository's ``blobs/``)."""
    folder = Path(folder)
    root = Path(root or folder).resolve()
    if not (folder / "meta.yaml").is_file():
        raise UserError(f"{folder}: no meta.yaml (not an unpacked ESPnet model; give train_config and model_file)")

    def checked(name):
        check_name(folder, name)
        real = (folder / name).resolve()
        if not real.is_relative_to(root):
            raise UserError(f"{folder}: {name!r} is a link pointing outside {root}; refused")
        if not real.is_file():
            raise UserError(f"{folder}: {name!r} named in meta.yaml is missing")
        check_content(folder, name, real.read_bytes())
        return real

    def packed_names(value):  # strings in a config that name a checkable file in the folder
        if isinstance(value, dict):
            return [n for v in value.values() for n in packed_names(v)]
        if isinstance(value, (list, tuple)):
            return [n for v in value for n in packed_names(v)]
        packed = isinstance(value, str) and not os.path.isabs(value) and (folder / value).is_file()
        return [value] if packed and posixpath.splitext(value)[1].lower() in CHECKPOINTS | YAMLS | ARRAYS else []

    meta = read_meta(folder / "meta.yaml", checked("meta.yaml").read_bytes())
    retval = {key: str(checked(name)) for key, name in meta["files"].items()}
    for key, name in meta["yaml_files"].items():
        config = yaml.safe_load(checked(name).read_bytes())
        for other in packed_names(config):
            config = find_path_and_change_it_recursive(config, other, str(checked(other)))
        out = Path(workdir) / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(yaml.safe_dump(config), encoding="utf-8")
        retval[key] = str(out)
    return retval


@contextlib.contextmanager
def unpacked(source, root=None):
    """``{key: path}`` of a packed zip/tar or an unpacked folder, valid inside the ``with`` block (a temporary
    folder holds what is unpacked or rewritten)."""
    with tempfile.TemporaryDirectory(prefix="softvc-model-") as tmp:
        yield open_folder(source, tmp, root) if Path(source).is_dir() else unpack(source, tmp)


def is_packed(path):
    """True for a zip or tar with a ``meta.yaml`` (a torch checkpoint is a zip too, without one)."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return any(posixpath.basename(name) == "meta.yaml" for name in z.namelist())
    return path.is_file() and tarfile.is_tarfile(path)


def model_zoo_cache(tag, cachedir=None):
    """(snapshot folder, repository folder) of ``tag`` ("org/name[@revision]") in espnet_model_zoo's local
    Hugging Face cache; never downloads. The cache is espnet_model_zoo's: its package folder if writable, else
    ``~/.cache/espnet_model_zoo`` (also where we look when the package is not installed)."""
    note = ""
    if cachedir is None:
        cachedir = Path.home() / ".cache" / "espnet_model_zoo"
        try:
            import espnet_model_zoo

            package = Path(espnet_model_zoo.__file__).parent
            cachedir = package if os.access(package, os.W_OK) else cachedir
        except ImportError:
            note = " (espnet_model_zoo is not installed: its default cache)"
    name, _, revision = tag.partition("@")
    repo = Path(cachedir) / f"models--{name.replace('/', '--')}"
    ref = repo / "refs" / (revision or "main")  # a branch or tag names a commit; a commit names itself
    commit = ref.read_text().strip() if ref.is_file() else revision
    snapshots = [repo / "snapshots" / commit] if commit else list((repo / "snapshots").glob("*"))
    if len(snapshots) != 1 or not (snapshots[0] / "meta.yaml").is_file():
        raise UserError(
            f"{tag}: not a file or folder, and not in the espnet_model_zoo cache {cachedir}{note}; nothing is "
            "downloaded here: fetch it with espnet_model_zoo_download, or give the packed zip"
        )
    return snapshots[0], repo
