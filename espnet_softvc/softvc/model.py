"""The Soft-VC acoustic model (van Niekerk et al., ICASSP 2022), parameter names as in bshall/acoustic-model.

B batch, N units (50 Hz), T = 2N mel frames (100 Hz), 128 mel bins, 256 soft-unit dims, 100 discrete ids.
Layer sizes are arguments whose defaults are the paper's (the published checkpoints load strictly with them).
"""

import torch
import torch.nn as nn

from espnet_softvc.softvc import fast
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.shapes import FRAMES_PER_UNIT, N_MELS, N_UNITS, UNIT_DIM


class PreNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, dropout=0.5):
        super().__init__()
        layers = [nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers, nn.Linear(hidden_size, output_size), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class Encoder(nn.Module):
    def __init__(self, discrete=False, prenet_dim=256, channels=512):
        super().__init__()
        self.embedding = nn.Embedding(N_UNITS + 1, UNIT_DIM) if discrete else None
        self.prenet = PreNet(UNIT_DIM, prenet_dim, prenet_dim)
        self.convs = nn.Sequential(
            nn.Conv1d(prenet_dim, channels, 5, 1, 2),
            nn.ReLU(),
            nn.InstanceNorm1d(channels),
            nn.ConvTranspose1d(channels, channels, 4, 2, 1),
            *(
                m
                for _ in range(2)
                for m in (nn.Conv1d(channels, channels, 5, 1, 2), nn.ReLU(), nn.InstanceNorm1d(channels))
            ),
        )

    def forward(self, units):
        """(B, N) long or (B, N, 256) float -> (B, 2N, channels)."""
        x = self.embedding(units) if self.embedding is not None else units
        x = self.prenet(x)
        return self.convs(x.transpose(1, 2)).transpose(1, 2)


class Decoder(nn.Module):
    def __init__(self, encoder_dim=512, prenet_dim=256, hidden=768):
        super().__init__()
        self.prenet = PreNet(N_MELS, prenet_dim, prenet_dim)
        self.lstm1 = nn.LSTM(encoder_dim + prenet_dim, hidden, batch_first=True)
        self.lstm2 = nn.LSTM(hidden, hidden, batch_first=True)
        self.lstm3 = nn.LSTM(hidden, hidden, batch_first=True)
        self.proj = nn.Linear(hidden, N_MELS, bias=False)

    def forward(self, x, mels):
        """Teacher forcing. x: (B, T, E) encoder output, mels: (B, T, 128) previous frames -> (B, T, 128)."""
        x1, _ = self.lstm1(torch.cat((x, self.prenet(mels)), dim=-1))
        x = x1 + self.lstm2(x1)[0]
        x = x + self.lstm3(x)[0]
        return self.proj(x)

    def generate(self, xs):
        """Autoregressive loop of the original, one nn.LSTM call per layer per frame. (B, T, E) -> (B, T, 128)."""
        m = xs.new_zeros(xs.size(0), N_MELS)
        state1 = state2 = state3 = None
        frames = []
        for x in torch.unbind(xs, dim=1):
            x = torch.cat((x, self.prenet(m)), dim=1).unsqueeze(1)
            x1, state1 = self.lstm1(x, state1)
            x2, state2 = self.lstm2(x1, state2)
            x = x1 + x2
            x3, state3 = self.lstm3(x, state3)
            m = self.proj(x + x3).squeeze(1)
            frames.append(m)
        return torch.stack(frames, dim=1)


class AcousticModel(nn.Module):
    """Soft-VC acoustic model: ``encoder`` (units -> 2x upsampled features) and AR ``decoder`` (-> log-mel).

    Sizes (the paper's by default): ``encoder_prenet`` / ``encoder_channels`` of the encoder, ``decoder_prenet``
    and ``decoder_hidden`` (the three LSTMs) of the decoder. ``spks``: number of target speakers (ESPnet's
    convention): a speaker-id embedding ``sid_emb`` added to every encoder frame; 0, 1 or None (the paper's): one voice.
    """

    def __init__(
        self, discrete=False, encoder_prenet=256, encoder_channels=512, decoder_prenet=256, decoder_hidden=768, spks=0
    ):
        super().__init__()
        self.discrete = discrete
        self.sizes = dict(
            encoder_prenet=encoder_prenet,
            encoder_channels=encoder_channels,
            decoder_prenet=decoder_prenet,
            decoder_hidden=decoder_hidden,
        )
        self.encoder = Encoder(discrete, encoder_prenet, encoder_channels)
        self.decoder = Decoder(encoder_channels, decoder_prenet, decoder_hidden)
        self.spks = spks if spks and spks > 1 else None
        self.sid_emb = nn.Embedding(self.spks, encoder_channels) if self.spks else None

    def speaker(self, sids, batch):
        """(B, 1, channels) speaker embeddings of sids ((B,), (B, 1) or an int; None: speaker 0), added to the
        encoder output; 0 for a one-voice model (which refuses sids other than None / 0)."""
        sids = torch.as_tensor(0 if sids is None else sids, dtype=torch.long).reshape(-1)
        if sids.numel() not in (1, batch):
            raise ValueError(f"{sids.numel()} speaker ids for a batch of {batch}")
        if self.sid_emb is None:
            if sids.any():
                raise UserError(f"speaker ids {sids.tolist()} given to a one-voice model (trained without spks)")
            return 0.0
        if sids.min() < 0 or sids.max() >= self.spks:
            raise UserError(f"speaker ids {sids.tolist()} out of range: this model has speakers 0..{self.spks - 1}")
        return self.sid_emb(sids.to(self.sid_emb.weight.device)).expand(batch, -1)[:, None]

    def encode(self, units, sids=None):
        """units (B, N[, 256]) -> (B, 2N, channels) decoder input, with the speakers' embeddings."""
        return self.encoder(units) + self.speaker(sids, units.size(0))

    def forward(self, units, mels, sids=None):
        """Teacher-forced: units (B, N[, 256]), mels (B, 2N, 128) inputs (target shifted right) -> (B, 2N, 128)."""
        return self.decoder(self.encode(units, sids), mels)

    @torch.inference_mode()
    def generate(self, units, precision="fp32", lengths=None, sids=None):
        """Free-running mel from units: (B, N) / (N,) long or (B, N, 256) / (N, 256) float -> (B, 2N, 128).

        Runs with dropout off (eval mode) whatever mode the model is in; unbatched input gets a batch of 1.
        The fused loop of ``fast.py`` (``Decoder.generate`` is the reference): precision "fp32" (exact, default),
        "bf16", "fp16" or "int8" (CPU). lengths (B,): valid units per row of a padded batch; row b has
        2 * lengths[b] valid frames, equal to its unbatched result, and zeros after them. sids: see ``speaker``.
        """
        if units.dim() == (1 if self.discrete else 2):
            units = units.unsqueeze(0)
        training = self.training
        self.eval()
        try:
            if lengths is None:
                return fast.decode(self.decoder, self.encode(units, sids), precision)
            lengths = torch.as_tensor(lengths, device=units.device)
            if lengths.shape != units.shape[:1] or lengths.min() < 1 or lengths.max() > units.size(1):
                raise ValueError(f"lengths {lengths.tolist()} do not fit units of shape {tuple(units.shape)}")
            frames = FRAMES_PER_UNIT * units.size(1)
            xs, speakers = None, self.speaker(sids, units.size(0))
            for b, n in enumerate(lengths.tolist()):  # InstanceNorm and convs see the whole row: encode unpadded
                x = self.encoder(units[b : b + 1, :n])[0]
                xs = x.new_zeros(units.size(0), frames, x.size(-1)) if xs is None else xs
                xs[b, : FRAMES_PER_UNIT * n] = x + (speakers[b] if torch.is_tensor(speakers) else 0.0)
            return fast.decode(self.decoder, xs, precision, FRAMES_PER_UNIT * lengths)
        finally:
            self.train(training)
