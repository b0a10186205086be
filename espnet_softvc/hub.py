"""torch.hub-style entry points of bshall/acoustic-model, offline: the checkpoint is a local file.

from espnet_softvc import hub
acoustic = hub.hubert_soft(checkpoint="hubert-soft-0321fd7e.pt")
mel = acoustic.generate(units)   # (N, 256) -> (1, 2N, 128)
"""

from espnet_softvc.softvc.original_format import PUBLISHED, RELEASE_URL
from espnet_softvc.tasks.load import load_acoustic
from espnet_softvc.utils.errors import UserError


def _acoustic(kind, checkpoint, map_location):
    if checkpoint is None:
        raise UserError(
            f"no checkpoint given for the {kind} acoustic model: nothing is downloaded; get "
            f"{PUBLISHED[kind]} from {RELEASE_URL} and pass checkpoint=PATH"
        )
    return load_acoustic(checkpoint, kind, map_location)


def hubert_soft(checkpoint=None, map_location="cpu"):
    """Soft-VC acoustic model for HuBERT-Soft units (N, 256), from an original checkpoint file."""
    return _acoustic("soft", checkpoint, map_location)


def hubert_discrete(checkpoint=None, map_location="cpu"):
    """Soft-VC acoustic model for HuBERT-Discrete units (N,) in 0..99, from an original checkpoint file."""
    return _acoustic("discrete", checkpoint, map_location)
