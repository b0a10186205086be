"""Train a Soft-VC model with ESPnet's Trainer: ``python -m espnet_softvc.bin.softvc_train`` (ESPnet's options).

Example (data from a dump dir, see ``SoftVCTask``)::

    python -m espnet_softvc.bin.softvc_train --config conf/train_softvc_discrete.yaml --output_dir exp/softvc \\
        --train_data_path_and_name_and_type dump/train/units.scp,units,kaldi_ark \\
        --train_data_path_and_name_and_type dump/train/feats.scp,feats,kaldi_ark \\
        --valid_data_path_and_name_and_type dump/dev/units.scp,units,kaldi_ark \\
        --valid_data_path_and_name_and_type dump/dev/feats.scp,feats,kaldi_ark \\
        --train_shape_file exp/stats/train/feats_shape --valid_shape_file exp/stats/valid/feats_shape --resume true
"""
from espnet_softvc.tasks.softvc import SoftVCTask
from espnet_softvc.utils.errors import cli


def get_parser():
    return SoftVCTask.get_parser()


@cli
def main(cmd=None):
    SoftVCTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
