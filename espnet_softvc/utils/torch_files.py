"""Checkpoint files for everyone: tensor-only loading with one-line errors, and strict state-dict loading."""

import datetime
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from espnet_softvc.utils.errors import UserError


def torch_load(path):
    """``torch.load(weights_only=True)`` with user-facing errors for missing, truncated or unsafe files."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: checkpoint file not found") from None
    except pickle.UnpicklingError as e:
        reason = str(e).splitlines()[0] if str(e) else "unpickling failed"
        raise UserError(f"{path}: refused, not a tensor-only checkpoint ({reason})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: not a readable PyTorch checkpoint, truncated or corrupt ({reason})") from None


# ESPnet's trainer checkpoint.pth: its reporter stats hold numpy scalars and timedeltas. Allow exactly those.
TRAINER_GLOBALS = [
    np._core.multiarray.scalar,
    np.dtype,
    type(np.dtype("float64")),
    type(np.dtype("float32")),
    datetime.timedelta,
]


def load_trainer_checkpoint(output_dir):
    """ESPnet's ``output_dir/checkpoint.pth`` (model, reporter, optimizers, ...), still ``weights_only``."""
    path = Path(output_dir) / "checkpoint.pth"
    with torch.serialization.safe_globals(TRAINER_GLOBALS):
        checkpoint = torch_load(path)
    if not isinstance(checkpoint, dict) or "reporter" not in checkpoint:
        raise UserError(f"{path}: not an ESPnet trainer checkpoint (no reporter)")
    return checkpoint


def strip_prefix(state_dict, prefix="module."):
    """State dict without the ``module.`` prefix that DataParallel / DDP training leaves on every key."""
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def is_state_dict(obj):
    """A non-empty dict of tensors."""
    return isinstance(obj, dict) and bool(obj) and all(torch.is_tensor(v) for v in obj.values())


def load_strict(module, state_dict, path, what, hint=""):
    """``module.load_state_dict(state_dict, strict=True)``; missing / unexpected keys or a wrong shape raise one
    ``UserError`` naming ``path`` and saying it is not ``what`` (e.g. "a Soft-VC acoustic-model checkpoint"),
    ``hint`` appended to a wrong-shape message."""
    expected = module.state_dict()
    missing, unexpected = sorted(set(expected) - set(state_dict)), sorted(set(state_dict) - set(expected))
    if missing or unexpected:

        def some(keys):
            return f"{keys[:3]}{'...' if len(keys) > 3 else ''}"

        raise UserError(
            f"{path}: not {what} ({len(missing)} missing keys {some(missing)}, "
            f"{len(unexpected)} unexpected keys {some(unexpected)})"
        )
    bad = next((k for k, v in expected.items() if state_dict[k].shape != v.shape), None)
    if bad is not None:
        raise UserError(
            f"{path}: not {what} (wrong shape {tuple(state_dict[bad].shape)} for {bad}, "
            f"expected {tuple(expected[bad].shape)}{hint})"
        )
    module.load_state_dict(state_dict, strict=True)
    return module
