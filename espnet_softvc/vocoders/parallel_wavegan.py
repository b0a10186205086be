"""ParallelWaveGAN-format vocoders (``checkpoint-XXXsteps.pkl`` + ``config.yml`` [+ ``stats.npy``] beside it).

ESPnet loads these through the ``parallel_wavegan`` package, whose sdist does not install on Python 3.11
(its setup.py imports pip) and whose ``load_model`` unpickles without ``weights_only``. ESPnet ships the same
generator classes (``espnet2.gan_tts``), so we build those from the config and load the weights tensor-only.
The vocoder must be trained on Soft-VC mels: 128 bins, 16 kHz, hop 160 (checked against ``config.yml``).
"""

import importlib
import math
from pathlib import Path

import numpy as np
import torch
import yaml

from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.shapes import HOP, N_MELS, SAMPLE_RATE
from espnet_softvc.utils.torch_files import torch_load

GENERATORS = {
    "HiFiGANGenerator": "espnet2.gan_tts.hifigan",
    "ParallelWaveGANGenerator": "espnet2.gan_tts.parallel_wavegan",
    "MelGANGenerator": "espnet2.gan_tts.melgan",
    "StyleMelGANGenerator": "espnet2.gan_tts.style_melgan",
}


def read_config(path):
    try:
        config = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: vocoder config not found (a ParallelWaveGAN .pkl needs config.yml beside)") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not a safe YAML config ({str(e).splitlines()[0]})") from None
    if not isinstance(config, dict) or "generator_params" not in config:
        raise UserError(f"{path}: not a ParallelWaveGAN config (no generator_params)")
    want = {"sampling_rate": SAMPLE_RATE, "hop_size": HOP, "num_mels": N_MELS}
    for key, value in want.items():
        if config.get(key, value) != value:
            raise UserError(f"{path}: vocoder has {key}={config[key]}, Soft-VC mels need {value}")
    return config


class ParallelWaveGANVocoder:
    """(T, 128) natural-log mel -> (S,) 16 kHz wav through an ESPnet generator, PWG feature conventions."""

    sample_rate = SAMPLE_RATE

    def __init__(self, generator, log_base, mean=None, scale=None):
        self.generator, self.log_base, self.mean, self.scale = generator, log_base, mean, scale

    @torch.no_grad()
    def __call__(self, logmel):
        c = torch.as_tensor(logmel).float()
        if self.log_base is not None:  # PWG dumps log10 mels by default
            c = c / math.log(self.log_base)
        if self.mean is not None:
            c = (c - self.mean) / self.scale
        return self.generator.inference(c.to(next(self.generator.parameters()).device)).view(-1).cpu()


def load_parallel_wavegan(path, config_file=None, device="cpu"):
    path = Path(path)
    config_file = config_file or path.parent / "config.yml"
    config = read_config(config_file)
    name = config.get("generator_type", "ParallelWaveGANGenerator")
    params = dict(config["generator_params"])
    if name not in GENERATORS:
        raise UserError(f"{config_file}: generator_type {name} is not supported ({', '.join(GENERATORS)})")
    if params.get("out_channels", 1) != 1:
        raise UserError(f"{config_file}: multi-band generators (out_channels > 1) are not supported")
    try:
        generator = getattr(importlib.import_module(GENERATORS[name]), name)(**params)
    except TypeError as e:
        raise UserError(f"{config_file}: generator_params do not fit ESPnet's {name} ({e})") from None
    obj = torch_load(path)
    try:
        generator.load_state_dict(obj["model"]["generator"], strict=True)
    except (KeyError, TypeError, RuntimeError) as e:
        reason = str(e).splitlines()[0] if isinstance(e, RuntimeError) else "no model.generator weights"
        raise UserError(f"{path}: not a ParallelWaveGAN checkpoint for {config_file} ({reason})") from None
    generator.remove_weight_norm()
    mean = scale = None
    if (path.parent / "stats.h5").exists() and not (path.parent / "stats.npy").exists():
        raise UserError(f"{path.parent / 'stats.h5'}: HDF5 stats are not read; save them as stats.npy")
    if (path.parent / "stats.npy").exists():
        mean, scale = torch.from_numpy(np.load(path.parent / "stats.npy", allow_pickle=False)).float()
    return ParallelWaveGANVocoder(generator.eval().to(device), config.get("log_base", 10.0), mean, scale)
