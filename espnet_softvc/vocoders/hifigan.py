"""The Soft-VC HiFi-GAN vocoders (bshall/hifigan) inside ESPnet's own ``HiFiGANGenerator``.

Checkpoints ``hifigan-hubert-soft-65f03469.pt`` / ``hifigan-hubert-discrete-bbad3043.pt`` are bare generator
state_dicts with a ``module.`` prefix and weight-normed convs (``weight_g``/``weight_v``); a bshall/hifigan
training checkpoint (``{"generator": {"model": ...}}``) works too. The original's transposed-conv padding
``(k - u) // 2`` equals ESPnet's ``u // 2 + u % 2`` (output_padding ``u % 2`` = 0) for (u, k) in
(10, 20), (4, 8), (2, 4), (2, 4), so only the parameter names differ.
"""

import re

import torch
from espnet2.gan_tts.hifigan import HiFiGANGenerator

from espnet_softvc.utils.shapes import HOP, N_MELS, SAMPLE_RATE
from espnet_softvc.utils.torch_files import load_strict, strip_prefix

CHUNK, CONTEXT = 1000, 50  # mel frames vocoded at once (10 s), frames of context either side of a chunk

# original name -> ESPnet name (the ESPnet layers sit behind a LeakyReLU in an nn.Sequential)
NAME_MAP = [
    (r"^conv_pre\.", "input_conv."),
    (r"^ups\.(\d+)\.", r"upsamples.\1.1."),
    (r"^resblocks\.(\d+)\.convs([12])\.(\d+)\.", r"blocks.\1.convs\2.\3.1."),
    (r"^conv_post\.", "output_conv.1."),
]


def soft_vc_hifigan():
    """ESPnet's generator in the Soft-VC shape (weight norm on, as the checkpoints were saved)."""
    return HiFiGANGenerator(
        in_channels=N_MELS,
        out_channels=1,
        channels=512,
        kernel_size=7,
        upsample_scales=[10, 4, 2, 2],
        upsample_kernel_sizes=[20, 8, 4, 4],
        resblock_kernel_sizes=[3, 7, 11],
        resblock_dilations=[[1, 3, 5]] * 3,
        use_additional_convs=True,
        bias=True,
        nonlinear_activation="LeakyReLU",
        nonlinear_activation_params={"negative_slope": 0.1},
        use_weight_norm=True,
    )


def to_espnet_names(state_dict):
    """Rename original bshall/hifigan generator parameters to ``HiFiGANGenerator`` ones."""
    renamed = {}
    for name, tensor in state_dict.items():
        for pattern, replacement in NAME_MAP:
            name = re.sub(pattern, replacement, name)
        renamed[name] = tensor
    return renamed


def generator_state_dict(obj):
    """The generator state_dict in a loaded bshall/hifigan file (bare or training checkpoint), else None."""
    if isinstance(obj, dict) and isinstance(obj.get("generator"), dict) and "model" in obj["generator"]:
        obj = obj["generator"]["model"]
    if isinstance(obj, dict) and any(str(k).split(".")[-2:] == ["conv_pre", "weight_v"] for k in obj):
        return obj
    return None


class SoftVCHiFiGAN:
    """(T, 128) natural-log mel -> (160 T,) 16 kHz wav: the original generator's forward, ``hifigan(mel)``."""

    sample_rate = SAMPLE_RATE

    def __init__(self, generator):
        self.generator = generator

    @torch.no_grad()
    def __call__(self, logmel, chunk=CHUNK, context=CONTEXT):
        """(T, 128) log-mel -> (160 T,) wav. Mels longer than ``chunk`` frames are vocoded ``chunk`` frames at a
        time, each with ``context`` frames either side (more than the receptive field: the one-pass result, bounded
        memory)."""
        mel = torch.as_tensor(logmel).float().to(next(self.generator.parameters()).device).T[None]  # (1, 128, T)
        frames, wavs = mel.size(-1), []
        for start in range(0, frames, chunk):
            low, high = max(0, start - context), min(frames, start + chunk + context)
            wav = self.generator(mel[..., low:high]).view(-1)
            wavs.append(wav[HOP * (start - low) : HOP * (min(start + chunk, frames) - low)].cpu())
        return torch.cat(wavs)


def load_hifigan(state_dict, path, device="cpu"):
    """ESPnet ``HiFiGANGenerator`` (weight norm removed, eval) from an original generator state_dict."""
    generator = soft_vc_hifigan()
    hint = f"; Soft-VC vocoders take {N_MELS} mels at 16 kHz"
    load_strict(
        generator, to_espnet_names(strip_prefix(state_dict)), path, "a Soft-VC HiFi-GAN generator checkpoint", hint
    )
    generator.remove_weight_norm()
    return SoftVCHiFiGAN(generator.eval().to(device))
