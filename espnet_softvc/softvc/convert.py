"""Both directions between ESPnet Soft-VC model files and original bshall/acoustic-model checkpoints.

An ESPnet model file is the state_dict of ``ESPnetSoftVCModel`` (keys ``tts.model.<original name>``) plus the
``config.yaml`` of its training run; an original checkpoint holds the same tensors under ``module.<name>``.
Conversion copies tensors unchanged, so the round trip is bit-exact.

    python -m espnet_softvc.softvc.convert to-espnet hubert-soft-0321fd7e.pt exp/softvc_soft_original
    python -m espnet_softvc.softvc.convert to-original exp/softvc/valid.loss.ave.pth model-best.pt
"""
import argparse
from pathlib import Path

import torch

from espnet_softvc.softvc.checkpoint import build_from_state_dict, original_state_dict, save_original, torch_load
from espnet_softvc.softvc.espnet_model import ESPnetSoftVCModel, SoftVC
from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import atomic_path, load_yaml

def is_espnet_state_dict(obj):
    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) and k.startswith("tts.") for k in obj)


def _from_original(state_dict, path):
    acoustic = build_from_state_dict(state_dict, path)
    tts = SoftVC(discrete=acoustic.discrete)
    tts.model = acoustic
    return ESPnetSoftVCModel(tts).eval()


def load_model(model_file, train_config=None, device="cpu"):
    """An ``ESPnetSoftVCModel`` (eval mode) and its training args (None for an original checkpoint).

    ``model_file`` is an ESPnet model file (its ``train_config`` defaults to ``config.yaml`` beside it) or an
    original Soft-VC checkpoint (either format; ``train_config`` must then be None).
    """
    obj = torch_load(model_file)
    if not is_espnet_state_dict(obj):
        if train_config is not None:
            raise UserError(f"{model_file}: an original Soft-VC checkpoint takes no train_config ({train_config})")
        return _from_original(original_state_dict(obj, model_file), model_file).to(device), None
    from espnet_softvc.tasks.softvc import SoftVCTask  # here: importing ESPnet's AbsTask takes seconds

    train_config = Path(train_config) if train_config is not None else Path(model_file).parent / "config.yaml"
    if not train_config.is_file():
        raise UserError(f"{train_config}: training config of {model_file} not found (give train_config)")
    config = load_yaml(train_config)  # plain YAML only: ESPnet's loader would fail with a traceback on Python tags
    if config.get("tts") not in {*SoftVCTask.class_choices_list[0].classes, None}:
        raise UserError(f"{train_config}: not a Soft-VC task config (tts: {config.get('tts')})")
    try:
        model, args = SoftVCTask.build_model_from_file(train_config, None, "cpu")
    except (TypeError, ValueError, KeyError) as e:
        raise UserError(f"{train_config}: cannot build the model ({type(e).__name__}: {e})") from None
    try:
        model.load_state_dict(obj, strict=True)
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[-1].strip()
        raise UserError(f"{model_file}: does not match {train_config} ({reason})") from None
    return model.to(device).eval(), args


def to_original(model_file, out_path, train_config=None):
    """Write the ESPnet model in ``model_file`` as an original v0.1 checkpoint ``out_path``."""
    model, _ = load_model(model_file, train_config)
    save_original(model.tts.model, out_path)


def to_espnet(checkpoint, out_dir):
    """Write an original checkpoint as ``out_dir/config.yaml`` + ``out_dir/model.pth``; returns both paths."""
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    from espnet_softvc.tasks.softvc import SoftVCTask

    model, _ = load_model(checkpoint)
    out_dir = Path(out_dir)
    args = SoftVCTask.get_parser().parse_args(["--output_dir", str(out_dir)])
    args.tts_conf = dict(discrete=model.tts.discrete)
    SoftVCTask.build_model(args)  # completes args as training does
    config, model_file = out_dir / "config.yaml", out_dir / "model.pth"
    with atomic_path(model_file) as tmp:
        torch.save(model.state_dict(), tmp)
    with atomic_path(config) as tmp, open(tmp, "w", encoding="utf-8") as f:
        yaml_no_alias_safe_dump(vars(args), f, indent=4, sort_keys=False)
    return config, model_file


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
        to_original(args.model_file, args.out, args.train_config)
        print(f"wrote {args.out}")
    else:
        config, model_file = to_espnet(args.checkpoint, args.out_dir)
        print(f"wrote {config} and {model_file}")


if __name__ == "__main__":
    main()
