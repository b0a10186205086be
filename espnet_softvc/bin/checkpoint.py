"""softvc-checkpoint: both directions between ESPnet Soft-VC model files and original bshall/acoustic-model
checkpoints. The tensors are copied unchanged, so the round trip is bit-exact.

    softvc-checkpoint to-espnet hubert-soft-0321fd7e.pt exp/softvc_soft_original   # -> config.yaml, model.pth
    softvc-checkpoint to-original exp/softvc/valid.loss.ave.pth model-best.pt
"""

import argparse
from pathlib import Path

from espnet_softvc.softvc.original_format import save_original
from espnet_softvc.tasks.load import load_model, save_espnet
from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import check_outputs


def to_original(model_file, out_path, train_config=None):
    """Write the ESPnet model in ``model_file`` as an original v0.1 checkpoint ``out_path``."""
    model, _ = load_model(model_file, train_config)
    save_original(model.tts.model, out_path)


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description="Convert between ESPnet Soft-VC model files and original checkpoints.")
    sub = parser.add_subparsers(dest="direction", required=True)
    p = sub.add_parser("to-original", help="ESPnet model file -> original checkpoint (bshall/acoustic-model v0.1)")
    p.add_argument("model_file", type=Path, help="e.g. exp/<tag>/valid.loss.ave.pth")
    p.add_argument("out", type=Path, help="original checkpoint to write (.pt)")
    p.add_argument("--train_config", type=Path, default=None, help="default: config.yaml beside model_file")
    p = sub.add_parser("to-espnet", help="original checkpoint -> ESPnet model dir (config.yaml, model.pth)")
    p.add_argument("checkpoint", type=Path, help="original Soft-VC acoustic-model checkpoint")
    p.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    if args.direction == "to-original":
        if args.out.is_dir():
            raise UserError(f"{args.out}: is a directory; give the checkpoint file to write")
        check_outputs([args.out], [args.model_file, *filter(None, [args.train_config])], args.out.parent)
        to_original(args.model_file, args.out, args.train_config)
        print(f"wrote {args.out}")
    else:
        check_outputs([args.out_dir / "config.yaml", args.out_dir / "model.pth"], [args.checkpoint], args.out_dir)
        config, model_file = save_espnet(load_model(args.checkpoint)[0], args.out_dir)
        print(f"wrote {config} and {model_file}")


if __name__ == "__main__":
    main()
