"""Scoring: distances between log-mels (``metrics``) and the denoising evaluation (``denoise_eval``)."""
