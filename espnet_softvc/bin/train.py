"""softvc-train: the command line of bshall/acoustic-model ``train.py``, training with ESPnet's Trainer.

    softvc-train [--resume CKPT] [--discrete] dataset-dir checkpoint-dir [ESPnet options...]

``dataset-dir`` has the original layout: ``mels/{train,dev}/**/*.npy`` ((128, T) log-mels) and
``soft/`` or ``discrete/`` units ((N, 256) float or (N,) int) with the same relative paths. The command writes
an ESPnet dump (``checkpoint-dir/dump/{train,dev}/{units,feats}.{ark,scp}`` + shape files) and trains
``SoftVCTask`` into ``checkpoint-dir`` with the paper's settings: 1000 steps per epoch (validation every 1000
steps, as the original), 80 epochs = 80k steps, unless a ``--config`` is given. Running the command again
continues an interrupted run (ESPnet ``--resume true``); ``--resume CKPT`` starts from an original checkpoint
(fine-tuning the published weights). Other options go to ESPnet (``--max_epoch 10``,
``--ngpu 2 --multiprocessing_distributed true``, ...).
The best model (valid loss) is also exported as ``checkpoint-dir/model-best.pt`` in the original format.
"""

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import atomic_path, find_files, load_npy
from espnet_softvc.utils.kaldi_data import ark_scp_writer
from espnet_softvc.utils.shapes import N_MELS, check_units

SPLITS = ("train", "dev")
PAPER_SCHEDULE = ["--num_iters_per_epoch", "1000", "--max_epoch", "80", "--keep_nbest_models", "5"]


def dump_split(dataset_dir, kind, split, out_dir):
    """Write ``out_dir/{feats,units}.{ark,scp}`` and ``{feats,units}_shape`` for one split; returns #utterances.

    Utterance ids are the relative paths without suffix. Mels are stored (T, 128); discrete units as int32.
    """
    mels_dir, units_dir = dataset_dir / "mels" / split, dataset_dir / kind / split
    paths = find_files(mels_dir, ".npy")
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        atomic_path(out_dir / "feats_shape") as feats_shape,
        atomic_path(out_dir / "units_shape") as units_shape,
        ark_scp_writer(out_dir / "feats.ark", out_dir / "feats.scp") as feats_writer,
        ark_scp_writer(out_dir / "units.ark", out_dir / "units.scp") as units_writer,
        open(feats_shape, "w") as feats_shapes,
        open(units_shape, "w") as units_shapes,
    ):
        for path in tqdm(paths, desc=f"dump {split}"):
            relative = path.relative_to(mels_dir).with_suffix("")
            mel = load_npy(path)
            if mel.ndim != 2 or mel.shape[0] != N_MELS:
                raise UserError(f"{path}: expected a ({N_MELS}, T) mel, got shape {mel.shape}")
            units_path = units_dir / relative.with_suffix(".npy")
            if not units_path.is_file():
                raise UserError(f"{units_path}: units file missing for {path}")
            units = check_units(load_npy(units_path), kind, units_path, batched=False)
            if mel.shape[1] < 2 * len(units):
                raise UserError(f"{path}: {mel.shape[1]} mel frames for {len(units)} units in {units_path} (need 2N)")
            utt = relative.as_posix()
            feats_writer[utt] = np.ascontiguousarray(mel.T, dtype=np.float32)
            units_writer[utt] = units.numpy().astype(np.int32 if kind == "discrete" else np.float32)
            feats_shapes.write(f"{utt} {mel.shape[1]},{N_MELS}\n")
            units_shapes.write(f"{utt} {','.join(map(str, units.shape))}\n")
    return len(paths)


def espnet_args(dump_dir, checkpoint_dir, discrete, init_param=None):
    """SoftVCTask options for the dump: data, shapes, output dir, model kind, resume, initial weights."""
    cmd = ["--output_dir", str(checkpoint_dir), "--tts", "softvc", "--tts_conf", f"discrete={discrete}"]
    for mode, split in (("train", "train"), ("valid", "dev")):
        for name in ("units", "feats"):
            cmd += [f"--{mode}_data_path_and_name_and_type", f"{dump_dir / split / name}.scp,{name},kaldi_ark"]
        cmd += [f"--{mode}_shape_file", str(dump_dir / split / "feats_shape")]
    cmd += ["--resume", "true", "--ngpu", str(min(1, torch.cuda.device_count()))]
    return cmd + (["--init_param", str(init_param)] if init_param else [])


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Train the Soft-VC acoustic model (original dataset layout) with ESPnet's Trainer.",
        epilog="Unknown options are passed to ESPnet's SoftVCTask (python -m espnet_softvc.bin.softvc_train -h).",
    )
    parser.add_argument("dataset_dir", metavar="dataset-dir", type=Path, help="path to the data directory.")
    parser.add_argument("checkpoint_dir", metavar="checkpoint-dir", type=Path, help="path to the checkpoint directory.")
    parser.add_argument("--resume", type=Path, help="original checkpoint to start from (fine-tuning).")
    parser.add_argument("--discrete", action="store_true", help="use discrete units.")
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s: %(message)s")

    kind = "discrete" if args.discrete else "soft"
    dump_dir = args.checkpoint_dir / "dump"
    for split in SPLITS:
        dump_split(args.dataset_dir, kind, split, dump_dir / split)

    from espnet_softvc.bin.checkpoint import to_original  # after the dump: ESPnet imports take seconds
    from espnet_softvc.bin.softvc_train import train

    has_config = any(arg == "--config" or arg.startswith("--config=") for arg in extra)
    schedule = [] if has_config else PAPER_SCHEDULE  # command-line options would override the config's
    train(espnet_args(dump_dir, args.checkpoint_dir, args.discrete, args.resume) + schedule + extra)
    best = args.checkpoint_dir / "valid.loss.best.pth"
    if best.exists():
        to_original(best, args.checkpoint_dir / "model-best.pt")
        print(f"wrote {args.checkpoint_dir / 'model-best.pt'} (original format)")


if __name__ == "__main__":
    main()
