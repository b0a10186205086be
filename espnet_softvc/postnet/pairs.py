"""Noisy/clean log-mel pairs for training the denoiser through ESPnet (``--tts denoiser`` of ``SoftVCTask``).

Every utterance of a Kaldi ``wav.scp`` (or a directory of wavs) gets ``--copies`` seeded corruptions
(``noise.corrupt``: white, pink, random-spectrum, modulated or tonal noise, or babble of the other utterances at
random speeds, sometimes two of them mixed, sometimes reverberated, sometimes clean; SNR -5..20 dB, mixed in the
waveform at 16 kHz), written as Kaldi (T, 128) mels:
``OUT_DIR/noisy.{ark,scp}`` (the task's ``units``) and ``OUT_DIR/clean.{ark,scp}`` (its ``feats``), keys
``<utt>-n<copy>``. ``--noise_dir`` adds recorded noise (``recorded_noises``: a MUSAN-style folder), half of
the noises then being excerpts of it. ``--front_ends rnnoise deepfilternet3`` (the fusion denoiser's pairs): each
noisy entry is (T, 384), the noisy mel followed by the mels of those denoisers' outputs (``fusion.fusion_inputs``).

    python -m espnet_softvc.bin.make_pairs data/train/wav.scp dump/denoise/train --copies 4 --seed 0
    python -m espnet_softvc.bin.make_pairs data/train/wav.scp dump/denoise/train --noise_dir /data/musan
    python -m espnet_softvc.bin.make_pairs data/train/wav.scp dump/denoise/train --front_ends rnnoise deepfilternet3
"""

import contextlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from espnet_softvc.feats.log_mel import logmel
from espnet_softvc.postnet import noise
from espnet_softvc.postnet.fusion import fusion_inputs
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import find_files, load_audio
from espnet_softvc.utils.kaldi_data import ark_scp_writer, read_scp
from espnet_softvc.utils.workers import Pool


def read_wavs(source):
    """{utt_id: 16 kHz float64 waveform} of a Kaldi wav.scp (path per line, no pipes) or of a directory of wavs."""
    source = Path(source)
    if source.is_dir():
        items = [(p.stem, p) for p in find_files(source, ".wav")]
    elif source.is_file():
        items = read_scp(source).items()  # checked: ids unique and sorted, pipes refused
    else:
        raise UserError(f"{source}: no such wav.scp or directory")
    return {utt: load_audio(path).double().numpy() for utt, path in items}


MAX_NOISE_SECONDS = 60  # of each recorded noise kept in memory (MUSAN's noise part: 930 files, about 6 h)


def recorded_noises(noise_dir):
    """Recorded noise waveforms (16 kHz mono float64, at most ``MAX_NOISE_SECONDS`` each) of a MUSAN-layout folder:
    the ``*.wav`` under ``noise_dir/noise`` (MUSAN's noise part; its music and speech are not noise to remove)
    when that folder exists, else every ``*.wav`` under ``noise_dir``. Silent files are left out."""
    noise_dir = Path(noise_dir)
    root = noise_dir / "noise" if (noise_dir / "noise").is_dir() else noise_dir
    noises = []
    for path in tqdm(find_files(root, ".wav"), desc="recorded noise"):
        wav = load_audio(path)[: MAX_NOISE_SECONDS * noise.SAMPLE_RATE].double().numpy()
        if wav.size >= noise.SAMPLE_RATE // 10 and wav.std() > 1e-6:
            noises.append(wav)
    if not noises:
        raise UserError(f"{root}: no recorded noise of at least 0.1 s (only silent or too short wavs)")
    return noises


_JOB = {}  # make_pairs' inputs, inherited by its forked workers


def _pair(task):
    """(index, utt, copy) -> (key, noisy (T, 128) or fusion inputs (T, 384), clean (T, 128)) numpy."""
    index, utt, copy = task
    wav, job = _JOB["wavs"][utt], _JOB
    rng = np.random.default_rng((job["seed"], index, copy))
    corrupted, _ = noise.corrupt(wav, rng, job["pool"], recorded=job["recorded"])
    if job["front_ends"]:
        noisy = fusion_inputs(corrupted, utt, job["front_ends"]).numpy()
    else:
        noisy = logmel(torch.as_tensor(corrupted, dtype=torch.float32), utt).T
    return f"{utt}-n{copy}", noisy, logmel(torch.as_tensor(wav, dtype=torch.float32), utt).T


def make_pairs(wavs, out_dir, copies=2, seed=0, recorded=(), front_ends=(), nj=1):
    """Write the pairs for ``wavs`` ({utt: wav}) into ``out_dir``; returns the number of pairs. ``recorded``: noise
    waveforms (``recorded_noises``) for half of the corruptions; ``front_ends``: the fusion denoiser's inputs;
    ``nj``: worker processes (the same pairs for any ``nj``)."""
    _JOB.update(wavs=wavs, pool=list(wavs.values()), seed=seed, recorded=recorded, front_ends=tuple(front_ends))
    tasks = [(index, utt, copy) for index, utt in enumerate(wavs) for copy in range(copies)]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        ark_scp_writer(out_dir / "noisy.ark", out_dir / "noisy.scp") as noisy_writer,
        ark_scp_writer(out_dir / "clean.ark", out_dir / "clean.scp") as clean_writer,
        Pool(nj) if nj > 1 else contextlib.nullcontext() as workers,
    ):
        results = workers.map(_pair, tasks) if workers is not None else map(_pair, tasks)
        for key, noisy, clean in tqdm(results, total=len(tasks), desc="noisy pairs"):
            noisy_writer[key], clean_writer[key] = noisy, clean
    _JOB.clear()
    return len(tasks)
