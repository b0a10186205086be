"""The torch device a user asks for (``--device``, ``device=``), checked before any model is loaded."""

import torch

from espnet_softvc.utils.errors import UserError


def check_device(device):
    """``device`` as a ``torch.device`` that exists here, else a one-line ``UserError`` (no CUDA traceback)."""
    try:
        found = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise UserError(f"--device {device}: not a torch device ({str(e).splitlines()[0]})") from None
    if found.type in ("cpu", "meta"):
        return found
    backend = getattr(torch, found.type, None)
    count = backend.device_count() if backend is not None and backend.is_available() else 0
    if count == 0:
        raise UserError(f"--device {device}: no {found.type} device here (torch {torch.__version__}); use --device cpu")
    if found.index is not None and found.index >= count:
        raise UserError(f"--device {device}: there are {count} {found.type} devices here (0..{count - 1})")
    return found
