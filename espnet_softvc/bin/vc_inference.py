"""Voice conversion shaped like ESPnet's ``Text2Speech``: any speaker's speech in, the target voice out.

The original Soft-VC demo (bshall/soft-vc), with files users already have or ones trained here::

    wav (any rate, channels) -> resample to 16 kHz -> content encoder -> units (N = floor(S / 320))
        -> acoustic model -> log-mel (2N, 128) [-> denoising postnet] -> vocoder -> 16 kHz wav of 320 N samples

    >>> from espnet_softvc.bin.vc_inference import Speech2Speech
    >>> s2s = Speech2Speech(model_file="hubert-soft-0321fd7e.pt", content_encoder="hubert-soft-35d9f29f.pt",
    ...                     vocoder_file="hifigan-hubert-soft-65f03469.pt")
    >>> s2s = Speech2Speech.from_pretrained("softvc_soft.zip", content_encoder="exp/units/soft_encoder.pt")
    >>> out = s2s(wav, fs)  # (S,) or (C, S) -> {"units": (N, 256) / (N,), "feat_gen": (2N, 128), "wav": (320 N,)}

With the three original checkpoints the output is the demo's ``hifigan(acoustic.generate(hubert.units(wav)))``.
The CLI over a directory of wavs is ``softvc-convert`` (``espnet_softvc.bin.convert``).

Streaming (``Speech2Speech.stream`` / ``streamer`` / ``convert_chunked``, ``softvc-convert --chunk_ms``): 16 kHz
chunks in, converted samples out as soon as they are final (``VCStream``). Each stage waits for the look-ahead it
needs; the algorithmic latency is the chunk plus their sum (``stream_latency_ms``: 250 ms for 20 ms chunks):

- content encoder, in windows of units [done - context, end) of the samples received: MFCC k-means units are
  exact with 4 frames of look-ahead and 5 of context (MFCC window, deltas, delta-deltas); the transformers
  (HuBERT, our soft encoder) are non-causal, approximated with ``STREAM_CONTEXT`` units of left context and
  ``STREAM_LOOKAHEAD`` of look-ahead (+ 40 samples: a frame's window reaches 2.5 ms into the next);
- acoustic model: ``softvc.stream`` (decoder state carried exactly; encoder 100 ms look-ahead, cumulative
  instance statistics);
- vocoder (HiFi-GAN, Griffin-Lim, ParallelWaveGAN): windows of ``VOCODER_CONTEXT`` frames before the new frames
  and ``VOCODER_LOOKAHEAD`` after them, each window's first ``VOCODER_FADE`` frames cross-faded linearly with the
  previous window's look-ahead output for them.

A chunk holding the whole utterance (the last one is pushed with ``final=True``) is ``convert_16k`` (~1e-6).
"""

import functools
import math

import numpy as np
import torch
import torchaudio

from espnet_softvc.bin.softvc_inference import Unit2Speech
from espnet_softvc.postnet import external
from espnet_softvc.postnet.fusion import FrontEndFusion, fused_mel
from espnet_softvc.softvc import stream
from espnet_softvc.softvc.original_format import original_state_dict
from espnet_softvc.tasks.load import is_espnet_state_dict, load_postnet, pretrained
from espnet_softvc.units.extractor import UnitExtractor
from espnet_softvc.units.hubert import PAD, LogMelFrontEnd, is_content_encoder
from espnet_softvc.units.kmeans import is_kmeans
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.shapes import HOP, N_MELS, SAMPLE_RATE, UNIT_HOP
from espnet_softvc.utils.torch_files import torch_load
from espnet_softvc.vocoders.hifigan import SoftVCHiFiGAN, generator_state_dict

MIN_UNITS = 2  # the acoustic model's first InstanceNorm needs 2 frames: 40 ms of audio
SOURCE_DENOISERS = (*external.METHODS, "fusion")  # Speech2Speech's denoise
VOCODE_CHUNK, VOCODE_OVERLAP = 1000, 50  # mel frames vocoded at once (10 s), frames shared by neighbouring pieces
STREAM_CONTEXT, STREAM_LOOKAHEAD = 50, 4  # units of left context / look-ahead of a streamed transformer encoder
MFCC_CONTEXT, MFCC_LOOKAHEAD = 5, 4  # units that make streamed MFCC (+ deltas, delta-deltas) k-means units exact
VOCODER_CONTEXT, VOCODER_LOOKAHEAD, VOCODER_FADE = 16, 4, 2  # mel frames around a streamed vocoder window
MIN_CHUNK_MS = UNIT_HOP * 1000 // SAMPLE_RATE  # one unit


ROLES = {"content_encoder": "a content encoder", "acoustic_model": "an acoustic model", "vocoder": "a vocoder"}


def what_is(path):
    """(role, words) of what a checkpoint file holds, e.g. ("vocoder", "a HiFi-GAN vocoder"), or None: for error
    messages that say where a file given in the wrong place belongs. Roles are the keys of ``ROLES``."""
    try:
        obj = torch_load(path)
    except UserError:
        return None
    if is_kmeans(obj):
        return "content_encoder", "a k-means file (a content encoder, or its k-means)"
    if is_content_encoder(obj):
        return "content_encoder", "a content encoder (HuBERT or softvc-train-units)"
    if generator_state_dict(obj) is not None:
        return "vocoder", "a HiFi-GAN vocoder"
    if is_espnet_state_dict(obj):
        return "acoustic_model", "an ESPnet model file"
    try:
        if "decoder.proj.weight" in original_state_dict(obj, path):
            return "acoustic_model", "a Soft-VC acoustic model"
    except UserError:
        pass
    return None


def _explained(error, path, role):
    """``error``, or one saying what ``path`` really is when it belongs to another role than ``role``."""
    found = what_is(path)
    if found is None or found[0] == role:
        return error
    return UserError(f"{path}: this is {found[1]}, not {ROLES[role]}")


def fit_length(wav, length):
    """(S,) -> (length,): cut, or pad with zeros (Griffin-Lim gives 160 (T - 1) samples for T frames)."""
    if wav.numel() >= length:
        return wav[:length]
    return torch.nn.functional.pad(wav, (0, length - wav.numel()))


def vocode(vocoder, mel, chunk=VOCODE_CHUNK, overlap=VOCODE_OVERLAP):
    """(T, 128) log-mel -> (160 T,) wav in bounded memory. Soft-VC HiFi-GAN chunks exactly by itself; other
    vocoders (Griffin-Lim, ParallelWaveGAN files) get ceil(T / ``chunk``) equal pieces, each with ``overlap``
    frames more on either side, neighbours cross-faded linearly over the ``2 overlap`` frames they share (a
    piece is at least ``chunk / 2 >= 2 overlap`` frames). Up to ``chunk + overlap`` frames: one call, unchanged."""
    frames = mel.size(0)
    if isinstance(vocoder, SoftVCHiFiGAN) or frames <= chunk + overlap:
        return fit_length(vocoder(mel).float().cpu(), HOP * frames)
    pieces = -(-frames // chunk)
    bounds = [round(i * frames / pieces) for i in range(pieces + 1)]
    fade = torch.linspace(0, 1, 2 * overlap * HOP + 2)[1:-1]  # fade + fade.flip(0) == 1
    wav = torch.zeros(HOP * frames)
    for i in range(pieces):
        low, high = max(0, bounds[i] - overlap), min(frames, bounds[i + 1] + overlap)
        piece = fit_length(vocoder(mel[low:high]).float().cpu(), HOP * (high - low))
        if i > 0:
            piece[: fade.numel()] *= fade
        if i < pieces - 1:
            piece[-fade.numel() :] *= fade.flip(0)
        wav[HOP * low : HOP * high] += piece
    return wav


def check_chunk_ms(chunk_ms):
    """``chunk_ms`` as samples at 16 kHz, or a one-line ``UserError`` (below one 20 ms unit, not finite)."""
    number = isinstance(chunk_ms, (int, float))
    if not (number and math.isfinite(chunk_ms) and chunk_ms >= MIN_CHUNK_MS):
        shown = f"{chunk_ms:g}" if number else repr(chunk_ms)
        raise UserError(
            f"--chunk_ms {shown}: give a chunk of at least {MIN_CHUNK_MS} ms (one unit), or none for offline"
        )
    return round(chunk_ms * SAMPLE_RATE / 1000)


def stream_latency_ms(chunk_ms, lookahead=STREAM_LOOKAHEAD, vocoder_lookahead=VOCODER_LOOKAHEAD):
    """Algorithmic latency of ``VCStream``: the longest wait of an input sample for its converted sample when
    chunks of ``chunk_ms`` arrive whole (compute time not counted). A sample of mel frame f is out once frames up
    to f + ``vocoder_lookahead`` are, i.e. (acoustic encoder: 2 u - 9 frames for u units) once u units are, which
    needs 320 u + 320 ``lookahead`` + 40 samples (content encoder)."""
    chunk = check_chunk_ms(chunk_ms)
    t = np.arange(2 * math.lcm(chunk, UNIT_HOP))  # two periods of the pattern
    units = (t // HOP + vocoder_lookahead + 10 + 1) // 2  # ceil((f + lookahead + 10) / 2)
    needed = UNIT_HOP * units + UNIT_HOP * lookahead + PAD
    return float(((-(-needed // chunk) * chunk - t).max()) * 1000 / SAMPLE_RATE)


class VCStream:
    """One utterance converted as it arrives (``Speech2Speech.streamer``; stages in the module docstring).

    ``push(wav, final=False)``: the next 16 kHz mono samples (s,) -> {"units": (n, 256) / (n,), "feat_gen":
    (t, 128), "wav": (s',)}, what became final; ``final=True`` on the last push (samples or none) flushes the rest.
    The pushes' outputs joined have ``convert_16k``'s shapes: N = floor(S / 320) units, 2N frames, 320 N samples.
    ``context`` / ``lookahead``: units of a transformer content encoder's windows (MFCC units: exact, fixed);
    ``prior``: statistics the acoustic encoder's norms start from (``Speech2Speech.stream_prior``; default none:
    the utterance's own, from a cold start)."""

    def __init__(self, s2s, name="speech", context=STREAM_CONTEXT, lookahead=STREAM_LOOKAHEAD, prior=None):
        u2s = s2s.unit2speech
        if u2s.postnet is not None or u2s.tts.postnet is not None:
            raise UserError(f"{name}: streaming runs without a denoising postnet (it needs the whole utterance)")
        if s2s.denoise is not None:
            raise UserError(f"{name}: streaming runs without a source denoiser (it denoises whole utterances)")
        if s2s.encoder.features == "mfcc":
            context, lookahead = MFCC_CONTEXT, MFCC_LOOKAHEAD
        self.s2s, self.name, self.context, self.lookahead = s2s, name, context, lookahead
        self.acoustic = stream.AcousticStream(u2s.tts.model, u2s.precision, prior=prior, sids=s2s.sid)
        self.wav, self.wav_start, self.units_done = torch.zeros(0), 0, 0  # samples from wav_start; units out
        self.mel, self.mel_start, self.vocoded, self.tail = torch.zeros(0, N_MELS), 0, 0, None

    def latency_ms(self, chunk_ms):
        return stream_latency_ms(chunk_ms, self.lookahead)

    @torch.no_grad()
    def push(self, wav, final=False):
        wav = torch.as_tensor(wav, dtype=torch.float32).cpu().reshape(-1)
        if not torch.isfinite(wav).all():
            raise UserError(f"{self.name}: audio contains NaN or Inf samples")
        self.wav = torch.cat((self.wav, wav))
        received = self.wav_start + self.wav.numel()
        if final and received < MIN_UNITS * UNIT_HOP:
            raise UserError(
                f"{self.name}: audio too short ({received} samples at 16 kHz; Soft-VC needs {MIN_UNITS * UNIT_HOP}, "
                f"{MIN_UNITS} units of 20 ms)"
            )
        end = received // UNIT_HOP if final else max(0, received - UNIT_HOP * self.lookahead - PAD) // UNIT_HOP
        units = self._units(end)
        u2s = self.s2s.unit2speech
        batch = units.to(u2s.device, u2s.dtype if units.is_floating_point() else None)[None]
        mel = self.acoustic.push(batch, final)[0].float().cpu()
        return {"units": units, "feat_gen": mel, "wav": self._vocode(mel, final)}

    def _units(self, end):
        """Units [units_done, end) from a window of the samples from unit units_done - context on."""
        done, start = self.units_done, max(0, self.units_done - self.context)
        if end <= done:
            soft = self.s2s.kind == "soft"
            return torch.zeros((0, 256) if soft else (0,), dtype=torch.float32 if soft else torch.long)
        window = self.wav[UNIT_HOP * start - self.wav_start :]
        units = torch.from_numpy(self.s2s.encoder(window, self.name))[done - start : end - start]
        keep = UNIT_HOP * max(0, end - self.context)
        self.wav, self.wav_start, self.units_done = self.wav[keep - self.wav_start :], keep, end
        return units

    def _vocode(self, mel, final):
        """Samples of the frames [vocoded, end): a window from VOCODER_CONTEXT frames before them to the last frame
        received, its first VOCODER_FADE frames cross-faded with the previous window's."""
        self.mel = torch.cat((self.mel, mel))
        frames = self.mel_start + self.mel.size(0)
        end = frames if final else frames - VOCODER_LOOKAHEAD
        if end <= self.vocoded:
            return torch.zeros(0)
        start = max(0, self.vocoded - VOCODER_CONTEXT)
        y = fit_length(
            self.s2s.unit2speech.vocoder(self.mel[start - self.mel_start :]).float().cpu(), HOP * (frames - start)
        )
        a, b = HOP * (self.vocoded - start), HOP * (end - start)
        wav = y[a:b].clone()
        if self.tail is not None:
            n = min(self.tail.numel(), wav.numel())
            fade = torch.linspace(0, 1, n + 2)[1:-1]
            wav[:n] = self.tail[:n] * (1 - fade) + wav[:n] * fade
        self.tail = y[b : b + HOP * VOCODER_FADE]
        keep = max(0, end - VOCODER_CONTEXT)
        self.mel, self.mel_start, self.vocoded = self.mel[keep - self.mel_start :], keep, end
        return wav


class Speech2Speech:
    """Speech to speech in the target voice with a content encoder, a Soft-VC acoustic model and a vocoder.

    Args:
        train_config: ``config.yaml`` of an ESPnet model file (default: beside it); None for an original checkpoint.
        model_file: the acoustic model: ESPnet model file or original Soft-VC checkpoint (packed models:
            ``from_pretrained``).
        content_encoder: HuBERT-Soft (soft units), HuBERT-Discrete (with ``kmeans``), or softvc-train-units'
            ``soft_encoder.pt`` (soft) / ``kmeans.pt`` (discrete, alone). Its units must be the acoustic model's kind.
        kmeans: bshall/hubert's ``kmeans100-50f36a95.pt`` for HuBERT-Discrete.
        vocoder_file: original HiFi-GAN (or ParallelWaveGAN .pkl); None: Griffin-Lim.
        postnet_config, postnet_file: a standalone denoising postnet applied to ``feat_gen`` (``Unit2Speech``).
        device: torch device; dtype: "float32" (exact), "bfloat16" or "float16" for the acoustic model.
        sid: the target speaker of a multi-speaker acoustic model (ESPnet's ``sids``; None: speaker 0).
        denoise: a waveform denoiser run on the source before the content encoder, one of ``external.METHODS``
            ("rnnoise", "deepfilternet3"; offline only), or "fusion": the fusion denoiser ``denoiser_file`` (recipe
            stage 7, + ``denoiser_config``), whose log-mel the offline content encoder reads in place of its own;
            None: the source as it is.
    """

    def __init__(
        self,
        train_config=None,
        model_file=None,
        content_encoder=None,
        kmeans=None,
        vocoder_file=None,
        postnet_config=None,
        postnet_file=None,
        device="cpu",
        dtype="float32",
        sid=None,
        denoise=None,
        denoiser_file=None,
        denoiser_config=None,
    ):
        if denoise is not None and denoise not in SOURCE_DENOISERS:
            raise UserError(f"unknown source denoiser {denoise!r} (choose {', '.join(SOURCE_DENOISERS)})")
        if content_encoder is None:
            raise UserError(
                "Speech2Speech needs a content_encoder (HuBERT-Soft / HuBERT-Discrete checkpoint, or a "
                "softvc-train-units file)"
            )
        if model_file is None:
            raise UserError("Speech2Speech needs a model_file (the acoustic model)")
        try:
            self.unit2speech = Unit2Speech(
                train_config, model_file, vocoder_file, device, dtype, postnet_config, postnet_file
            )
        except UserError as e:
            for path, role in ((model_file, "acoustic_model"), (vocoder_file, "vocoder")):
                if path is not None and str(e).startswith(f"{path}:"):
                    raise _explained(e, path, role) from None
            raise
        try:
            self.encoder = UnitExtractor.from_files(content_encoder, kmeans, device, self.unit2speech.kind)
        except UserError as e:
            raise _explained(e, content_encoder, "content_encoder") from None
        self.kind = self.unit2speech.kind
        if self.encoder.kind != self.kind:
            raise UserError(
                f"{model_file}: a {self.kind} acoustic model cannot take the {self.encoder.kind} units of "
                f"{content_encoder} (give a {self.kind} content encoder, or a {self.encoder.kind} acoustic model)"
            )
        try:
            self.unit2speech.tts.model.speaker(sid, 1)
        except UserError as e:
            raise UserError(f"{model_file}: {e}") from None
        self.device, self.sid, self.denoise = device, sid, denoise
        if denoise == "fusion":
            self._fusion_front_end(denoiser_file, denoiser_config, content_encoder)

    fs = SAMPLE_RATE  # of the output

    def _fusion_front_end(self, denoiser_file, denoiser_config, content_encoder):
        """The fusion denoiser's log-mel in place of the offline content encoder's own (``LogMelFrontEnd.mel``)."""
        if denoiser_file is None:
            raise UserError("--denoise fusion needs the fusion denoiser's model file (--denoiser; recipe stage 7)")
        fusion = load_postnet(denoiser_file, denoiser_config)
        if not isinstance(fusion, FrontEndFusion):
            raise UserError(f"{denoiser_file}: not a fusion denoiser (--tts denoiser with arch fusion)")
        front_end = getattr(getattr(self.encoder.encoder, "backbone", None), "feature_extractor", None)
        if not isinstance(front_end, LogMelFrontEnd):
            raise UserError(
                f"{content_encoder}: --denoise fusion feeds a log-mel to the offline content encoder (softvc-train-"
                "units, log-mel front end); for this encoder use --denoise rnnoise or deepfilternet3"
            )
        front_end.mel = functools.partial(fused_mel, fusion)

    @torch.no_grad()
    def __call__(self, wav, fs=SAMPLE_RATE, name="speech"):
        """Convert one utterance. wav: (S,) mono or (C, S) channels (averaged), float, at ``fs`` Hz.

        Returns {"units": (N, 256) float32 / (N,) int64, "feat_gen": (2N, 128) log-mel, "wav": (320 N,) at 16 kHz}
        (+ "feat_gen_before_postnet" with a postnet), N = floor(S_16k / 320). ``name`` starts error messages."""
        wav = torch.as_tensor(wav)
        if wav.dim() == 2:
            if wav.size(0) > wav.size(1):
                raise UserError(f"{name}: expected (S,) or channels first (C, S), got shape {tuple(wav.shape)}")
            wav = wav.mean(0)
        if wav.dim() != 1 or not wav.is_floating_point():
            raise UserError(f"{name}: expected a float waveform (S,) or (C, S), got {wav.dtype} {tuple(wav.shape)}")
        if wav.numel() == 0:
            raise UserError(f"{name}: empty audio (0 samples)")
        if not torch.isfinite(wav).all():
            raise UserError(f"{name}: audio contains NaN or Inf samples")
        if isinstance(fs, bool) or not isinstance(fs, (int, float, np.number)) or not fs > 0 or fs != int(fs):
            raise UserError(f"{name}: sample rate {fs!r}: give a positive whole number of Hz")
        fs = int(fs)
        wav = wav.float().cpu()
        if fs != SAMPLE_RATE:
            wav = torchaudio.functional.resample(wav, fs, SAMPLE_RATE)
        return self.convert_16k(wav, name)

    @torch.no_grad()
    def convert_16k(self, wav, name="speech"):
        """``__call__`` on a mono 16 kHz float32 waveform (S,), as ``espnet_softvc.utils.io.load_audio`` reads it."""
        if wav.numel() < MIN_UNITS * UNIT_HOP:
            raise UserError(
                f"{name}: audio too short ({wav.numel()} samples at 16 kHz; Soft-VC needs {MIN_UNITS * UNIT_HOP}, "
                f"{MIN_UNITS} units of 20 ms)"
            )
        if self.denoise in external.METHODS:  # (the fusion denoiser runs inside the encoder)
            wav = torch.from_numpy(external.denoise(wav.numpy(), SAMPLE_RATE, self.denoise))
        units = torch.from_numpy(self.encoder(wav, name))
        output = self.unit2speech(units, name, vocode=False, sids=self.sid)
        output["wav"] = vocode(self.unit2speech.vocoder, output["feat_gen"].float())
        return {"units": units, **output}

    @torch.no_grad()
    def stream_prior(self, wavs, seconds=stream.PRIOR_SECONDS, name="prior"):
        """The ``prior`` of ``VCStream`` from 16 kHz mono wavs (S_i,) of any voice (a few sentences): the acoustic
        encoder's instance statistics pooled over their units, weighted as ``seconds`` of the streamed audio. It
        starts every stream from typical statistics instead of none (``benchmarks/bench_stream.py``: a tenth of
        the cold start's deviation from offline output)."""
        model, u2s = self.unit2speech.tts.model, self.unit2speech
        units = [torch.from_numpy(self.encoder(torch.as_tensor(wav).float(), name)) for wav in wavs]
        units = [u.to(u2s.device, u2s.dtype if u.is_floating_point() else None) for u in units]
        return stream.prior_statistics(model.encoder, units, seconds)

    def streamer(self, name="speech", **options):
        """A ``VCStream`` for one utterance (``options``: its ``context``, ``lookahead``, ``prior``)."""
        return VCStream(self, name, **options)

    def stream(self, chunks, name="speech", **options):
        """Generator: 16 kHz mono chunks (s_i,) as they arrive (a microphone's) -> converted 16 kHz samples as
        they become final, one piece per chunk and a last one when ``chunks`` ends (``VCStream``)."""
        converter = VCStream(self, name, **options)
        for chunk in chunks:
            yield converter.push(chunk)["wav"]
        yield converter.push(torch.zeros(0), final=True)["wav"]

    def convert_chunked(self, wav, chunk_ms, name="speech", **options):
        """``convert_16k`` streamed: a mono 16 kHz wav (S,) pushed in pieces of ``chunk_ms`` (the last one final)
        -> {"units", "feat_gen", "wav"} joined, with the shapes of ``convert_16k``."""
        size = check_chunk_ms(chunk_ms)
        converter = VCStream(self, name, **options)
        pieces = [
            converter.push(wav[i : i + size], i + size >= wav.numel()) for i in range(0, max(1, wav.numel()), size)
        ]
        return {key: torch.cat([piece[key] for piece in pieces]) for key in ("units", "feat_gen", "wav")}

    @staticmethod
    def from_pretrained(model_tag=None, vocoder_tag=None, content_encoder=None, kmeans=None, cachedir=None, **kwargs):
        """Like ``Text2Speech.from_pretrained``. ``model_tag``: the acoustic model as a packed zip (``softvc-pack``),
        its unpacked folder, an espnet_model_zoo tag in the local cache (never downloaded; ``cachedir`` overrides
        the cache folder) or a model file. A package that holds ``content_encoder`` / ``kmeans`` files uses them
        unless given here. ``vocoder_tag``: a vocoder file. Other keyword arguments go to ``Speech2Speech``."""
        if vocoder_tag is not None:
            kwargs.update(vocoder_file=vocoder_tag)
        if model_tag is None:
            return Speech2Speech(content_encoder=content_encoder, kmeans=kmeans, **kwargs)
        with pretrained(model_tag, cachedir) as files:
            files = {**files, **kwargs}
            if content_encoder is not None:
                files.update(content_encoder=content_encoder, kmeans=kmeans)
            elif kmeans is not None:
                files.update(kmeans=kmeans)
            return Speech2Speech(**files)
