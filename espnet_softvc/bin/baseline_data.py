"""softvc-baseline-data: what ESPnet's stock FastSpeech2 needs beside the unit ``text`` and the dumped Soft-VC mels.

For every utterance of ``feats.scp`` (T, 128) with N discrete units in ``text``:

out_dir/durations     ``uttid 2 2 ... 2 r`` (``text_int``): each unit lasts 2 mel frames (HuBERT's 20 ms hop is two
                      10 ms mel hops) and the <sos/eos> token that FastSpeech2 appends gets the remainder
                      r = T - 2N (0 or 1, DESIGN §1), so the durations sum to T exactly.
out_dir/pitch.scp     (N + 1, 1) token-averaged log-F0 and energy, computed on the 16 kHz waveform with ESPnet's own
out_dir/energy.scp    ``Dio`` and ``Energy`` (hop 160 = the mel hop, averaged over the durations above): with
                      precomputed feats (``--odim 128``) ESPnet cannot extract them itself.
out_dir/data/         one ark/scp shard per job

The unit ``text`` is only checked (same utterances as the mels, tokens in the token list, 2N <= T <= 2N + 1).

    python -m espnet_softvc.bin.baseline_data dump/train/feats.scp dump/discrete/train/text data/train/wav.scp \
        dump/baselines/train --token_list dump/discrete/train/tokens.txt --nj 2
"""

import argparse
import functools
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import atomic_path
from espnet_softvc.utils.kaldi_data import is_pipe, load_wav_entry, merge_scp, read_ark_entry, read_scp, write_ark_scp
from espnet_softvc.utils.shapes import FRAMES_PER_UNIT, HOP, SAMPLE_RATE
from espnet_softvc.utils.workers import run_jobs

# The pitch/energy settings of conf/*fastspeech2*.yaml (pitch_extract_conf / energy_extract_conf).
PITCH_CONF = dict(fs=SAMPLE_RATE, n_fft=1024, hop_length=HOP, f0min=60, f0max=500, reduction_factor=1)
ENERGY_CONF = dict(fs=SAMPLE_RATE, n_fft=1024, win_length=1024, hop_length=HOP, reduction_factor=1)


def unit_durations(num_units, num_frames, utt_id="utterance"):
    """(N + 1,) int64 durations: 2 frames per unit, the remainder ``T - 2N`` (0 or 1) on the appended <sos/eos>."""
    remainder = num_frames - FRAMES_PER_UNIT * num_units
    if num_units == 0 or not 0 <= remainder < FRAMES_PER_UNIT:
        raise UserError(
            f"{utt_id}: {num_frames} mel frames for {num_units} units (expected 2N or 2N + 1 frames; "
            "units and mels of different audio or of another hop size?)"
        )
    return np.array([FRAMES_PER_UNIT] * num_units + [remainder], dtype=np.int64)


def read_units_text(path, tokens=None):
    """``{uttid: [unit token, ...]}`` from an ESPnet ``text`` of units, every token checked against ``tokens``."""
    units = {}
    for utt_id, value in read_scp(path).items():
        unknown = sorted(set(value.split()) - tokens) if tokens is not None else []
        if unknown:
            raise UserError(f"{path}: {utt_id} has tokens not in the token list (e.g. {unknown[:3]})")
        units[utt_id] = value.split()
    return units


@functools.lru_cache(maxsize=1)
def _extractors():
    from espnet2.tts.feats_extract.dio import Dio
    from espnet2.tts.feats_extract.energy import Energy

    return Dio(**PITCH_CONF), Energy(**ENERGY_CONF)


def token_pitch_energy(wav, durations):
    """(S,) 16 kHz waveform, (N + 1,) durations summing to T -> token-averaged pitch and energy, each (N + 1, 1)."""
    dio, energy = _extractors()
    wav, d = wav[None].float(), torch.as_tensor(durations)[None]
    lengths = dict(feats_lengths=d.sum(1), durations=d, durations_lengths=d.new_tensor([d.size(1)]))
    wav_lengths = torch.tensor([wav.size(1)])
    with torch.no_grad():
        pitch, _ = dio(wav, wav_lengths, **lengths)
        power, _ = energy(wav, wav_lengths, **lengths)
    return pitch[0].numpy().astype(np.float32), power[0].numpy().astype(np.float32)


def _prepare_shard(job, out_dir, allow_pipes):
    """One shard ``(index, [(uttid, num_units, feats value, wav value), ...])`` -> data/*.J files."""
    index, entries = job
    durations, pitch, energy = {}, {}, {}
    for utt_id, num_units, feats_value, wav_value in tqdm(
        entries, desc=f"pitch/energy (shard {index})", disable=index != 1
    ):
        num_frames = read_ark_entry(utt_id, feats_value).shape[0]
        durations[utt_id] = unit_durations(num_units, num_frames, utt_id)
        if is_pipe(wav_value) and not allow_pipes:
            raise UserError(f"{utt_id}: wav.scp entry is a shell pipe; pass --allow_pipes to run it")
        wav = load_wav_entry(utt_id, wav_value)
        if wav.numel() < HOP * num_frames:
            raise UserError(f"{utt_id}: audio of {wav.numel()} samples is shorter than its {num_frames} mel frames")
        pitch[utt_id], energy[utt_id] = token_pitch_energy(wav, durations[utt_id])
    data = out_dir / "data"
    write_ark_scp(pitch, data / f"pitch.{index}.ark", data / f"pitch.{index}.scp")
    write_ark_scp(energy, data / f"energy.{index}.ark", data / f"energy.{index}.scp")
    with atomic_path(data / f"durations.{index}") as tmp:  # last: marks the shard done
        tmp.write_text("".join(f"{u} {' '.join(map(str, d))}\n" for u, d in durations.items()))


def prepare(feats_scp, text, wav_scp, out_dir, token_list, nj=1, allow_pipes=False):
    """Write durations / pitch.scp / energy.scp for every utterance (layout in the module docstring)."""
    out_dir = Path(out_dir)
    tokens = {line.strip() for line in Path(token_list).read_text().splitlines()} if token_list else None
    if tokens is not None and not tokens:
        raise UserError(f"{token_list}: empty token list")
    feats = read_scp(feats_scp)
    units = read_units_text(text, tokens)
    wavs = read_scp(wav_scp, allow_pipes=True)
    for name, ids in ((text, units), (wav_scp, wavs)):
        missing = sorted(set(feats) - set(ids))
        if missing:
            raise UserError(f"{name}: no entry for {len(missing)} utterances of {feats_scp} (first: {missing[0]})")
    entries = [(u, len(units[u]), feats[u], wavs[u]) for u in feats]
    nj = max(1, min(nj, len(entries)))
    run_jobs(
        functools.partial(_prepare_shard, out_dir=out_dir, allow_pipes=allow_pipes),
        [(j, entries[j - 1 :: nj]) for j in range(1, nj + 1)],
        nj,
        "shards",
        out_dir,
    )
    for name, part in (("pitch.scp", "pitch.{}.scp"), ("energy.scp", "energy.{}.scp"), ("durations", "durations.{}")):
        merge_scp(out_dir / name, [out_dir / "data" / part.format(j) for j in range(1, nj + 1)])
    with atomic_path(out_dir / "baseline_data.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(dict(frames_per_unit=FRAMES_PER_UNIT, pitch=PITCH_CONF, energy=ENERGY_CONF)))
    return len(entries)


def check_durations(durations_file, feats_scp):
    """Every utterance's durations sum to its mel length; returns the number checked (UserError otherwise)."""
    durations = read_scp(durations_file)
    for utt_id, value in read_scp(feats_scp).items():
        num_frames = read_ark_entry(utt_id, value).shape[0]
        total = sum(map(int, durations.get(utt_id, "-1").split()))
        if total != num_frames:
            raise UserError(f"{durations_file}: {utt_id} durations sum to {total}, mel has {num_frames} frames")
    return len(durations)


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("feats_scp", help="dumped Soft-VC log-mels, dump/<set>/feats.scp")
    parser.add_argument("text", help="discrete units as ESPnet text (uttid u1 u2 ...), from the unit dump")
    parser.add_argument("wav_scp", help="Kaldi wav.scp of the same utterances (pitch and energy)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--token_list", help="check the unit tokens against this ESPnet token list")
    parser.add_argument("--nj", type=int, default=1, help="parallel jobs")
    parser.add_argument("--allow_pipes", action="store_true", help="run 'cmd |' entries of wav.scp")
    args = parser.parse_args(argv)
    n = prepare(args.feats_scp, args.text, args.wav_scp, args.out_dir, args.token_list, args.nj, args.allow_pipes)
    check_durations(args.out_dir / "durations", args.feats_scp)
    print(f"wrote durations, pitch.scp and energy.scp of {n} utterances to {args.out_dir}")


if __name__ == "__main__":
    main()
