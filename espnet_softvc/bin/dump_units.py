"""softvc-dump-units: speech units of a Kaldi data dir (``wav.scp``) as ESPnet dumps.

Writes ``out-dir/units.scp`` (kaldi_ark: soft (N, 256) float32, discrete (N,) int32) and, for discrete units,
``text`` (``uttid u1 u2 ...``) and ``tokens.txt`` for stock ESPnet TTS models. Reruns skip finished shards.
"""

import argparse
from pathlib import Path

from espnet_softvc.units.dump import dump_units
from espnet_softvc.utils.errors import cli


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Dump speech units of a Kaldi data directory.")
    parser.add_argument("kind", choices=["soft", "discrete"])
    parser.add_argument("data_dir", type=Path, help="Kaldi data directory with wav.scp (or the wav.scp itself).")
    parser.add_argument("out_dir", type=Path, help="dump directory, e.g. dump/soft/train.")
    parser.add_argument("--checkpoint", help="HuBERT-Soft/-Discrete checkpoint or a softvc-train-units encoder.")
    parser.add_argument("--kmeans", help="k-means file (discrete): kmeans100-50f36a95.pt or an offline MFCC one.")
    parser.add_argument("--nj", type=int, default=1, help="parallel jobs (CPU), one shard each.")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    wav_scp = args.data_dir / "wav.scp" if args.data_dir.is_dir() else args.data_dir
    n = dump_units(wav_scp, args.out_dir, args.kind, args.checkpoint, args.kmeans, args.device, args.nj)
    print(f"wrote {args.kind} units of {n} utterances to {args.out_dir}/units.scp")


if __name__ == "__main__":
    main()
