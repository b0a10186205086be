"""Train a Soft-VC model with ESPnet's Trainer: ``python -m espnet_softvc.bin.softvc_train`` (ESPnet's options).

Example (data from a dump dir, see ``SoftVCTask``)::

    python -m espnet_softvc.bin.softvc_train --config conf/train_softvc_discrete.yaml --output_dir exp/softvc \\
        --train_data_path_and_name_and_type dump/train/units.scp,units,kaldi_ark \\
        --train_data_path_and_name_and_type dump/train/feats.scp,feats,kaldi_ark \\
        --valid_data_path_and_name_and_type dump/dev/units.scp,units,kaldi_ark \\
        --valid_data_path_and_name_and_type dump/dev/feats.scp,feats,kaldi_ark \\
        --train_shape_file exp/stats/train/feats_shape --valid_shape_file exp/stats/valid/feats_shape --resume true

Checked before ESPnet starts (it would take them as they are, and fail later with a traceback): the ``--config``
file (plain YAML only, every key an option of the task, values of the option's type, ``<name>_conf`` keys that the
chosen class takes), the data files (readable, not empty, sorted unique ids, the same ids in every file of a set)
and the output directory (writable).
"""

import argparse
import inspect
import sys
import tempfile
from pathlib import Path

from espnet_softvc.tasks.softvc import SoftVCTask
from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import load_yaml
from espnet_softvc.utils.kaldi_data import read_scp


def get_parser():
    return SoftVCTask.get_parser()


def check_config(cmd=None):
    """Refuse a ``--config`` with Python tags, unknown options, values of the wrong type or unknown class arguments."""
    from espnet2.tasks.abs_task import optim_classes, scheduler_classes
    from espnet2.utils.nested_dict_action import NestedDictAction

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    path = pre.parse_known_args(sys.argv[1:] if cmd is None else list(map(str, cmd)))[0].config
    if path is None:
        return
    config = load_yaml(path)
    actions = {action.dest: action for action in get_parser()._actions}
    for key, value in config.items():
        action = actions.get(key)
        if action is None:
            raise UserError(f"{path}: unknown option {key}")
        if value is None or isinstance(action, NestedDictAction) or action.nargs not in (None, "?"):
            continue
        if isinstance(value, (list, dict)):
            raise UserError(f"{path}: {key} takes one value, got {value!r}")
        try:
            converted = value if action.type is None else action.type(value if isinstance(value, str) else str(value))
        except (TypeError, ValueError, AttributeError):
            converted = None
        if action.type is not None and converted is None or action.choices and converted not in action.choices:
            expected = f"one of {list(action.choices)}" if action.choices else getattr(action.type, "__name__", "")
            raise UserError(f"{path}: {key}: {value!r} is not a valid value ({expected})")
    choices = {c.name: c.classes for c in SoftVCTask.class_choices_list}
    choices.update(optim=dict(optim_classes.items()), scheduler=scheduler_classes)
    for name, classes in choices.items():
        chosen = config.get(name, actions[name].default)
        conf = config.get(f"{name}_conf") or {}
        if chosen is None or chosen.lower() not in classes or not isinstance(conf, dict):
            continue
        parameters = inspect.signature(classes[chosen.lower()]).parameters
        if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            continue
        unknown = sorted(set(conf) - set(parameters))
        if unknown:
            takes = ", ".join(k for k in parameters if k not in ("self", "params"))
            raise UserError(f"{path}: {name}_conf: {chosen} takes no argument {unknown[0]} (it takes {takes})")


def check_data_and_output(cmd=None):
    """Refuse missing, empty or inconsistent data files and an output directory that cannot be written."""
    pre = argparse.ArgumentParser(add_help=False)
    for mode in ("train", "valid"):
        pre.add_argument(f"--{mode}_data_path_and_name_and_type", action="append", default=[])
    pre.add_argument("--output_dir")
    args = pre.parse_known_args(sys.argv[1:] if cmd is None else list(map(str, cmd)))[0]
    for mode in ("train", "valid"):
        first = None
        for path in [triple.split(",")[0] for triple in getattr(args, f"{mode}_data_path_and_name_and_type")]:
            ids = list(read_scp(path, allow_pipes=True))
            if first is None:
                first = path, ids
            elif ids != first[1]:
                odd = sorted(set(ids) ^ set(first[1]))
                raise UserError(f"{path}: utterance ids differ from {first[0]} (e.g. {odd[:3] or 'their order'})")
    if args.output_dir is not None:
        try:
            Path(args.output_dir).mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=args.output_dir).close()
        except OSError as e:
            raise UserError(f"{args.output_dir}: cannot write the output directory ({e.strerror or e})") from None


def train(cmd=None):
    """Check the config, the data files and the output directory, then train with ``SoftVCTask.main(cmd)``."""
    check_config(cmd)
    check_data_and_output(cmd)
    SoftVCTask.main(cmd=cmd)


@cli
def main(cmd=None):
    train(cmd)


if __name__ == "__main__":
    main()
