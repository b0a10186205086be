"""The one place that loads our models, whatever form they come in.

- ``load_model``: an ESPnet model file of ``SoftVCTask`` (+ its ``config.yaml``) or an original Soft-VC checkpoint
  (bshall/acoustic-model, either format) -> ``ESPnetSoftVCModel``; ``load_acoustic``: the same -> ``AcousticModel``;
- ``load_postnet``: a denoising postnet, standalone (``--tts denoiser``) or inside a Soft-VC model, or a research
  checkpoint ``{"config", "model"}`` -> ``DenoisingPostnet`` (or ``FrontEndFusion``, the standalone ``arch: fusion``);
- ``pretrained``: a packed model (zip), its unpacked folder or an espnet_model_zoo tag in the local cache -> the
  keyword arguments (``train_config``, ``model_file``, ...) of the inference classes, every member checked;
- ``save_espnet``: the other way, a model as ``config.yaml`` + ``model.pth`` that ``load_model`` reads back.

Everything loads tensor-only (``torch.load(weights_only=True)``), configs with ``yaml.safe_load``, strictly.
"""

import contextlib
from pathlib import Path

import torch

from espnet_softvc.postnet.fusion import FrontEndFusion
from espnet_softvc.postnet.model import DenoisingPostnet
from espnet_softvc.softvc.espnet_model import ESPnetSoftVCModel, SoftVC
from espnet_softvc.softvc.original_format import build_from_state_dict, original_state_dict
from espnet_softvc.utils.archive import is_packed, model_zoo_cache, unpacked
from espnet_softvc.utils.device import check_device
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import atomic_path, load_yaml
from espnet_softvc.utils.torch_files import torch_load


def is_espnet_state_dict(obj):
    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) and k.startswith("tts.") for k in obj)


def _from_original(state_dict, path):
    acoustic = build_from_state_dict(state_dict, path)
    tts = SoftVC(discrete=acoustic.discrete, **acoustic.sizes)
    tts.model = acoustic
    return ESPnetSoftVCModel(tts).eval()


def load_model(model_file, train_config=None, device="cpu"):
    """An ``ESPnetSoftVCModel`` (eval mode) and its training args (None for an original checkpoint).

    ``model_file`` is an ESPnet model file (its ``train_config`` defaults to ``config.yaml`` beside it) or an
    original Soft-VC checkpoint (either format; ``train_config`` must then be None).
    """
    check_device(device)
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


def load_acoustic(model_file, kind=None, device="cpu", train_config=None):
    """The ``AcousticModel`` (eval mode) of an original checkpoint or an ESPnet model file (``load_model``);
    ``kind`` ("soft" / "discrete", if given) must match."""
    acoustic = load_model(model_file, train_config, device)[0].tts.model
    found = "discrete" if acoustic.discrete else "soft"
    if kind is not None and kind != found:
        raise UserError(f"{model_file}: this is a {found} acoustic model, not {kind}")
    return acoustic


def load_postnet(model_file, train_config=None):
    """The ``DenoisingPostnet`` or ``FrontEndFusion`` (eval mode) of an ESPnet model file + config (``train_config``
    defaults to ``config.yaml`` beside it, as in ``load_model``), or of a research checkpoint (``FrontEndFusion`` if
    its config names ``front_ends``)."""
    state = torch_load(model_file) if train_config is None else None
    if train_config is not None or is_espnet_state_dict(state):
        model, _ = load_model(model_file, train_config)
        postnet = getattr(model.tts, "postnet", None)
        if not isinstance(postnet, (DenoisingPostnet, FrontEndFusion)):
            raise UserError(f"{model_file}: this model has no denoising postnet")
        return postnet.eval()
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise UserError(f"{model_file}: not a denoising-postnet checkpoint nor an ESPnet model file")
    config = state["config"]
    if not isinstance(config, dict) or not isinstance(state["model"], dict):
        raise UserError(f"{model_file}: a postnet checkpoint's config and model must be mappings")
    try:
        model = (FrontEndFusion if "front_ends" in config else DenoisingPostnet)(**config)
        model.load_state_dict(state["model"])
    except (TypeError, ValueError, KeyError, RuntimeError) as e:
        reason = str(e).strip().splitlines()[-1].strip() if str(e).strip() else type(e).__name__
        raise UserError(f"{model_file}: not a valid postnet checkpoint ({reason})") from None
    return model.eval()


@contextlib.contextmanager
def pretrained(model_tag, cachedir=None):
    """``{"train_config": ..., "model_file": ..., ...}`` of ``model_tag``, valid inside the ``with`` block.

    ``model_tag``: a packed zip (``softvc-pack``), its unpacked folder, an espnet_model_zoo tag ("org/name[@rev]")
    already in the local cache (never downloaded; ``cachedir`` overrides the cache folder), or a model file.
    """
    if Path(model_tag).is_file() and not is_packed(model_tag):
        yield {"model_file": str(model_tag)}
        return
    source, root = (model_tag, None) if Path(model_tag).exists() else model_zoo_cache(str(model_tag), cachedir)
    with unpacked(source, root) as files:
        try:
            yield files
        except UserError as e:  # name the packed model, not the temporary folder that is gone with the block
            message = str(e)
            for key, path in files.items():
                message = message.replace(str(path), f"{model_tag} ({key})")
            raise UserError(message) from None


def save_espnet(model, out_dir):
    """Write ``model`` (an ``ESPnetSoftVCModel``) as ``out_dir/config.yaml`` + ``out_dir/model.pth``; returns both."""
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    from espnet_softvc.tasks.softvc import SoftVCTask

    out_dir = Path(out_dir)
    args = SoftVCTask.get_parser().parse_args(["--output_dir", str(out_dir)])
    args.tts_conf = dict(discrete=model.tts.discrete, **model.tts.model.sizes)
    if model.tts.model.spks:
        args.tts_conf["spks"] = model.tts.model.spks
    SoftVCTask.build_model(args)  # completes args as training does
    config, model_file = out_dir / "config.yaml", out_dir / "model.pth"
    with atomic_path(model_file) as tmp:
        torch.save(model.state_dict(), tmp)
    with atomic_path(config) as tmp, open(tmp, "w", encoding="utf-8") as f:
        yaml_no_alias_safe_dump(vars(args), f, indent=4, sort_keys=False)
    return config, model_file
