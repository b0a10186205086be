"""Denoising postnet family: model (``DenoisingPostnet``), training noise (``noise``), classical ``baselines``."""

from espnet_softvc.postnet.model import DenoisingPostnet, denoise_loss

__all__ = ["DenoisingPostnet", "denoise_loss"]
