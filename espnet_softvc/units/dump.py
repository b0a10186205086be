"""Unit dumps for ESPnet: Kaldi ``units.scp``/ark (kaldiio) and, for discrete units, ``text`` + ``tokens.txt``.

out_dir/units.scp          uttid -> ark offset: soft (N, 256) float32, discrete (N,) int32 (kaldiio writes no int64)
out_dir/text               discrete only: ``uttid u1 u2 ...`` (ESPnet TTSTask, --token_type word)
out_dir/tokens.txt         discrete only: <blank> <unk> 0 .. K-1 <sos/eos> (unit u is token id u + 2)
out_dir/data/units.J.{ark,scp}, text.J, units.yaml   one shard per job; finished shards are skipped on rerun
"""

import functools
import logging
from pathlib import Path

import kaldiio
import numpy as np
from tqdm import tqdm

from espnet_softvc.units.extractor import cached_extractor
from espnet_softvc.utils.io import atomic_path, same_options, write_lines
from espnet_softvc.utils.kaldi_data import merge_scp, read_scp
from espnet_softvc.utils.shapes import unit_tokens
from espnet_softvc.utils.workers import run_jobs


def _dump_shard(job, out_dir, encoder):
    """Encode one shard ``(index, [(uttid, path), ...])`` into data/units.J.ark/.scp (+ text.J), atomically."""
    index, entries = job
    extractor = cached_extractor(*encoder)
    ark = out_dir / "data" / f"units.{index}.ark"
    scp_lines, text_lines = [], []
    with atomic_path(ark) as tmp, open(tmp, "wb") as fd:
        for utt, path in tqdm(entries, desc=f"units (shard {index})", disable=index != 1):
            units = extractor.from_file(path, utt)
            if extractor.kind == "discrete":
                text_lines.append(f"{utt} {' '.join(map(str, units))}")
                units = units.astype(np.int32)
            scp_lines.append(f"{utt} {ark}:{fd.tell() + len(utt.encode()) + 1}")
            kaldiio.save_ark(fd, {utt: units})
    if text_lines:
        write_lines(out_dir / "data" / f"text.{index}", text_lines)
    write_lines(out_dir / "data" / f"units.{index}.scp", scp_lines)  # last: marks the shard done


def dump_units(wav_scp, out_dir, kind, checkpoint=None, kmeans=None, device="cpu", nj=1):
    """Encode every utterance of ``wav_scp`` into ``out_dir`` (layout in the module docstring).

    Shards already written by a run with the same encoder and ``nj`` are kept. Returns the number of utterances.
    """
    out_dir = Path(out_dir)
    entries = sorted(read_scp(wav_scp).items())
    extractor = cached_extractor(kind, checkpoint, kmeans, device)  # fail early on bad files, before forking
    if nj > 1 and extractor.device.type != "cpu":
        logging.warning("--nj %d ignored on %s: one process encodes on the accelerator", nj, device)
        nj = 1
    nj = max(1, min(nj, len(entries)))
    conf = {
        "kind": kind,
        "checkpoint": checkpoint and str(Path(checkpoint).resolve()),
        "kmeans": kmeans and str(Path(kmeans).resolve()),
        "nj": nj,
    }
    same = same_options(out_dir / "data" / "units.yaml", conf)
    shards = [(j, entries[j - 1 :: nj]) for j in range(1, nj + 1)]
    todo = [(j, part) for j, part in shards if not (same and _done(out_dir / "data" / f"units.{j}.scp", part))]
    if todo:
        encoder = (kind, checkpoint, kmeans, device)
        run_jobs(
            functools.partial(_dump_shard, out_dir=out_dir, encoder=encoder),
            todo,
            min(nj, len(todo)),
            "shards",
            out_dir,
        )
    merge_scp(out_dir / "units.scp", [out_dir / "data" / f"units.{j}.scp" for j, _ in shards])
    if extractor.kind == "discrete":
        merge_scp(out_dir / "text", [out_dir / "data" / f"text.{j}" for j, _ in shards])
        write_lines(out_dir / "tokens.txt", unit_tokens(extractor.num_units))
    return len(entries)


def _done(scp, entries):
    """A shard is finished when its scp (written last) lists exactly its utterances."""
    return scp.exists() and [line.split()[0] for line in scp.read_text().splitlines()] == [u for u, _ in entries]
