"""Original Soft-VC checkpoint files (bshall/acoustic-model): load strictly, detect the kind, export back.

Formats: v0.1 ``{"acoustic-model": state_dict with "module.", "optimizer", "step", "loss"}`` and the
older bare state_dict. A discrete model has ``encoder.embedding.weight``; a soft one has not.
"""
import pickle
import zipfile

import torch

from espnet_softvc.softvc.model import AcousticModel
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import atomic_path

PUBLISHED = {
    "soft": "hubert-soft-0321fd7e.pt",
    "discrete": "hubert-discrete-d49e1c77.pt",
}
RELEASE_URL = "https://github.com/bshall/acoustic-model/releases/tag/v0.1"


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


def strip_prefix(state_dict, prefix="module."):
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def original_state_dict(obj, path):
    """Return the acoustic-model state_dict (no ``module.``) from a loaded original checkpoint object."""
    if isinstance(obj, dict) and "acoustic-model" in obj:
        obj = obj["acoustic-model"]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise UserError(f"{path}: not a Soft-VC acoustic-model checkpoint (no state_dict of tensors)")
    return strip_prefix(obj)


def detect_kind(state_dict):
    return "discrete" if "encoder.embedding.weight" in state_dict else "soft"


def build_from_state_dict(state_dict, path, kind=None):
    """A strict ``AcousticModel`` from a prefix-free state_dict; ``kind`` (if given) must match the weights."""
    found = detect_kind(state_dict)
    if kind is not None and kind != found:
        raise UserError(f"{path}: this is a {found} acoustic model, not {kind}")
    model = AcousticModel(discrete=found == "discrete")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise UserError(
            f"{path}: not a Soft-VC acoustic-model checkpoint "
            f"(missing keys {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected keys {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})"
        )
    bad = [k for k, v in expected.items() if state_dict[k].shape != v.shape]
    if bad:
        raise UserError(f"{path}: wrong tensor shape for {bad[0]}: {tuple(state_dict[bad[0]].shape)}")
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def load_original(path, kind=None):
    """Load an original Soft-VC checkpoint (either format) as an ``AcousticModel`` in eval mode.

    kind: "soft", "discrete" or None (detect from the weights). A mismatch raises ``UserError``.
    """
    return build_from_state_dict(original_state_dict(torch_load(path), path), path, kind)


def save_original(model, path, step=0, loss=float("nan")):
    """Write ``model`` in the v0.1 format of bshall/acoustic-model (loadable by its hubconf and train.py)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, betas=(0.8, 0.99), eps=1e-8, weight_decay=1e-5)
    checkpoint = {
        "acoustic-model": {f"module.{k}": v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "step": int(step),
        "loss": float(loss),
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
