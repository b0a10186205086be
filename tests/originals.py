"""Independent restatements of the original Soft-VC code, with its parameter names, that the tests compare our
package against; nothing here imports ``espnet_softvc``.

- bshall/acoustic-model (DESIGN §3): ``RefAcousticModel``;
- bshall/hubert (DESIGN §4): ``RefHubert`` (HuBERT-base with the soft head; ``units`` as the demo calls it) and
  ``ref_kmeans`` (its kmeans100 loader);
- bshall/hifigan (DESIGN §5): ``OriginalGenerator``.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.cluster import KMeans
from torch.nn.utils import weight_norm


# ---- bshall/acoustic-model ----
class RefPreNet(nn.Module):
    def __init__(self, i, h, o, p=0.5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Dropout(p), nn.Linear(h, o), nn.ReLU(), nn.Dropout(p))

    def forward(self, x):
        return self.net(x)


class RefAcousticEncoder(nn.Module):
    def __init__(self, discrete):
        super().__init__()
        self.embedding = nn.Embedding(101, 256) if discrete else None
        self.prenet = RefPreNet(256, 256, 256)
        self.convs = nn.Sequential(
            nn.Conv1d(256, 512, 5, 1, 2),
            nn.ReLU(),
            nn.InstanceNorm1d(512),
            nn.ConvTranspose1d(512, 512, 4, 2, 1),
            nn.Conv1d(512, 512, 5, 1, 2),
            nn.ReLU(),
            nn.InstanceNorm1d(512),
            nn.Conv1d(512, 512, 5, 1, 2),
            nn.ReLU(),
            nn.InstanceNorm1d(512),
        )

    def forward(self, x):
        if self.embedding is not None:
            x = self.embedding(x)
        x = self.prenet(x)
        return self.convs(x.transpose(1, 2)).transpose(1, 2)


class RefDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.prenet = RefPreNet(128, 256, 256)
        self.lstm1 = nn.LSTM(768, 768, batch_first=True)
        self.lstm2 = nn.LSTM(768, 768, batch_first=True)
        self.lstm3 = nn.LSTM(768, 768, batch_first=True)
        self.proj = nn.Linear(768, 128, bias=False)

    def forward(self, x, mels):
        x, _ = self.lstm1(torch.cat((x, self.prenet(mels)), dim=-1))
        res = x
        x, _ = self.lstm2(x)
        x = res + x
        res = x
        x, _ = self.lstm3(x)
        return self.proj(res + x)

    def generate(self, xs):
        b = xs.size(0)
        m = torch.zeros(b, 128)
        h1, c1, h2, c2, h3, c3 = (torch.zeros(1, b, 768) for _ in range(6))
        out = []
        for x in torch.unbind(xs, dim=1):
            m = self.prenet(m)
            x = torch.cat((x, m), dim=1).unsqueeze(1)
            x1, (h1, c1) = self.lstm1(x, (h1, c1))
            x2, (h2, c2) = self.lstm2(x1, (h2, c2))
            x = x1 + x2
            x3, (h3, c3) = self.lstm3(x, (h3, c3))
            x = x + x3
            x = self.proj(x).squeeze(1)
            out.append(x)
            m = x
        return torch.stack(out, dim=1)


class RefAcousticModel(nn.Module):
    def __init__(self, discrete):
        super().__init__()
        self.encoder = RefAcousticEncoder(discrete)
        self.decoder = RefDecoder()

    def forward(self, x, mels):
        return self.decoder(self.encoder(x), mels)

    @torch.inference_mode()
    def generate(self, x):
        return self.decoder.generate(self.encoder(x))


# ---- bshall/hubert ----
class RefFeatureExtractor(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv1d(1, 512, 10, 5, bias=False)
        self.norm0 = nn.GroupNorm(512, 512)
        for i, (k, s) in enumerate([(3, 2)] * 4 + [(2, 2)] * 2, 1):
            setattr(self, f"conv{i}", nn.Conv1d(512, 512, k, s, bias=False))

    def forward(self, x):
        x = F.gelu(self.norm0(self.conv0(x)))
        for i in range(1, 7):
            x = F.gelu(getattr(self, f"conv{i}")(x))
        return x


class RefFeatureProjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(512)
        self.projection = nn.Linear(512, 768)

    def forward(self, x):
        return self.projection(self.norm(x))


class RefWeightNormConv(nn.Module):
    """Conv1d(768, 768, 128, padding=64, groups=16) with weight norm over dim 2: weight = g * v / ||v||."""

    def __init__(self):
        super().__init__()
        conv = nn.Conv1d(768, 768, 128, padding=64, groups=16)
        self.weight_v = nn.Parameter(conv.weight.detach().clone())
        self.weight_g = nn.Parameter(conv.weight.detach().norm(dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(conv.bias.detach().clone())

    def forward(self, x):
        weight = self.weight_g * self.weight_v / self.weight_v.norm(dim=(0, 1), keepdim=True)
        return F.conv1d(x, weight, self.bias, padding=64, groups=16)


class RefPositionalEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = RefWeightNormConv()

    def forward(self, x):
        x = self.conv(x.transpose(1, 2))
        return F.gelu(x[:, :, :-1]).transpose(1, 2)


class RefTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        layer = lambda: nn.TransformerEncoderLayer(768, 12, 3072, activation="gelu", batch_first=True)  # noqa: E731
        self.layers = nn.ModuleList([layer() for _ in range(12)])

    def forward(self, x, output_layer=None):
        for layer in self.layers[:output_layer]:
            x = layer(x)
        return x


class RefHubert(nn.Module):
    """bshall/hubert Hubert: units(wav (1, 1, S)) pads 40 + 40 samples; soft = proj(all 12 layers)."""

    def __init__(self, num_labels):
        super().__init__()
        self.feature_extractor = RefFeatureExtractor()
        self.feature_projection = RefFeatureProjection()
        self.positional_embedding = RefPositionalEmbedding()
        self.norm = nn.LayerNorm(768)
        self.encoder = RefTransformer()
        self.proj = nn.Linear(768, 256)
        self.masked_spec_embed = nn.Parameter(torch.rand(768))
        self.label_embedding = nn.Embedding(num_labels, 256)
        self.kmeans = None  # HubertDiscrete: a fitted KMeans (ref_kmeans)

    def encode(self, wav, layer=None):
        x = self.feature_extractor(F.pad(wav, (40, 40)))
        x = self.feature_projection(x.transpose(1, 2))
        x = self.norm(x + self.positional_embedding(x))
        return self.encoder(x, output_layer=layer)

    def soft_units(self, wav):
        return self.proj(self.encode(wav))

    def units(self, wav):
        """The demo's ``hubert.units``: soft (1, N, 256), or with ``kmeans`` the k-means ids of layer 7 (N,)."""
        if self.kmeans is None:
            return self.soft_units(wav)
        x = self.encode(wav, layer=7)
        return torch.tensor(self.kmeans.predict(x.squeeze().cpu().numpy()), dtype=torch.long)


def ref_kmeans(checkpoint):
    """bshall/hubert's kmeans100(): a sklearn KMeans whose fitted attributes come from the file."""
    kmeans = KMeans(100)
    kmeans.__dict__["n_features_in_"] = checkpoint["n_features_in_"]
    kmeans.__dict__["_n_threads"] = checkpoint["_n_threads"]
    kmeans.__dict__["cluster_centers_"] = checkpoint["cluster_centers_"].numpy()
    return kmeans


# ---- bshall/hifigan ----
class OriginalResBlock(nn.Module):
    def __init__(self, channels, kernel, dilations=(1, 3, 5)):
        super().__init__()

        def conv(d):
            return weight_norm(nn.Conv1d(channels, channels, kernel, dilation=d, padding=d * (kernel - 1) // 2))

        self.convs1 = nn.ModuleList(conv(d) for d in dilations)
        self.convs2 = nn.ModuleList(conv(1) for _ in dilations)

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, 0.1)), 0.1))
        return x


class OriginalGenerator(nn.Module):
    def __init__(self, n_mels=128, channels=512, factors=(10, 4, 2, 2), kernels=(20, 8, 4, 4)):
        super().__init__()
        self.conv_pre = weight_norm(nn.Conv1d(n_mels, channels, 7, padding=3))
        widths = [channels // 2**i for i in range(len(factors) + 1)]
        self.ups = nn.ModuleList(
            weight_norm(nn.ConvTranspose1d(widths[i], widths[i + 1], k, u, padding=(k - u) // 2))
            for i, (u, k) in enumerate(zip(factors, kernels))
        )
        self.resblocks = nn.ModuleList(OriginalResBlock(w, k) for w in widths[1:] for k in (3, 7, 11))
        self.conv_post = weight_norm(nn.Conv1d(widths[-1], 1, 7, padding=3))

    def forward(self, mel):
        """(B, 128, T) -> (B, 1, 160 T)."""
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, 0.1))
            x = sum(block(x) for block in self.resblocks[3 * i : 3 * i + 3]) / 3
        return torch.tanh(self.conv_post(F.leaky_relu(x, 0.01)))
