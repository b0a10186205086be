"""Front-end fusion denoiser: the noisy Soft-VC log-mel and the log-mels of RNNoise's and DeepFilterNet3's outputs
(B, T, 3 x 128) -> one cleaner log-mel (B, T, 128), for recordings (it needs the waveform).

Per bin and frame it takes convex weights (softmax) over candidates in linear magnitude: the noisy mel, each front
end's mel and their minimum. A small 2-D conv net over (frames, bins), shared across bins, picks them from
speaker-independent views only: each front end's log-gain (its mel minus the noisy one), the noisy mel's level
above its own per-bin noise floor, and the bin's position. Trained on synthetic speech, it never sees a
spectrum it could learn the voice of; the mel networks that did (``model.DenoisingPostnet``) did not carry over to
real voices (README, issue 19). It starts as the plain mean of the candidates.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from espnet_softvc.feats.log_mel import logmel
from espnet_softvc.postnet import external
from espnet_softvc.postnet.baselines import noise_floor
from espnet_softvc.utils.shapes import N_MELS, SAMPLE_RATE

FRONT_ENDS = tuple(external.METHODS)  # ("rnnoise", "deepfilternet3")


def fusion_inputs(wav, name="audio", front_ends=FRONT_ENDS):
    """(S,) 16 kHz waveform -> (T, 128 x (1 + len(front_ends))) float32: [noisy | each front end's] log-mels."""
    wav = torch.as_tensor(wav, dtype=torch.float32)
    outs = [wav] + [torch.from_numpy(external.denoise(wav.numpy(), SAMPLE_RATE, m)) for m in front_ends]
    return torch.cat([torch.from_numpy(logmel(w, name)).T for w in outs], 1)


class FrontEndFusion(nn.Module):
    """(B, T, 128 x (1 + F)) [noisy | F front ends] log-mels, lengths (B,) or None -> fused log-mel (B, T, 128)."""

    def __init__(self, front_ends=FRONT_ENDS, channels=16, dilations=(1, 2, 4, 8), kernel_size=(5, 3)):
        super().__init__()
        self.front_ends = tuple(front_ends)
        if not self.front_ends or set(self.front_ends) - set(FRONT_ENDS):
            raise ValueError(f"front_ends must be some of {', '.join(FRONT_ENDS)}, got {list(front_ends)}")
        sizes = [len(self.front_ends) + 2] + [channels] * len(dilations)
        k_t, k_f = kernel_size
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, kernel_size, padding=(d * (k_t // 2), k_f // 2), dilation=(d, 1))
            for i, o, d in zip(sizes, sizes[1:], dilations)
        )
        self.out = nn.Conv2d(channels, len(self.front_ends) + 2, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def input_dim(self):
        return N_MELS * (1 + len(self.front_ends))

    def forward(self, mels, lengths=None):
        noisy, *fronts = mels.split(N_MELS, -1)  # (B, T, 128) each
        floor = noise_floor(noisy, lengths).log()[:, None]  # (B, 1, 128)
        position = torch.linspace(-1, 1, N_MELS, device=mels.device).expand_as(noisy)
        views = [f - noisy for f in fronts] + [(noisy - floor).clamp(-5, 10) / 4, position]
        x = torch.stack(views, 1)  # (B, F + 2, T, 128)
        for conv in self.convs:
            x = F.gelu(conv(x))
        candidates = torch.stack((noisy, *fronts, torch.stack(fronts).amin(0)), 1)  # (B, F + 2, T, 128)
        return torch.logsumexp(candidates + self.out(x).log_softmax(1), 1)


@torch.inference_mode()
def fused_mel(fusion, wavs):
    """(B, S) 16 kHz waveforms -> (B, 128, T) log-mels of ``fusion`` (a ``FrontEndFusion``; one waveform at a time):
    a source denoiser in the offline content encoder's place of its log-mel (``LogMelFrontEnd.mel``)."""
    mels = [fusion(fusion_inputs(wav, front_ends=fusion.front_ends)[None])[0] for wav in wavs.float().cpu()]
    return torch.stack(mels).transpose(1, 2).to(wavs.device)
