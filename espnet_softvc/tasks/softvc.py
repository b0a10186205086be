"""SoftVCTask: ESPnet's ``AbsTask`` for Soft-VC models, trained by ESPnet's ``Trainer``.

Data names: ``units`` ((N,) int ids or (N, 256) float, ``kaldi_ark`` or ``npy``) and ``feats`` ((T, 128) log-mel,
``kaldi_ark`` or ``npy``). Model classes are chosen with ``--tts`` from ``tts_choices``: ``softvc``, or
``denoiser`` (the standalone denoising postnet; then ``units`` holds the noisy (T, 128) mels). The parser defaults
are the paper's hyper-parameters (AdamW 4e-4, betas 0.8/0.99, eps 1e-8, weight decay 1e-5, batch 32, no scheduler,
no gradient clipping).
"""
import argparse
from pathlib import Path

import torch
from espnet2.tasks.abs_task import AbsTask
from espnet2.torch_utils.device_funcs import to_device
from espnet2.train.class_choices import ClassChoices
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.train.trainer import Trainer
from espnet2.tts.abs_tts import AbsTTS

from espnet_softvc.postnet.espnet_model import MelDenoiser
from espnet_softvc.softvc.espnet_model import UNIT_TOKENS, ESPnetSoftVCModel, SoftVC
from espnet_softvc.softvc.model import N_MELS, PAD_ID

tts_choices = ClassChoices(
    "tts", classes=dict(softvc=SoftVC, denoiser=MelDenoiser), type_check=AbsTTS, default="softvc"
)

PAPER_DEFAULTS = dict(
    optim="adamw",
    optim_conf=dict(lr=4e-4, betas=[0.8, 0.99], eps=1e-8, weight_decay=1e-5),
    scheduler=None,
    grad_clip=float("inf"),  # no clipping (ESPnet's default clips at 5; a negative value would flip gradients)
    batch_type="sorted",
    batch_size=32,
)


class SoftVCTrainer(Trainer):
    """ESPnet's Trainer. Its ``--num_att_plot`` hook plots mels instead of attention (Soft-VC has none):
    target, teacher-forced and free-running mels of the first dev utterances, to ``<output_dir>/images/mels/``
    (and TensorBoard)."""

    @classmethod
    @torch.no_grad()
    def plot_attention(cls, model, output_dir, summary_writer, iterator, reporter, options):
        from matplotlib.figure import Figure

        model.eval()
        for ids, batch in iterator:
            mels = model.plot_mels(**to_device(batch, "cuda" if options.ngpu > 0 else "cpu"))
            mels = {name: mel.float().cpu().numpy().T for name, mel in mels.items()}  # (128, T) each
            low, high = min(mel.min() for mel in mels.values()), max(mel.max() for mel in mels.values())
            fig = Figure(figsize=(8, 2.2 * len(mels)), layout="tight")
            for ax, (name, mel) in zip(fig.subplots(len(mels), 1, squeeze=False)[:, 0], mels.items()):
                ax.imshow(mel, origin="lower", aspect="auto", interpolation="none", vmin=low, vmax=high)
                ax.set_title(f"{ids[0]} {name}")
                ax.set_ylabel("mel bin")
            ax.set_xlabel("frame (10 ms)")
            if output_dir is not None:
                path = Path(output_dir).parent / "images" / "mels" / f"{ids[0]}.{reporter.get_epoch()}ep.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                fig.savefig(path)
            if summary_writer is not None:
                summary_writer.add_figure(f"mels_{ids[0]}", fig, reporter.get_epoch())
            reporter.next()


class SoftVCTask(AbsTask):
    num_optimizers = 1
    class_choices_list = [tts_choices]
    trainer = SoftVCTrainer

    @classmethod
    def get_parser(cls):
        parser = super().get_parser()
        parser.set_defaults(**PAPER_DEFAULTS)
        return parser

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="Task related")
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)  # --tts and --tts_conf

    @classmethod
    def build_collate_fn(cls, args, train):
        return CommonCollateFn(float_pad_value=0.0, int_pad_value=PAD_ID)

    @classmethod
    def build_preprocess_fn(cls, args, train):
        return None

    @classmethod
    def required_data_names(cls, train=True, inference=False):
        return ("units",) if inference else ("units", "feats")

    @classmethod
    def optional_data_names(cls, train=True, inference=False):
        return ("feats",) if inference else ()

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> ESPnetSoftVCModel:
        tts = tts_choices.get_class(args.tts)(**args.tts_conf)
        # What ESPnet's TTSTask.build_model reads besides tts/tts_conf, saved in config.yaml (written after
        # build_model) so that TTSTask.build_model_from_file rebuilds our models too.
        vars(args).update(token_list=list(UNIT_TOKENS), odim=N_MELS, normalize=None, normalize_conf={}, model_conf={})
        return ESPnetSoftVCModel(tts)
