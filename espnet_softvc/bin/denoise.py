"""softvc-denoise: run the denoising postnet on log-mels from any source, or on recordings.

    softvc-denoise IN_DIR OUT_DIR --model_file M [--train_config C]     # *.npy (128, T), paths mirrored
    softvc-denoise WAV_DIR OUT_DIR --model_file M [--write_wav [--vocoder V]]
                                                                       # *.wav (any rate) -> <stem>.npy (128, T)
    python -m espnet_softvc.bin.denoise feats.scp OUT_DIR --model_file M --train_config C
                                                                       # Kaldi (T, 128) -> OUT_DIR/feats.{ark,scp}
A directory without ``*.npy`` files is read as recordings: every ``*.wav`` (any sample rate and channel count) gives
the denoised (128, T) Soft-VC log-mel that would go to the vocoder, T = the mel front end's frames for that wav
(``softvc-mels``), as ``<stem>.npy`` under the same relative path; ``--write_wav`` also writes ``<stem>.wav``
(16 kHz, 160 T samples) through ``--vocoder`` (HiFi-GAN / ParallelWaveGAN; default Griffin-Lim).
The model is an ESPnet model file of ``SoftVCTask`` (a standalone denoiser, or Soft-VC with a ``postnet``) with its
``config.yaml`` (``--train_config``, by default the one beside it), or a postnet checkpoint ``{"config", "model"}``
(research/). A fusion denoiser (``arch: fusion``, recipe stage 7's) runs RNNoise and DeepFilterNet3 on each wav
first: wavs only.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from espnet_softvc.feats.log_mel import wav_to_mel
from espnet_softvc.postnet.fusion import fusion_inputs
from espnet_softvc.tasks.load import load_postnet
from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import check_outputs, find_files, load_audio, load_npy, mirror, save_npy, save_wav
from espnet_softvc.utils.kaldi_data import ark_scp_writer
from espnet_softvc.utils.shapes import N_MELS


def check_mel(mel, name):
    """A (T, 128) finite float log-mel as a tensor; anything else raises a one-line ``UserError``."""
    mel = np.asarray(mel)
    if mel.ndim != 2 or mel.shape[1] != N_MELS:
        raise UserError(f"{name}: expected a log-mel with {N_MELS} bins, got shape {mel.shape}")
    if mel.shape[0] == 0:
        raise UserError(f"{name}: empty log-mel (0 frames)")
    if not np.isfinite(mel).all():
        raise UserError(f"{name}: log-mel contains NaN or Inf")
    return torch.as_tensor(mel, dtype=torch.float32)


@torch.inference_mode()
def denoise(postnet, mel, name="mel"):
    """(T, 128) log-mel -> denoised (T, 128) numpy float32."""
    return postnet(check_mel(mel, name)[None])[0].numpy()


def denoise_wavs(postnet, in_dir, out_dir, write_wav=False, vocoder_file=None):
    """Every ``*.wav`` of ``in_dir`` -> ``out_dir/<relative path>/<stem>.npy``, the denoised (128, T) log-mel (and
    ``<stem>.wav`` with ``write_wav``)."""
    from espnet_softvc.bin.vc_inference import vocode  # here: it imports the content encoders
    from espnet_softvc.vocoders import load_vocoder

    paths = find_files(in_dir, ".wav")
    outs = [mirror(path, in_dir, out_dir) for path in paths]
    check_outputs([*outs, *(out.with_suffix(".wav") for out in outs if write_wav)], paths, out_dir)
    vocoder = load_vocoder(vocoder_file) if write_wav else None
    fusion = getattr(postnet, "front_ends", None) is not None
    for path, out in zip(tqdm(paths, desc="denoise"), outs):
        if fusion:  # the noisy mel with RNNoise's and DeepFilterNet3's (postnet.fusion)
            with torch.inference_mode():
                mel = postnet(fusion_inputs(load_audio(path), path)[None])[0].numpy().T
        else:
            mel = denoise(postnet, wav_to_mel(path).T, path).T  # (128, T)
        save_npy(out, mel)
        if vocoder is not None:
            with torch.inference_mode():
                wav = vocode(vocoder, torch.from_numpy(mel.T).float())  # (160 T,), bounded memory
            save_wav(out.with_suffix(".wav"), wav.numpy(), vocoder.sample_rate)
    print(f"wrote {len(paths)} denoised mels{' and wavs' if write_wav else ''} to {out_dir}")


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Denoise Soft-VC log-mels with the denoising postnet.")
    parser.add_argument(
        "in_dir", metavar="in-dir", type=Path, help="directory of (128, T) .npy mels or of .wav files, or a feats.scp"
    )
    parser.add_argument("out_dir", metavar="out-dir", type=Path, help="output directory")
    parser.add_argument("--model_file", type=Path, required=True)
    parser.add_argument("--train_config", type=Path, help="config.yaml of an ESPnet model file [the one beside it]")
    parser.add_argument("--write_wav", action="store_true", help="wav input: also write the denoised <stem>.wav")
    parser.add_argument("--vocoder", help="vocoder of --write_wav (HiFi-GAN .pt, ParallelWaveGAN .pkl) [Griffin-Lim]")
    args = parser.parse_args(argv)
    if args.vocoder is not None and not args.write_wav:
        raise UserError("--vocoder: give --write_wav too (it vocodes the denoised mels)")
    torch.set_num_threads(1)
    models = [args.model_file, *filter(None, (args.train_config, args.vocoder))]
    check_outputs([args.out_dir], [args.in_dir, *models])
    postnet = load_postnet(args.model_file, args.train_config)
    wav_dir = args.in_dir.is_dir() and next(args.in_dir.rglob("*.npy"), None) is None
    if getattr(postnet, "front_ends", None) is not None and not wav_dir:
        raise UserError(
            f"{args.in_dir}: {args.model_file} fuses waveform denoisers ({', '.join(postnet.front_ends)}): "
            "give it a directory of wavs, not mels"
        )
    if args.in_dir.is_file() and args.in_dir.suffix == ".scp":
        import kaldiio

        try:
            reader = kaldiio.load_scp(str(args.in_dir))
            keys = list(reader)
        except (OSError, ValueError) as e:
            raise UserError(f"{args.in_dir}: not a readable Kaldi scp ({e})") from None
        lines = args.in_dir.read_text().splitlines()
        arks = {line.split(maxsplit=1)[-1].rpartition(":")[0] for line in lines if line.strip()}  # ark:offset
        outs = [args.out_dir / "feats.ark", args.out_dir / "feats.scp"]
        check_outputs(outs, [args.in_dir, *arks, *models], args.out_dir)
        with ark_scp_writer(args.out_dir / "feats.ark", args.out_dir / "feats.scp") as writer:
            for key in tqdm(keys, desc="denoise"):
                writer[key] = denoise(postnet, reader[key], f"{args.in_dir}:{key}")
        print(f"wrote {len(keys)} denoised mels to {args.out_dir / 'feats.scp'}")
        return
    if wav_dir:
        return denoise_wavs(postnet, args.in_dir, args.out_dir, args.write_wav, args.vocoder)
    if args.write_wav:
        raise UserError(f"{args.in_dir}: --write_wav is for a directory of wavs (it holds .npy mels)")
    paths = find_files(args.in_dir, ".npy")
    outs = [mirror(path, args.in_dir, args.out_dir) for path in paths]
    check_outputs(outs, [*paths, *models], args.out_dir)
    for path, out in zip(tqdm(paths, desc="denoise"), outs):
        mel = load_npy(path)
        if mel.ndim != 2 or mel.shape[0] != N_MELS:
            raise UserError(f"{path}: expected a ({N_MELS}, T) log-mel, got shape {mel.shape}")
        save_npy(out, denoise(postnet, mel.T, path).T)
    print(f"wrote {len(paths)} denoised mels to {args.out_dir}")


if __name__ == "__main__":
    main()
