"""Content encoders -> speech units at 50 Hz: HuBERT-Soft/-Discrete (original checkpoints on torchaudio),
offline MFCC k-means and a small soft encoder trained here, and Kaldi/ESPnet unit dumps."""

from espnet_softvc.units.extractor import UnitExtractor

__all__ = ["UnitExtractor"]
