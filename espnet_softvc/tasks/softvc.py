"""SoftVCTask: ESPnet's ``AbsTask`` for Soft-VC models, trained by ESPnet's ``Trainer``.

Data names: ``units`` ((N,) int ids or (N, 256) float, ``kaldi_ark`` or ``npy``), ``feats`` ((T, 128) log-mel,
``kaldi_ark`` or ``npy``) and, for a multi-speaker model (``--tts_conf spks=S``), ``sids`` (a Kaldi ``utt2sid``,
``text_int``: speaker ids 0..S-1, ESPnet's convention). Model classes are chosen with ``--tts`` from ``tts_choices``:
``softvc``, or ``denoiser`` (the standalone denoising postnet; then ``units`` holds the noisy (T, 128) mels). The
parser defaults are the paper's hyper-parameters (AdamW 4e-4, betas 0.8/0.99, eps 1e-8, weight decay 1e-5, batch 32,
no scheduler, no gradient clipping).

Faults and limits: every ``torch.save`` of the Trainer (``checkpoint.pth``, ``N epoch.pth``, averaged models) is
atomic, and ``--resume true`` first repairs what a kill between two writes left (a missing ``N epoch.pth``, stale
links, temporary files), so a run killed at any point resumes. ``--collect_stats`` writes into a staging dir and
moves finished files into place. Utterances longer than ``--max_frames`` mel frames are left out of the batches, each
named in a warning. ``--init_param`` files are read tensor-only first (ESPnet's loader would unpickle anything) and
may be original Soft-VC checkpoints (``safe_init_param``).
"""

import argparse
import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
import yaml
from espnet2.tasks.abs_task import AbsTask
from espnet2.torch_utils.device_funcs import to_device
from espnet2.train.class_choices import ClassChoices
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.train.reporter import Reporter
from espnet2.train.trainer import Trainer
from espnet2.tts.abs_tts import AbsTTS
from espnet2.utils.types import int_or_none
from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

from espnet_softvc.postnet.espnet_model import MelDenoiser
from espnet_softvc.softvc.espnet_model import ESPnetSoftVCModel, SoftVC
from espnet_softvc.softvc.original_format import original_state_dict
from espnet_softvc.utils.errors import UserError
from espnet_softvc.utils.io import atomic_path
from espnet_softvc.utils.kaldi_data import CheckedLoader
from espnet_softvc.utils.shapes import N_MELS, PAD_ID, UNIT_TOKENS
from espnet_softvc.utils.torch_files import load_trainer_checkpoint, torch_load

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
MAX_FRAMES = 2000  # 20 s of mel frames: ESPnet TTS recipes drop utterances over 20 s (tts.sh max_wav_duration)


@contextlib.contextmanager
def atomic_torch_save():
    """Within the block ``torch.save`` to a path writes a temporary file and renames it into place.

    ESPnet's Trainer saves checkpoint.pth and the models in place: a kill mid-write would leave a truncated
    checkpoint that ``--resume`` cannot read."""
    save = torch.save

    def atomic_save(obj, f, *args, **kwargs):
        if not isinstance(f, (str, os.PathLike)):
            return save(obj, f, *args, **kwargs)
        with atomic_path(f) as tmp, open(tmp, "wb") as fd:  # a file object: the temporary name stays out of the zip
            save(obj, fd, *args, **kwargs)

    torch.save = atomic_save
    try:
        yield
    finally:
        torch.save = save


def _link(path, target):
    """Point the symlink ``path`` at ``target`` (a name in the same dir), atomically."""
    tmp = path.with_name(f".{path.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, path)


def repair_output_dir(output_dir, best_model_criterion):
    """Undo what a kill between the Trainer's (atomic) writes of an epoch left: temporary files, no
    ``N epoch.pth`` for the epoch of checkpoint.pth, ``latest.pth`` and ``*.best.pth`` links not yet updated."""
    for tmp in output_dir.glob(".*.tmp"):  # atomic_path's and _link's temporary files
        tmp.unlink()
    states = load_trainer_checkpoint(output_dir)
    reporter = Reporter()
    reporter.load_state_dict(states["reporter"])
    epoch = reporter.get_epoch()
    if epoch == 0:
        return
    if not (output_dir / f"{epoch}epoch.pth").exists():
        logging.warning("%s: %depoch.pth missing (killed while saving), made from checkpoint.pth", output_dir, epoch)
        torch.save(states["model"], output_dir / f"{epoch}epoch.pth")
    _link(output_dir / "latest.pth", f"{epoch}epoch.pth")
    for phase, key, mode in best_model_criterion:
        if reporter.has(phase, key):
            best = reporter.get_best_epoch(phase, key, mode)
            if (output_dir / f"{best}epoch.pth").exists():
                _link(output_dir / f"{phase}.{key}.best.pth", f"{best}epoch.pth")


class SoftVCTrainer(Trainer):
    """ESPnet's Trainer with atomic saves and a repairing resume (module docstring). Its ``--num_att_plot`` hook
    plots mels instead of attention (Soft-VC has none): target, teacher-forced and free-running mels of the
    first dev utterances, to ``<output_dir>/images/mels/`` (and TensorBoard)."""

    @classmethod
    def run(cls, **kwargs):
        """ESPnet's ``Trainer.run`` (called with keywords by ``AbsTask.main_worker``) inside atomic saves."""
        options, distributed = kwargs["trainer_options"], kwargs["distributed_option"]
        output_dir = Path(options.output_dir)
        rank0 = not distributed.distributed or distributed.dist_rank == 0
        with atomic_torch_save():
            if options.resume and rank0 and (output_dir / "checkpoint.pth").exists():
                repair_output_dir(output_dir, options.best_model_criterion)
            super().run(**kwargs)

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


def safe_init_param(init_param, args):
    """ESPnet's ``--init_param`` entry ``path[:src_key:dst_key:excludes]`` once its file loads tensor-only; an
    original Soft-VC checkpoint is first written with this task's keys (``tts.model.*``) into ``--output_dir``.
    A discrete model given to a soft one (or the reverse) is refused."""
    path, *rest = init_param.split(":", 3)
    state = torch_load(path)
    if isinstance(state, dict) and not any(isinstance(k, str) and k.startswith("tts.") for k in state):
        state = {f"tts.model.{k}": v for k, v in original_state_dict(state, path).items()}
        converted = Path(args.output_dir) / f"init_param_{Path(path).stem}.pth"
        converted.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(converted) as tmp:
            torch.save(state, tmp)
        init_param = ":".join([str(converted), *rest])
    if not rest and args.tts == "softvc" and isinstance(state, dict):
        found = "tts.model.encoder.embedding.weight" in state
        if found != bool(args.tts_conf.get("discrete", False)):
            kind, other = ("discrete", "soft") if found else ("soft", "discrete")
            raise UserError(f"{path}: --init_param is a {kind} model, the config trains a {other} one")
    return init_param


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
        group.add_argument(
            "--max_frames",
            type=int_or_none,
            default=MAX_FRAMES,
            help="utterances with more mel frames (shape files) are skipped with a warning; none: keep all",
        )

    @classmethod
    def build_sequence_iter_factory(cls, args, iter_options, mode):
        """ESPnet's batches, without the utterances longer than ``--max_frames`` (before DDP sharding); a bad read
        or NaN/Inf in the data is an error naming the utterance and file (``CheckedLoader``)."""
        factory = cls._kept_utterances(args, iter_options, mode)
        loaders = factory.dataset.loader_dict
        for name, loader in loaders.items():
            loaders[name] = CheckedLoader(loader, factory.dataset.debug_info[name][0])
        return factory

    @classmethod
    def _kept_utterances(cls, args, iter_options, mode):
        if args.max_frames is None or not iter_options.shape_files:
            return super().build_sequence_iter_factory(args, iter_options, mode)
        shapes = [
            dict(line.split(maxsplit=1) for line in Path(f).read_text().splitlines() if line.strip())
            for f in iter_options.shape_files
        ]
        frames = {utt: max(int(s[utt].split(",")[0]) for s in shapes if utt in s) for utt in shapes[0]}
        too_long = {utt: n for utt, n in frames.items() if n > args.max_frames}
        for utt, n in too_long.items():
            logging.warning("[%s] %s skipped: %d frames > --max_frames %d", mode, utt, n, args.max_frames)
        if len(too_long) == len(frames):
            raise UserError(
                f"{iter_options.shape_files[0]}: every utterance is longer than --max_frames {args.max_frames}"
            )
        with tempfile.TemporaryDirectory() as tmp:  # shape files of the kept utterances, read by the batch sampler
            kept = [Path(tmp) / f"{i}_shape" for i in range(len(shapes))]
            for path, shape in zip(kept, shapes):
                path.write_text("".join(f"{utt} {v}\n" for utt, v in shape.items() if utt not in too_long))
            options = dataclasses.replace(iter_options, shape_files=[str(p) for p in kept])
            return super().build_sequence_iter_factory(args, options, mode)

    @classmethod
    def main_worker(cls, args):
        """ESPnet's ``main_worker``; ``--collect_stats`` writes into a staging dir, then moves the finished files
        into ``--output_dir`` (ESPnet writes shape files line by line under their final names)."""
        if not args.collect_stats:
            args.init_param = [safe_init_param(p, args) for p in args.init_param]
            return super().main_worker(args)
        output_dir = Path(args.output_dir)
        staging = output_dir / ".collect_stats.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staged = argparse.Namespace(**{**vars(args), "output_dir": str(staging)})
        super().main_worker(staged)
        config = yaml.safe_load((staging / "config.yaml").read_text())
        (staging / "config.yaml").write_text(
            yaml_no_alias_safe_dump({**config, "output_dir": args.output_dir}, indent=4, sort_keys=False)
        )
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = output_dir / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        shutil.rmtree(staging)

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
        return ("feats", "sids") if inference else ("sids",)  # sids: utt2sid (text_int) of a multi-speaker model

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> ESPnetSoftVCModel:
        tts = tts_choices.get_class(args.tts)(**args.tts_conf)
        # What ESPnet's TTSTask.build_model reads besides tts/tts_conf, saved in config.yaml (written after
        # build_model) so that TTSTask.build_model_from_file rebuilds our models too.
        vars(args).update(token_list=list(UNIT_TOKENS), odim=N_MELS, normalize=None, normalize_conf={}, model_conf={})
        return ESPnetSoftVCModel(tts)
