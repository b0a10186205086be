"""Real-time factor of the denoisers on CPU, in one run: ours (the recipe's standalone denoiser) next to RNNoise and
DeepFilterNet3, each from a noisy 16 kHz recording to the log-mel the vocoder gets.

    python benchmarks/bench_denoise.py [--model_file exp/denoiser_softvc/valid.loss.ave.pth --train_config ...]

Input: the real speech clips of tests/data/realdev mixed with its real recorded noise at 5 dB (speed does not depend
on the content). Paths timed per utterance, interleaved, best of --repeats, on --threads threads:
- ours: the recipe's model, or without --model_file one of ``conf/tuning/train_denoiser_tiny.yaml``'s kind and size
  with random weights (the same work). A fusion denoiser runs RNNoise and DeepFilterNet3, the mel front end on the
  three waveforms and its network; a mel denoiser the mel front end and ``DenoisingPostnet``;
- rnnoise / deepfilternet3: 16 -> 48 kHz, the wheel's C library frame by frame, 48 -> 16 kHz, then the mel front end;
- deepfilternet3 + ours (a mel denoiser only): the waveform front end followed by it.
RTF = compute seconds / audio seconds; the ratio column is each path's time over ours.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from espnet_softvc.feats.log_mel import logmel
from espnet_softvc.postnet import external, noise
from espnet_softvc.postnet.espnet_model import MelDenoiser
from espnet_softvc.postnet.fusion import fusion_inputs
from espnet_softvc.tasks.load import load_postnet
from espnet_softvc.utils.io import load_audio

REPO = Path(__file__).resolve().parents[1]
REALDEV = REPO / "tests/data/realdev"


def mixtures(snr_db=5.0, seed=0):
    """{name: 16 kHz noisy float64 waveform} of the realdev speech clips with its recorded noise."""
    rng = np.random.default_rng(seed)
    recording = load_audio(next(REALDEV.glob("noise_*.wav"))).double().numpy()
    out = {}
    for path in sorted(REALDEV.glob("speech_*.wav")) + sorted(REALDEV.glob("vctk_*.wav")):
        speech = load_audio(path).double().numpy()
        out[path.stem] = noise.mix(speech, noise.excerpt(recording, speech.size, rng), snr_db)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_file", help="our denoiser (ESPnet model file or research checkpoint)")
    parser.add_argument("--train_config", help="config.yaml of an ESPnet --model_file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.model_file:
        postnet = load_postnet(args.model_file, args.train_config)
    else:
        conf = yaml.safe_load((REPO / "conf/tuning/train_denoiser_tiny.yaml").read_text())["tts_conf"]
        postnet = MelDenoiser(**conf).postnet.eval()
    fusion = getattr(postnet, "front_ends", None) is not None

    def ours(wav):
        with torch.inference_mode():
            if fusion:
                return postnet(fusion_inputs(wav)[None])[0]
            return postnet(torch.from_numpy(logmel(torch.from_numpy(wav).float())).T[None])[0]

    def external_then_mel(method):
        return lambda wav: logmel(torch.from_numpy(external.denoise(wav, 16000, method)))

    ours_name = "ours (fusion)" if fusion else "ours (mel denoiser)"
    paths = {
        ours_name: ours,
        "rnnoise": external_then_mel("rnnoise"),
        "deepfilternet3": external_then_mel("deepfilternet3"),
    }
    if not fusion:
        paths["deepfilternet3 + ours"] = lambda wav: ours(external.denoise(wav, 16000, "deepfilternet3"))
    wavs = mixtures()
    seconds = sum(w.size for w in wavs.values()) / 16000
    best = {name: float("inf") for name in paths}
    for _ in range(args.repeats):
        for name, path in paths.items():  # interleaved: each repeat times every path once
            start = time.perf_counter()
            for wav in wavs.values():
                path(wav)
            best[name] = min(best[name], time.perf_counter() - start)
    print(f"{len(wavs)} utterances, {seconds:.1f} s of audio, {args.threads} thread(s), best of {args.repeats}")
    print(f"{'path':<24}{'seconds':>9}{'RTF':>8}{'x ours':>8}")
    for name, t in best.items():
        print(f"{name:<24}{t:>9.3f}{t / seconds:>8.4f}{t / best[ours_name]:>8.2f}")


if __name__ == "__main__":
    main()
