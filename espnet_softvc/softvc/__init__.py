"""Soft-VC acoustic model family: units (50 Hz) -> 128-bin log-mel (100 Hz)."""

from espnet_softvc.softvc.model import AcousticModel

__all__ = ["AcousticModel"]
