"""Soft-VC inference shaped like ESPnet's ``Text2Speech``: the ``Unit2Speech`` API and a decoding CLI.

    >>> from espnet_softvc.bin.softvc_inference import Unit2Speech
    >>> unit2speech = Unit2Speech("exp/softvc/config.yaml", "exp/softvc/valid.loss.ave.pth")
    >>> unit2speech = Unit2Speech(model_file="hubert-soft-0321fd7e.pt")  # an original checkpoint works too
    >>> out = unit2speech(units)  # (N,) ids or (N, 256) floats -> {"feat_gen": (2N, 128), "wav": (320 * 2N,)}
    >>> out = unit2speech(units, sids=torch.tensor([2]))  # a multi-speaker model (``spks``): speaker 2's voice

The CLI decodes a units scp (``npy`` or ``kaldi_ark``) into ESPnet's decode layout: ``norm/feats.{ark,scp}``
((2N, 128) log-mels), ``wav/<utt>.wav`` and ``wav/wav.scp``; a multi-speaker model takes the speaker of every
utterance from ``utt2sid,sids,text_int`` data or ``--sid``::

    python -m espnet_softvc.bin.softvc_inference --model_file exp/softvc/valid.loss.ave.pth \\
        --data_path_and_name_and_type dump/eval/units.scp,units,kaldi_ark --output_dir exp/softvc/decode_eval
"""

import argparse
import logging
import time
from pathlib import Path

import torch
from tqdm import tqdm

from espnet_softvc.tasks.load import load_model, load_postnet, pretrained
from espnet_softvc.utils.errors import UserError, cli
from espnet_softvc.utils.io import atomic_path, check_file_name, check_outputs, load_yaml, save_wav
from espnet_softvc.utils.kaldi_data import ark_scp_writer
from espnet_softvc.utils.shapes import SAMPLE_RATE, check_units
from espnet_softvc.vocoders import load_vocoder

PRECISION = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}  # dtype -> the decoder loop's precision


class Unit2Speech:
    """Units to log-mel (and waveform) with a Soft-VC model.

    Args:
        train_config: ``config.yaml`` of the training run (default: beside ``model_file``); None for an
            original checkpoint.
        model_file: ESPnet model file (e.g. ``valid.loss.ave.pth``) or original Soft-VC checkpoint.
        vocoder_file: vocoder checkpoint for ``espnet_softvc.vocoders.load_vocoder``; None: Griffin-Lim.
        device: torch device; dtype: "float32" (exact, default), "bfloat16" or "float16": the encoder runs in it
            and the autoregressive decoder at that precision (``AcousticModel.generate(precision=...)``).
        postnet_config, postnet_file: a standalone denoising postnet (``--tts denoiser``, recipe stage 7) applied
            to ``feat_gen``; the raw output stays in ``feat_gen_before_postnet``.
    """

    def __init__(
        self,
        train_config=None,
        model_file=None,
        vocoder_file=None,
        device="cpu",
        dtype="float32",
        postnet_config=None,
        postnet_file=None,
    ):
        if model_file is None:
            raise UserError("Unit2Speech needs a model_file (ESPnet model file or original Soft-VC checkpoint)")
        if dtype not in PRECISION:
            raise UserError(f"dtype {dtype!r}: choose one of {', '.join(PRECISION)}")
        self.precision = PRECISION[dtype]
        self.model, self.train_args = load_model(model_file, train_config, device)
        self.model.to(dtype=getattr(torch, dtype))
        self.tts = self.model.tts
        self.kind = "discrete" if self.tts.discrete else "soft"
        self.device, self.dtype = device, getattr(torch, dtype)
        self.vocoder = load_vocoder(vocoder_file, device)
        self.postnet = load_postnet(postnet_file, postnet_config).to(device) if postnet_file is not None else None

    @property
    def fs(self):
        return getattr(self.vocoder, "sample_rate", SAMPLE_RATE)

    @torch.no_grad()
    def __call__(self, units, name="units", vocode=True, sids=None):
        """One utterance: units (N,) ids or (N, 256) -> {"feat_gen": (2N, 128)[, "wav": (S,)]}; ``name`` is
        used in error messages; ``sids`` (1,) or an int: the speaker of a multi-speaker model (None: speaker 0)."""
        units = check_units(units, self.kind, name, batched=False)
        units = units.to(self.device, self.dtype if units.is_floating_point() else None)
        try:
            output = self.model.inference(units, precision=self.precision, sids=sids)
        except UserError as e:
            raise UserError(f"{name}: {e}") from None
        if self.postnet is not None:
            output["feat_gen_before_postnet"] = output["feat_gen"]
            output["feat_gen"] = self.postnet(output["feat_gen"][None].float())[0]
        if vocode:
            output["wav"] = self.vocoder(output["feat_gen"].float())
        return output

    @staticmethod
    def from_pretrained(model_tag=None, vocoder_tag=None, cachedir=None, **kwargs):
        """Like ``Text2Speech.from_pretrained``. ``model_tag``: a packed zip (``softvc-pack``), its unpacked
        folder, an espnet_model_zoo tag ("org/name[@revision]") already in its local cache (never downloaded;
        ``cachedir`` overrides the cache folder), or a model file (e.g. ``hubert-soft-0321fd7e.pt``). Archives
        and folders are checked member by member before use (``espnet_softvc.utils.archive``).
        ``vocoder_tag``: a vocoder file. Other keyword arguments go to ``Unit2Speech``."""
        if vocoder_tag is not None:
            kwargs.update(vocoder_file=vocoder_tag)
        if model_tag is None:
            return Unit2Speech(**kwargs)
        with pretrained(model_tag, cachedir) as files:
            return Unit2Speech(**files, **kwargs)


def decode(unit2speech, data_path_and_name_and_type, output_dir, key_file=None, vocode=True, sid=None):
    """Generate every utterance of a units scp (and its ``sids``, if given) into ESPnet's decode layout under
    ``output_dir``; ``sid``: one speaker for every utterance instead."""
    from espnet_softvc.tasks.softvc import SoftVCTask  # here: importing ESPnet's AbsTask takes seconds

    for path in [key_file] if key_file else [path for path, _, _ in data_path_and_name_and_type]:
        if not Path(path).is_file():
            raise UserError(f"{path}: file not found")
    keys_path = Path(key_file or data_path_and_name_and_type[0][0])
    utts = [line.split()[0] for line in keys_path.read_text().splitlines() if line.strip()]
    for utt in utts if vocode else ():
        check_file_name(utt, keys_path)  # it names output_dir/wav/<utt>.wav
    norm, wav_dir = Path(output_dir) / "norm", Path(output_dir) / "wav"
    check_outputs([norm / "feats.ark", norm / "feats.scp", wav_dir / "wav.scp"], [keys_path], norm)
    loader = SoftVCTask.build_streaming_iterator(
        data_path_and_name_and_type,
        dtype="float32",
        batch_size=1,
        key_file=key_file,
        num_workers=0,
        preprocess_fn=None,
        collate_fn=SoftVCTask.build_collate_fn(None, False),
        inference=True,
    )
    with (
        ark_scp_writer(norm / "feats.ark", norm / "feats.scp") as feats_writer,
        atomic_path(wav_dir / "wav.scp") as wav_scp_tmp,
        open(wav_scp_tmp, "w") as wav_scp,
    ):
        for keys, batch in tqdm(loader, total=len(utts), desc="decode"):
            units = batch["units"][0, : batch["units_lengths"][0]]
            start = time.perf_counter()
            output = unit2speech(units, name=keys[0], vocode=False, sids=batch.get("sids", sid))
            frames = output["feat_gen"].size(0)  # ESPnet's decode-log lines, read by scoring/exp_dirs.py (RTF)
            logging.info(f"inference speed = {frames / (time.perf_counter() - start):.1f} frames / sec.")
            logging.info(f"{keys[0]} (size:{units.size(0)}->{frames})")
            feats_writer[keys[0]] = output["feat_gen"].float().cpu().numpy()
            if vocode:
                wav_path = wav_dir / f"{keys[0]}.wav"
                save_wav(wav_path, unit2speech.vocoder(output["feat_gen"].float()).cpu().numpy(), unit2speech.fs)
                wav_scp.write(f"{keys[0]} {wav_path}\n")
    if not vocode:
        (wav_dir / "wav.scp").unlink()
    return len(utts)


def get_parser():
    """ESPnet's ``config_argparse`` parser: ``--config decode.yaml`` gives the defaults (keys = option names), the
    command line overrides them (recipe: ``conf/decode.yaml``)."""
    from espnet2.utils import config_argparse
    from espnet2.utils.types import str2bool, str2triple_str, str_or_none

    parser = config_argparse.ArgumentParser(description="Generate log-mels and waveforms from units with Soft-VC.")
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument(
        "--data_path_and_name_and_type",
        type=str2triple_str,
        required=True,
        action="append",
        help="units scp: PATH,units,TYPE with TYPE kaldi_ark or npy; and PATH,sids,text_int (utt2sid)",
    )
    parser.add_argument("--key_file", type=str_or_none, default=None, help="decode only these utterance ids")
    parser.add_argument("--model_file", type=Path, required=True, help="ESPnet model file or original checkpoint")
    parser.add_argument("--train_config", type=str_or_none, default=None, help="default: config.yaml beside it")
    parser.add_argument("--vocoder_file", type=str_or_none, default=None, help="default: Griffin-Lim")
    parser.add_argument("--sid", type=int, default=None, help="speaker id of a multi-speaker model, every utterance")
    parser.add_argument("--vocode", type=str2bool, default=True, help="also write wav/ (default true)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--log_level", default="INFO")
    return parser


def parse_args(argv=None):
    """Parse ``argv`` with ``get_parser``. The ``--config`` file is read as plain YAML first (a one-line error if it
    is not), and its values go through each option's type and choices like command-line ones (ESPnet's parser sets
    them as defaults unchecked)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    config_file = pre.parse_known_args(argv)[0].config
    config = load_yaml(config_file) if config_file is not None and Path(config_file).is_file() else {}
    parser = get_parser()
    args = parser.parse_args(argv)
    for action in parser._actions:
        if action.dest not in config or getattr(args, action.dest) != config[action.dest]:
            continue  # not in the file, or overridden on the command line
        value = config[action.dest]
        try:
            if action.type is not None and value is not None and not isinstance(value, bool | list):
                value = action.type(str(value))
        except (TypeError, ValueError) as e:
            parser.error(f"{config_file}: {action.dest}: {value!r}: {e}")
        if action.choices is not None and value not in action.choices:
            parser.error(f"{config_file}: {action.dest}: {value!r} is not one of {', '.join(action.choices)}")
        setattr(args, action.dest, value)
    return args


@cli
def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s: %(message)s")
    names = [name for _, name, _ in args.data_path_and_name_and_type]
    if sorted(names) not in (["units"], ["sids", "units"]) or names[0] != "units":
        raise UserError(
            f"--data_path_and_name_and_type: give one units scp (PATH,units,TYPE) and optionally an utt2sid "
            f"(PATH,sids,text_int), got names {names}"
        )
    if "sids" in names and args.sid is not None:
        raise UserError("give the speakers either as sids data or as --sid, not both")
    unit2speech = Unit2Speech(args.train_config, args.model_file, args.vocoder_file, args.device, args.dtype)
    total = decode(unit2speech, args.data_path_and_name_and_type, args.output_dir, args.key_file, args.vocode, args.sid)
    print(f"wrote {total} utterances to {args.output_dir}")


if __name__ == "__main__":
    main()
