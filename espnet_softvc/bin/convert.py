"""softvc-convert: voice conversion of a directory of wavs into the target voice (``Speech2Speech``).

Walks ``in_dir`` for ``*.wav`` (any sample rate, any number of channels: averaged to mono, resampled to 16 kHz) and
writes 16 kHz 16-bit wavs of 320 * floor(S_16k / 320) samples under the same relative paths in ``out_dir``
(atomically: an interrupted run leaves no partial file). ``in_dir`` may also be a Kaldi ``wav.scp`` or a data dir
with one: then ``out_dir/<utt>.wav`` per utterance (the recipe's stage 11)::

    softvc-convert in/ out/ --content_encoder hubert-soft-35d9f29f.pt --acoustic_model hubert-soft-0321fd7e.pt \\
        --vocoder hifigan-hubert-soft-65f03469.pt
    softvc-convert in/ out/ --content_encoder hubert-discrete-96b248c5.pt --kmeans kmeans100-50f36a95.pt \\
        --acoustic_model hubert-discrete-d49e1c77.pt --vocoder hifigan-hubert-discrete-bbad3043.pt
    softvc-convert in/ out/ --content_encoder exp/units/soft_encoder.pt --acoustic_model exp/softvc_soft/model.zip

``--chunk_ms C`` converts each file as a stream of C ms chunks (``Speech2Speech.convert_chunked``: bounded
look-ahead, the decoder state carried across chunks; algorithmic latency ``stream_latency_ms``, e.g. 250 ms for
20 ms chunks), with the same output lengths; without it (the default) conversion is offline. ``--stream_prior``
starts each stream's instance statistics from those of a few given sentences instead of from nothing. ``--sid S``
picks the target voice of a multi-speaker acoustic model (recipe stage 12). ``--denoise rnnoise`` (or
``deepfilternet3``) cleans each noisy source before the content encoder (offline only; see the README's
"where denoising pays").
"""

import argparse
import functools
from pathlib import Path

import torch

from espnet_softvc.bin.vc_inference import Speech2Speech, check_chunk_ms
from espnet_softvc.postnet import external
from espnet_softvc.tasks.load import pretrained
from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import find_files, load_audio, save_wav
from espnet_softvc.utils.kaldi_data import load_wav_entry, read_scp
from espnet_softvc.utils.parallel import run_jobs

_converter = None  # the process's Speech2Speech: workers forked by run_jobs inherit the parent's


def _convert(item, chunk_ms=None, prior=None):
    """item: (name, wav.scp value or None for a file, output path); ``chunk_ms``: streamed in such chunks."""
    name, value, out_path = item
    wav = load_audio(name) if value is None else load_wav_entry(name, value)
    if chunk_ms is None:
        output = _converter.convert_16k(wav, name=name)
    else:
        output = _converter.convert_chunked(wav, chunk_ms, name=name, prior=prior)
    save_wav(out_path, output["wav"].numpy(), _converter.fs)


def inputs(in_dir, out_dir):
    """[(name, wav.scp value or None, output path)] of a wav directory, a wav.scp or a data dir."""
    scp = in_dir / "wav.scp" if (in_dir / "wav.scp").is_file() else in_dir if in_dir.is_file() else None
    if scp is not None:
        return [(utt, value, out_dir / f"{utt}.wav") for utt, value in read_scp(scp).items()]
    paths = find_files(in_dir, ".wav")
    if out_dir.resolve().is_relative_to(in_dir.resolve()):
        paths = [p for p in paths if not p.resolve().is_relative_to(out_dir.resolve())]  # a rerun: not our outputs
        if not paths:
            raise UserError(f"{in_dir}: no *.wav files found outside {out_dir}")
    return [(str(p), None, out_dir / p.relative_to(in_dir)) for p in paths]


def get_parser():
    parser = argparse.ArgumentParser(description="Convert every *.wav under IN_DIR into the target voice.")
    parser.add_argument("in_dir", type=Path, help="directory of source wavs (recursive), a wav.scp or a data dir.")
    parser.add_argument("out_dir", type=Path, help="converted 16 kHz wavs: same relative paths, or <utt>.wav.")
    parser.add_argument(
        "--content_encoder",
        required=True,
        help="HuBERT-Soft / HuBERT-Discrete checkpoint (bshall/hubert), or softvc-train-units' soft_encoder.pt "
        "(soft) / kmeans.pt (discrete).",
    )
    parser.add_argument("--kmeans", help="k-means for HuBERT-Discrete (kmeans100-50f36a95.pt).")
    parser.add_argument(
        "--acoustic_model",
        required=True,
        help="original Soft-VC checkpoint, ESPnet model file (config.yaml beside it or --train_config), packed "
        "model (softvc-pack zip or folder) or espnet_model_zoo tag in the local cache.",
    )
    parser.add_argument("--train_config", help="config.yaml of an ESPnet model file (default: beside it).")
    parser.add_argument(
        "--vocoder", help="HiFi-GAN checkpoint (bshall/hifigan) or ParallelWaveGAN .pkl; default Griffin-Lim."
    )
    parser.add_argument(
        "--postnet", help="standalone denoising postnet (--tts denoiser model file or research checkpoint)."
    )
    parser.add_argument("--postnet_config", help="config.yaml of an ESPnet --postnet model file.")
    parser.add_argument(
        "--sid", type=int, help="target speaker id of a multi-speaker acoustic model (spks; default speaker 0)."
    )
    parser.add_argument(
        "--denoise",
        choices=sorted(external.METHODS),
        help="waveform denoiser run on each source before the content encoder (offline only; default none).",
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu).")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--nj", type=int, default=1, help="parallel processes (CPU; one process on an accelerator).")
    parser.add_argument(
        "--chunk_ms",
        type=float,
        default=None,
        help="stream each file in chunks of this many ms (at least 20; no postnet); default: offline conversion.",
    )
    parser.add_argument(
        "--stream_prior",
        type=Path,
        help="with --chunk_ms: a wav or a directory of wavs (a few sentences, any voice) whose statistics start "
        "each stream (default: each file's own, from a cold start).",
    )
    return parser


@cli
def main(argv=None):
    global _converter
    args = get_parser().parse_args(argv)
    if args.nj < 1:
        raise UserError(f"--nj {args.nj}: give at least 1")
    if args.chunk_ms is not None:
        check_chunk_ms(args.chunk_ms)
        if args.postnet is not None:
            raise UserError("--chunk_ms: streaming runs without a denoising postnet (it needs the whole utterance)")
        if args.denoise is not None:
            raise UserError("--chunk_ms: streaming runs without --denoise (it denoises whole utterances)")
    elif args.stream_prior is not None:
        raise UserError("--stream_prior: give --chunk_ms too (it starts streams)")
    items = inputs(args.in_dir, args.out_dir)
    options = dict(
        content_encoder=args.content_encoder,
        kmeans=args.kmeans,
        vocoder_file=args.vocoder,
        postnet_config=args.postnet_config,
        postnet_file=args.postnet,
        device=args.device,
        dtype=args.dtype,
        sid=args.sid,
        denoise=args.denoise,
    )
    if args.train_config is not None:
        options["train_config"] = args.train_config
    with pretrained(args.acoustic_model) as files:
        if "train_config" in files and args.train_config is not None:
            raise UserError(f"{args.acoustic_model}: a packed model has its own config; drop --train_config")
        _converter = Speech2Speech(**{**files, **options})
    prior = None
    if args.stream_prior is not None:
        try:
            paths = find_files(args.stream_prior, ".wav") if args.stream_prior.is_dir() else [args.stream_prior]
            prior = _converter.stream_prior([load_audio(p) for p in paths])
        except UserError as e:
            raise UserError(f"--stream_prior: {e}") from None
    nj = args.nj if torch.device(args.device).type == "cpu" else 1
    job = functools.partial(_convert, chunk_ms=args.chunk_ms, prior=prior)
    run_jobs(job, items, min(nj, len(items)), "convert")
    print(f"wrote {len(items)} converted wavs to {args.out_dir}")


if __name__ == "__main__":
    main()
