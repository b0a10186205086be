"""Dump Soft-VC log-mels of a Kaldi ``wav.scp`` as ark/scp of (T, 128) float32 (ESPnet's ``feats.scp`` layout).

    python -m espnet_softvc.bin.dump_mels data/train/split2/wav.1.scp dump/train/data/feats.1

writes ``feats.1.ark`` and ``feats.1.scp`` atomically; a rerun whose scp already lists every utterance skips.
"""

import argparse
from pathlib import Path

from tqdm import tqdm

from espnet_softvc.feats.log_mel import logmel
from espnet_softvc.utils.errors import cli
from espnet_softvc.utils.kaldi_data import load_wav_entry, read_scp, write_ark_scp


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wav_scp", type=Path)
    parser.add_argument("out_prefix", type=Path, help="writes OUT_PREFIX.ark and OUT_PREFIX.scp")
    parser.add_argument("--allow_pipes", action="store_true", help="run 'cmd |' entries of wav.scp (Kaldi pipes)")
    args = parser.parse_args(argv)
    wavs = read_scp(args.wav_scp, allow_pipes=args.allow_pipes)
    ark, scp = (Path(f"{args.out_prefix}.{ext}") for ext in ("ark", "scp"))
    if scp.exists() and list(read_scp(scp)) == list(wavs):
        print(f"{scp}: already complete, skipped")
        return
    mels = {utt: logmel(load_wav_entry(utt, value), utt).T for utt, value in tqdm(wavs.items(), desc="mels")}
    write_ark_scp(mels, ark, scp)
    print(f"wrote {len(mels)} mels to {scp}")


if __name__ == "__main__":
    main()
