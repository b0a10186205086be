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
``deepfilternet3``) cleans each noisy source before the content encoder; ``--denoise fusion --denoiser M`` gives
the offline content encoder the log-mel of the fusion denoiser M (recipe stage 7) instead (offline only; see
docs/denoising.md, "where denoising pays").
"""

import argparse
import contextlib
import functools
from pathlib import Path

import soundfile as sf
import torch

from espnet_softvc.bin.vc_inference import SOURCE_DENOISERS, Speech2Speech, check_chunk_ms
from espnet_softvc.tasks.load import pretrained
from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import check_file_name, check_outputs, find_files, load_audio, same_options, save_wav
from espnet_softvc.utils.kaldi_data import is_pipe, load_wav_entry, read_scp
from espnet_softvc.utils.shapes import SAMPLE_RATE, UNIT_HOP
from espnet_softvc.utils.workers import run_jobs

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


AUDIO = (".wav", ".flac", ".ogg", ".mp3")  # a single file given as IN (soundfile reads them)


def is_single(in_dir):
    """Whether IN is one audio file (not a wav directory, a wav.scp or a data dir)."""
    return in_dir.suffix.lower() in AUDIO


def inputs(in_dir, out_dir, allow_pipes=False):
    """[(name, wav.scp value or None, output path)] of a wav directory, a single audio file, a wav.scp or a data
    dir; each output checked (before any work) not to be an input and to stay inside ``out_dir``."""
    single = is_single(in_dir)
    scp = in_dir / "wav.scp" if (in_dir / "wav.scp").is_file() else in_dir if in_dir.is_file() and not single else None
    if scp is not None:
        entries = read_scp(scp, allow_pipes=allow_pipes)
        items = [(utt, value, out_dir / f"{check_file_name(utt, scp)}.wav") for utt, value in entries.items()]
        sources = [value for value in entries.values() if not is_pipe(value)]
    elif single:
        if not in_dir.is_file():
            raise UserError(f"{in_dir}: audio file not found")
        target = out_dir if out_dir.suffix.lower() == ".wav" else out_dir / in_dir.with_suffix(".wav").name
        items, sources = [(str(in_dir), None, target)], [in_dir]
    else:
        paths = find_files(in_dir, ".wav")
        if out_dir.resolve().is_relative_to(in_dir.resolve()):
            paths = [p for p in paths if not p.resolve().is_relative_to(out_dir.resolve())]  # a rerun: not ours
            if not paths:
                raise UserError(f"{in_dir}: no *.wav files found outside {out_dir}")
        items, sources = [(str(p), None, out_dir / p.relative_to(in_dir)) for p in paths], paths
    check_outputs([out for _, _, out in items], sources, items[0][2].parent if single else out_dir)
    return items


def todo(items, conf_path, conf):
    """The items whose output is missing or invalid: a rerun with the same options (``conf``, kept in
    ``conf_path``) skips the wavs already converted (written atomically: a wav there is complete)."""
    same = same_options(conf_path, conf)
    left = [item for item in items if not (same and _complete(item[2]))]
    if len(left) < len(items):
        print(f"skipping {len(items) - len(left)} of {len(items)} wavs already converted with these options")
    return left


def _complete(path):
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return False
    return info.samplerate == SAMPLE_RATE and info.channels == 1 and info.frames > 0 and info.frames % UNIT_HOP == 0


def get_parser():
    parser = argparse.ArgumentParser(description="Convert every *.wav under IN_DIR into the target voice.")
    parser.add_argument(
        "in_dir", type=Path, help="directory of source wavs (recursive), one audio file, a wav.scp or a data dir."
    )
    parser.add_argument(
        "out_dir", type=Path, help="converted 16 kHz wavs: same relative paths, or <utt>.wav (a .wav for one file)."
    )
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
        choices=SOURCE_DENOISERS,
        help="denoiser of each source before the content encoder (offline only; default none): a waveform one, or "
        "fusion: the log-mel of --denoiser for the offline content encoder.",
    )
    parser.add_argument("--denoiser", help="--denoise fusion: the fusion denoiser's model file (recipe stage 7).")
    parser.add_argument("--denoiser_config", help="config.yaml of an ESPnet --denoiser model file.")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu).")
    parser.add_argument(
        "--allow_pipes", action="store_true", help="run the shell commands of wav.scp entries 'cmd |' (Kaldi pipes)."
    )
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
    items = inputs(args.in_dir, args.out_dir, args.allow_pipes)
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
        denoiser_file=args.denoiser,
        denoiser_config=args.denoiser_config,
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
    conf = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in ("in_dir", "nj")}
    files = ("content_encoder", "kmeans", "acoustic_model", "train_config", "vocoder", "postnet", "postnet_config")
    for key in (*files, "stream_prior"):
        conf[key] = conf[key] and _identity(conf[key])
    single, fresh = is_single(args.in_dir), not args.out_dir.exists()
    conf_path = args.out_dir / ".softvc-convert.yaml"
    left = items if single else todo(items, conf_path, conf)
    nj = args.nj if torch.device(args.device).type == "cpu" else 1
    job = functools.partial(_convert, chunk_ms=args.chunk_ms, prior=prior)
    try:
        if left:
            run_jobs(job, left, min(nj, len(left)), "convert", args.out_dir)
    except BaseException:
        if fresh and not any(out.exists() for _, _, out in items):  # nothing done: leave no OUT behind
            conf_path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                args.out_dir.rmdir()
        raise
    print(f"wrote {len(left)} converted wavs to {args.out_dir}")


def _identity(path):
    """A model file as the options of a rerun see it: resolved path, size and modification time."""
    path = Path(path)
    if not path.exists():
        return str(path)  # an espnet_model_zoo tag
    stat = path.stat()
    return f"{path.resolve()} {stat.st_size} {stat.st_mtime_ns}"


if __name__ == "__main__":
    main()
