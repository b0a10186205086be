"""Soft-VC acoustic model family: units (50 Hz) -> 128-bin log-mel (100 Hz); the model is ``softvc.model``."""
