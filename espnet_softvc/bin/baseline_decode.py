"""softvc-baseline-decode: teacher-forced FastSpeech2 decoding with the given durations, pitch and energy.

``espnet2.bin.tts_inference --use_teacher_forcing true`` cannot do this for a model trained on precomputed feats
(``--odim``): ``Text2Speech`` takes no pitch/energy arguments and the model would run Dio on the mels. Everything
else (free-running decoding, teacher-forced Tacotron2 / Transformer) uses ``tts_inference`` directly. Writes the
same layout as ``tts_inference``: ``out_dir/norm/feats.scp`` and ``out_dir/denorm/feats.scp`` (raw log-mels).

    python -m espnet_softvc.bin.baseline_decode exp/tts_fastspeech2/config.yaml exp/tts_fastspeech2/valid.loss.ave.pth \
        dump/discrete/dev/text dump/dev/feats.scp dump/baselines/dev exp/tts_fastspeech2/decode_dev_tf
"""

import argparse
import logging
from pathlib import Path

import torch

from espnet_softvc.utils.errors import UserError, cli


def decode(train_config, model_file, text, feats_scp, baseline_dir, out_dir, key_file=None):
    """Teacher-forced outputs of every utterance of ``text`` (or of ``key_file``); returns their number."""
    from espnet2.bin.tts_inference import Text2Speech
    from espnet2.fileio.npy_scp import NpyScpWriter
    from espnet2.tasks.tts import TTSTask

    t2s = Text2Speech(train_config, model_file, use_teacher_forcing=True)
    model = t2s.model
    if t2s.train_args.tts != "fastspeech2":
        raise UserError(f"{train_config}: {t2s.train_args.tts} decodes teacher-forced with espnet2.bin.tts_inference")
    model.pitch_extract = model.energy_extract = None  # use the given token-averaged values (normalized below)
    baseline_dir = Path(baseline_dir)
    data = [
        (text, "text", "text"),
        (feats_scp, "speech", "kaldi_ark"),
        (str(baseline_dir / "durations"), "durations", "text_int"),
        (str(baseline_dir / "pitch.scp"), "pitch", "kaldi_ark"),
        (str(baseline_dir / "energy.scp"), "energy", "kaldi_ark"),
    ]
    loader = TTSTask.build_streaming_iterator(
        data,
        dtype="float32",
        batch_size=1,
        key_file=key_file,
        num_workers=0,
        inference=True,
        preprocess_fn=TTSTask.build_preprocess_fn(t2s.train_args, False),
        collate_fn=TTSTask.build_collate_fn(t2s.train_args, False),
    )
    out_dir = Path(out_dir)
    count = 0
    with (
        NpyScpWriter(out_dir / "norm", out_dir / "norm/feats.scp") as norm,
        NpyScpWriter(out_dir / "denorm", out_dir / "denorm/feats.scp") as denorm,
        torch.no_grad(),
    ):
        for keys, batch in loader:
            batch = {k: v[0] for k, v in batch.items() if not k.endswith("_lengths")}
            output = model.inference(**batch, use_teacher_forcing=True)
            norm[keys[0]] = output["feat_gen"].numpy()
            denorm[keys[0]] = output["feat_gen_denorm"].numpy()
            logging.info(f"{keys[0]} (size:{batch['text'].size(0) + 1}->{output['feat_gen'].size(0)})")
            count += 1
    return count


@cli
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("train_config", help="exp/<tag>/config.yaml of a FastSpeech2 baseline")
    parser.add_argument("model_file", help="exp/<tag>/valid.loss.ave.pth")
    parser.add_argument("text", help="discrete units as ESPnet text")
    parser.add_argument("feats_scp", help="ground-truth mels dump/<set>/feats.scp")
    parser.add_argument("baseline_dir", help="softvc-baseline-data output: durations, pitch.scp, energy.scp")
    parser.add_argument("out_dir")
    parser.add_argument("--key_file", help="decode only these utterances (first column)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    n = decode(
        args.train_config, args.model_file, args.text, args.feats_scp, args.baseline_dir, args.out_dir, args.key_file
    )
    print(f"wrote teacher-forced mels of {n} utterances to {args.out_dir}/denorm/feats.scp")


if __name__ == "__main__":
    main()
