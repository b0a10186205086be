"""Streaming conversion (softvc/stream.py, Speech2Speech.stream, softvc-convert --chunk_ms): the carried decoder
state is exact, a chunk holding the whole utterance is offline conversion, the streamed encoder is within its
stated bound, the latency is as computed, and bad chunk sizes are one-line errors."""

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn as nn
import yaml
from conftest import assert_user_error, run_cli, run_main

CONVERT = "espnet_softvc.bin.convert"


@pytest.fixture(autouse=True)
def one_thread():
    """Streams run many tiny ops: one thread each (two on a busy machine wait for each other's time slices)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_model(discrete=False, seed=0, **sizes):
    from espnet_softvc.softvc.model import AcousticModel

    torch.manual_seed(seed)
    sizes = {"encoder_prenet": 32, "encoder_channels": 64, "decoder_prenet": 32, "decoder_hidden": 48, **sizes}
    return AcousticModel(discrete=discrete, **sizes).eval()


def random_units(model, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    if model.discrete:
        return torch.randint(0, 100, (1, n), generator=gen)
    return torch.randn(1, n, 256, generator=gen)


def pushed(push, units, chunk):
    """units (B, N, ...) pushed ``chunk`` at a time, the last push final -> outputs joined along time."""
    n = units.size(1)
    return torch.cat([push(units[:, i : i + chunk], i + chunk >= n) for i in range(0, n, chunk)], 1)


@pytest.mark.parametrize("backend", ["cpp", "torchscript"])
def test_carried_decoder_state_equals_offline_decoding(backend):
    """The decoder is causal: chunk by chunk with (h, c) of the 3 LSTMs and the last frame carried, it gives the
    offline loop's output (fp32, several chunk sizes, batch 1 and 2, an odd hidden size that the C++ kernels pad)."""
    from espnet_softvc.softvc import fast
    from espnet_softvc.softvc.stream import DecoderState, decode_chunk

    if backend == "cpp" and not fast.EXTENSION:
        pytest.skip("C++ extension not built")
    model = small_model(decoder_hidden=44)
    with torch.inference_mode():
        xs = model.encoder(torch.randn(2, 45, 256, generator=torch.Generator().manual_seed(1)))
        reference = model.decoder.generate(xs)
    for batch in (1, 2):
        offline = fast.decode(model.decoder, xs[:batch])
        for chunk in (1, 3, 16, 90):
            state, outs = None, []
            for i in range(0, 90, chunk):
                mel, state = decode_chunk(model.decoder, xs[:batch, i : i + chunk], state, backend=backend)
                outs.append(mel)
            mel = torch.cat(outs, 1)
            assert mel.shape == offline.shape == (batch, 90, 128)
            assert (mel - offline).abs().max() <= 1e-5, (batch, chunk)
            assert (mel - reference[:batch]).abs().max() <= 1e-5, (batch, chunk)
    assert isinstance(state, DecoderState) and state.h.shape == state.c.shape == (3, 2, 44)
    again, _ = decode_chunk(model.decoder, xs[:, :3], DecoderState.zeros(model.decoder, 2), backend=backend)
    first, _ = decode_chunk(model.decoder, xs[:, :3], None, backend=backend)
    assert torch.equal(again, first)  # the state given is not modified


def test_paper_size_decoder_carries_state_at_every_precision():
    """Paper sizes (hidden 768): chunked == offline in fp32; the reduced precisions stay at their offline error."""
    from espnet_softvc.softvc import fast
    from espnet_softvc.softvc.model import AcousticModel
    from espnet_softvc.softvc.stream import decode_chunk

    torch.manual_seed(0)
    model = AcousticModel().eval()
    with torch.inference_mode():
        xs = model.encoder(torch.randn(1, 12, 256))
    for precision, bound in (("fp32", 1e-5), ("bf16", 1e-5), ("int8", 1e-2)):
        offline = fast.decode(model.decoder, xs, precision)
        state, outs = None, []
        for i in range(0, 24, 5):
            mel, state = decode_chunk(model.decoder, xs[:, i : i + 5], state, precision)
            outs.append(mel)
        assert (torch.cat(outs, 1) - offline).abs().max() <= bound, precision


@pytest.mark.parametrize("discrete", [False, True])
def test_whole_utterance_in_one_push_is_offline_generation(discrete):
    from espnet_softvc.softvc.stream import AcousticStream

    model = small_model(discrete)
    units = random_units(model, 37)
    offline = model.generate(units)
    for backend in ("cpp", "torchscript"):
        mel = AcousticStream(model, backend=backend).push(units, final=True)
        assert mel.shape == offline.shape and (mel - offline).abs().max() <= 1e-5


def test_streamed_encoder_convolutions_are_exact_and_its_norms_within_bound():
    """Without its instance norms the streamed encoder is the offline one whatever the chunks (the convolutions'
    look-ahead is exact); a frame is out once its 5 units of look-ahead are in. With them (cumulative statistics),
    on stationary input, the stated bound: every streamed frame within sqrt(n - 1) of its statistics' mean
    (|y| <= sqrt(n), n >= 1 frames counted), and after the first second a mean deviation below 0.25 of the offline
    output.s std (a few chunk sizes; measured 0.11-0.13 on this random model)."""
    from espnet_softvc.softvc.stream import LOOKAHEAD, EncoderStream

    model = small_model(True, encoder_channels=96)
    units = random_units(model, 200, seed=3)
    with torch.inference_mode():
        offline = model.encoder(units)
    for chunk in (1, 2, 7, 25):
        stream, outs = EncoderStream(model.encoder), []
        for i in range(0, 200, chunk):
            outs.append(stream.push(units[:, i : i + chunk], i + chunk >= 200))
            if outs[-1].numel():  # n frames in the last norm's statistics: |y| <= sqrt(n - 1)
                counted = stream.stats[len(model.encoder.convs) - 1][0]
                assert outs[-1].abs().max() <= (counted - 1) ** 0.5 + 1e-4
        out = torch.cat(outs, 1)
        assert out.shape == offline.shape
        diff = (out - offline).abs()
        assert diff[:, 100:].mean() <= 0.25 * offline.std(), chunk
        assert diff.max() > 1e-3  # an approximation: not the offline output
    bare = model.encoder
    bare.convs = nn.Sequential(*(nn.Identity() if isinstance(m, nn.InstanceNorm1d) else m for m in bare.convs))
    with torch.inference_mode():
        offline = bare(units)
    for chunk in (1, 3, 200):
        stream = EncoderStream(bare)
        frames = [stream.push(units[:, i : i + chunk], i + chunk >= 200) for i in range(0, 200, chunk)]
        received = [min(200, i + chunk) for i in range(0, 200, chunk)]
        for got, total in zip(np.cumsum([f.size(1) for f in frames])[:-1], received):
            assert got == max(0, 2 * total - 2 * LOOKAHEAD + 1)  # all frames but those of the look-ahead
        assert (torch.cat(frames, 1) - offline).abs().max() <= 1e-5, chunk


def test_prior_statistics_start_the_norms():
    """A prior holding the utterance's own statistics, weighted far above its length, makes any stream the offline
    output: the norms are the only approximation. ``statistics(seconds)`` weights a stream's own statistics."""
    from espnet_softvc.softvc.stream import AcousticStream, EncoderStream, prior_statistics

    model = small_model()
    units = random_units(model, 60, seed=5)
    prior = prior_statistics(model.encoder, [units[0]], seconds=1e7)
    assert [v[0] for v in prior.values()] == [5e8, 1e9, 1e9]  # frames at 50, 100, 100 Hz
    offline = model.generate(units)
    for chunk in (1, 4):
        mel = pushed(AcousticStream(model, prior=prior).push, units, chunk)
        assert (mel - offline).abs().max() <= 1e-3, chunk
        cold = pushed(AcousticStream(model).push, units, chunk)
        assert (cold - offline).abs().mean() > 10 * (mel - offline).abs().mean()
    stream = EncoderStream(model.encoder)
    stream.push(units, final=True)
    assert [v[0] for v in stream.statistics().values()] == [60, 120, 120]
    assert [v[0] for v in stream.statistics(seconds=2).values()] == [100, 200, 200]


# ---- end to end: Speech2Speech.stream, softvc-convert --chunk_ms ----
@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Small acoustic models (original format), our small soft encoder, an MFCC k-means and a small HiFi-GAN in
    the ParallelWaveGAN format (config.yml beside it)."""
    from espnet2.gan_tts.hifigan import HiFiGANGenerator

    from espnet_softvc.softvc.original_format import save_original
    from espnet_softvc.units.hubert import ContentEncoder
    from espnet_softvc.units.soft_encoder import SMALL_BACKBONE

    out = tmp_path_factory.mktemp("stream_models")
    torch.manual_seed(0)
    torch.save(ContentEncoder(SMALL_BACKBONE).checkpoint(), out / "soft_encoder.pt")
    centers = torch.randn(100, 39) * 5
    torch.save({"n_features_in_": 39, "_n_threads": 1, "cluster_centers_": centers, "features": "mfcc"}, out / "km.pt")
    for discrete in (False, True):
        save_original(small_model(discrete), out / f"acoustic-{'discrete' if discrete else 'soft'}.pt")
    params = dict(in_channels=128, channels=16, upsample_scales=[10, 4, 2, 2], upsample_kernel_sizes=[20, 8, 4, 4])
    params.update(resblock_kernel_sizes=[3], resblock_dilations=[[1, 3]])
    config = {"sampling_rate": 16000, "hop_size": 160, "num_mels": 128, "generator_type": "HiFiGANGenerator"}
    (out / "config.yml").write_text(yaml.safe_dump({**config, "generator_params": params}))
    torch.save({"model": {"generator": HiFiGANGenerator(**params).state_dict()}}, out / "g.pkl")
    return out


def speech(seconds, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wav = 0.2 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0) + 0.02 * rng.standard_normal(t.size)
    return wav.astype(np.float32)


def s2s(models, kind="discrete", vocoder=True):
    from espnet_softvc.bin.vc_inference import Speech2Speech

    encoder = models / ("km.pt" if kind == "discrete" else "soft_encoder.pt")
    vocoder_file = str(models / "g.pkl") if vocoder else None
    return Speech2Speech(
        model_file=str(models / f"acoustic-{kind}.pt"), content_encoder=str(encoder), vocoder_file=vocoder_file
    )


@pytest.mark.parametrize("kind", ["discrete", "soft"])
def test_whole_utterance_chunk_is_offline_conversion(models, kind):
    converter = s2s(models, kind)
    wav = torch.from_numpy(speech(0.77))
    offline = converter.convert_16k(wav)
    streamed = converter.convert_chunked(wav, 1000)  # one chunk, pushed as the last
    assert torch.equal(streamed["units"], offline["units"])
    assert (streamed["feat_gen"] - offline["feat_gen"]).abs().max() <= 1e-5
    assert streamed["wav"].shape == offline["wav"].shape == (320 * (wav.numel() // 320),)
    assert (streamed["wav"] - offline["wav"]).abs().max() <= 1e-5 and offline["wav"].abs().max() > 1e-3


def test_chunked_conversion_lengths_units_and_latency(models):
    """MFCC k-means units stream exactly; every chunk size gives 320 N samples; the stream() generator is the same
    as pushing the chunks; each sample is out no later than ``latency_ms`` after it came in."""
    from espnet_softvc.bin.vc_inference import stream_latency_ms

    converter = s2s(models)
    wav = torch.from_numpy(speech(0.9, seed=1))[: 320 * 44 + 111]
    offline = converter.convert_16k(wav)
    assert stream_latency_ms(20) == 250 and stream_latency_ms(100) == 330
    for chunk_ms in (20, 30, 100):
        out = converter.convert_chunked(wav, chunk_ms)
        assert torch.equal(out["units"], offline["units"]), chunk_ms  # exact: 4 frames of look-ahead
        assert out["feat_gen"].shape == offline["feat_gen"].shape and out["wav"].shape == (320 * 44,)
        assert torch.isfinite(out["wav"]).all()
    size = 16 * 40
    chunks = [wav[i : i + size] for i in range(0, wav.numel(), size)]
    pieces = list(converter.stream(iter(chunks)))  # each chunk pushed as it comes, then the end: an empty final push
    stream = converter.streamer()
    expected = [stream.push(chunk)["wav"] for chunk in chunks] + [stream.push(torch.zeros(0), final=True)["wav"]]
    assert len(pieces) == len(chunks) + 1 and all(torch.equal(a, b) for a, b in zip(pieces, expected))
    assert torch.cat(pieces).shape == (320 * 44,)
    emitted = np.cumsum([p.numel() for p in pieces[:-1]])  # samples out after each chunk
    received = np.minimum(np.arange(1, len(emitted) + 1) * size, wav.numel())
    t = np.arange(emitted[-1])  # the samples out before the end of the input
    waited = received[np.searchsorted(emitted, t, side="right")] - t  # from the sample to the chunk that outputs it
    assert waited.max() == 16 * stream_latency_ms(40)


def test_cli_chunk_ms_lengths_and_bad_values(models, tmp_path):
    src = tmp_path / "in" / "x.wav"
    src.parent.mkdir()
    sf.write(src, speech(0.61, 22050), 22050, subtype="PCM_16")
    args = ["--content_encoder", models / "km.pt", "--acoustic_model", models / "acoustic-discrete.pt"]
    prior = ["--stream_prior", tmp_path / "in"]  # statistics of a few sentences (here: the input) start the stream
    proc = run_cli(CONVERT, tmp_path / "in", tmp_path / "out", *args, "--chunk_ms", 40, *prior, check=True)
    assert "wrote 1 converted wavs" in proc.stdout
    from espnet_softvc.utils.io import load_audio

    written, rate = sf.read(tmp_path / "out" / "x.wav")
    assert rate == 16000 and written.shape == (320 * (load_audio(src).numel() // 320),)
    assert_user_error(run_main(CONVERT, tmp_path / "in", tmp_path / "o", *args, "--chunk_ms", 0), "--chunk_ms 0:")


@pytest.mark.parametrize(
    "extra, needles",
    [
        (["--chunk_ms", "-20"], ["--chunk_ms -20:", "at least 20 ms"]),
        (["--chunk_ms", "10"], ["--chunk_ms 10:", "at least 20 ms"]),
        (["--chunk_ms", "19.5"], ["--chunk_ms 19.5:", "at least 20 ms"]),
        (["--chunk_ms", "nan"], ["--chunk_ms nan:", "at least 20 ms"]),
        (["--stream_prior", "x.wav"], ["--stream_prior: give --chunk_ms too"]),
        (["--chunk_ms", "40", "--stream_prior", "empty"], ["--stream_prior: ", "empty: no *.wav files"]),
    ],
)
def test_bad_streaming_options_are_one_line(models, tmp_path, capsys, extra, needles):
    from espnet_softvc.bin import convert

    sf.write(tmp_path / "x.wav", speech(0.3), 16000)
    (tmp_path / "empty").mkdir()
    argv = [tmp_path, tmp_path / "o", "--content_encoder", models / "km.pt"]
    argv += ["--acoustic_model", models / "acoustic-discrete.pt"]
    argv += [str(tmp_path / e) if e in ("x.wav", "empty") else e for e in extra]
    with pytest.raises(SystemExit) as exit_info:
        convert.main(list(map(str, argv)))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert exit_info.value.code == 1 and "Traceback" not in err and len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not (tmp_path / "o").exists()
