"""Original Soft-VC checkpoint files (bshall/acoustic-model): load strictly, detect the kind, export back.

Formats: v0.1 ``{"acoustic-model": state_dict with "module.", "optimizer", "step", "loss"}`` and the
older bare state_dict. A discrete model has ``encoder.embedding.weight``; a soft one has not.
"""

import torch

from espnet_softvc.softvc.model import AcousticModel
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import atomic_path
from espnet_softvc.utils.torch_files import is_state_dict, load_strict, strip_prefix, torch_load

PUBLISHED = {
    "soft": "hubert-soft-0321fd7e.pt",
    "discrete": "hubert-discrete-d49e1c77.pt",
}
RELEASE_URL = "https://github.com/bshall/acoustic-model/releases/tag/v0.1"


def original_state_dict(obj, path):
    """Return the acoustic-model state_dict (no ``module.``) from a loaded original checkpoint object."""
    if isinstance(obj, dict) and "acoustic-model" in obj:
        obj = obj["acoustic-model"]
    if not is_state_dict(obj):
        raise UserError(f"{path}: not a Soft-VC acoustic-model checkpoint (no state_dict of tensors)")
    return strip_prefix(obj)


def detect_kind(state_dict):
    return "discrete" if "encoder.embedding.weight" in state_dict else "soft"


SIZES = {  # AcousticModel argument: (parameter, dim) that tells it; the paper's published files give the defaults
    "encoder_prenet": ("encoder.prenet.net.0.weight", 0),
    "encoder_channels": ("encoder.convs.0.weight", 0),
    "decoder_prenet": ("decoder.prenet.net.0.weight", 0),
    "decoder_hidden": ("decoder.lstm2.weight_hh_l0", 1),
}


def build_from_state_dict(state_dict, path, kind=None):
    """A strict ``AcousticModel`` from a prefix-free state_dict, its sizes read from the weights (a file written by
    ``save_original`` from a smaller model loads too); ``kind`` (if given) must match."""
    found = detect_kind(state_dict)
    if kind is not None and kind != found:
        raise UserError(f"{path}: this is a {found} acoustic model, not {kind}")
    sizes = {arg: state_dict[key].shape[dim] for arg, (key, dim) in SIZES.items() if key in state_dict}
    model = AcousticModel(discrete=found == "discrete", **sizes)
    return load_strict(model, state_dict, path, "a Soft-VC acoustic-model checkpoint").eval()


def load_original(path, kind=None):
    """Load an original Soft-VC checkpoint (either format) as an ``AcousticModel`` in eval mode.

    kind: "soft", "discrete" or None (detect from the weights). A mismatch raises ``UserError``.
    """
    return build_from_state_dict(original_state_dict(torch_load(path), path), path, kind)


def save_original(model, path, step=0, loss=float("nan")):
    """Write ``model`` in the v0.1 format of bshall/acoustic-model (loadable by its hubconf and train.py)."""
    if model.spks:
        raise UserError(f"{path}: a multi-speaker model ({model.spks} speakers) has no original format (one voice)")
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, betas=(0.8, 0.99), eps=1e-8, weight_decay=1e-5)
    checkpoint = {
        "acoustic-model": {f"module.{k}": v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "step": int(step),
        "loss": float(loss),
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
