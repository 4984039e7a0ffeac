"""``draw-studio train``: train a model from a preset, or resume a checkpoint."""

from __future__ import annotations

import argparse
import contextlib
import signal
import warnings

import torch

from .. import distributed
from ..checkpoint import read_checkpoint
from ..classifier import CLASSIFIER_PRESETS
from ..config import (
    CHANGEABLE_ON_RESUME,
    CLUTTER_CHOICES,
    LR_WARMUP_AFTER_FRESH_ADAM,
    PRECISIONS,
    PRESETS,
    TrainConfig,
    get_preset,
    resume_changes,
    train_config_for,
)
from ..cuda_graphs import MODES as GRAPH_MODES
from ..cuda_graphs import graphs_wanted
from ..data import DATASETS
from ..device import resolve_device
from ..errors import DrawStudioError
from ..memory import check_fits, forward_bytes
from ..tensorboard_logs import INSTALL as TENSORBOARD_INSTALL
from ..tensorboard_logs import TensorBoardSink, require_tensorboard
from ..train import Trainer, TrainingControl
from ..training_snapshots import RECONSTRUCTIONS, SAMPLES
from . import train_classifier
from .arguments import adam_beta, batch_size, non_negative_int, positive_float, positive_int, real, seed
from .common import add_data, add_device, add_threads, command_parser, refuse_overwriting_inputs, status

_TRAIN_DEFAULTS = TrainConfig()



def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "train", help="train DRAW (or resume a run)", description=(
        "Train DRAW with Adam on a dataset; checkpoints are written atomically every --checkpoint-every "
        "steps and at the end (also on Ctrl-C). Started by torchrun (e.g. torchrun --nproc-per-node=2 -m "
        "draw_studio train ...), the processes train one run: --batch-size is the global batch, each process "
        "takes its share (on cuda:LOCAL_RANK or the CPU), and process 0 alone writes the files."))
    p.add_argument("--preset", default="mnist-paper", choices=[*PRESETS, *CLASSIFIER_PRESETS], action=_RememberGiven,
                   help="model preset (a resumed run keeps its own: a different one is refused)")
    p.add_argument("--dataset", default=None, choices=list(DATASETS), help="dataset (default: the preset's)")
    add_data(p)
    p.add_argument("--steps", type=positive_int, default=None, help=(
        f"total optimiser steps (default {_TRAIN_DEFAULTS.steps:,}; with --resume or --init-from and neither "
        "--steps nor --epochs: the checkpoint's own, so a resumed run ends where it was meant to)"))
    p.add_argument("--epochs", type=real(0.0, 1e6), default=None,
                   help="train for this many epochs, at most a million (overrides --steps)")
    p.add_argument("--batch-size", type=batch_size, default=_TRAIN_DEFAULTS.batch_size,
                   help="images per optimiser step, over all processes under torchrun (the global batch)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--lr", type=positive_float, default=None,
                   help=f"Adam learning rate ({_TRAIN_DEFAULTS.lr}; some presets set their own)")
    p.add_argument("--beta1", type=adam_beta, default=None,
                   help=f"Adam beta1 in [0, 1) ({_TRAIN_DEFAULTS.beta1}; two-digit-mnist and the classifiers 0.9)")
    p.add_argument("--beta2", type=adam_beta, default=None, help=f"Adam beta2 in [0, 1) ({_TRAIN_DEFAULTS.beta2})")
    p.add_argument("--grad-clip", type=positive_float, default=None,
                   help=f"gradient-norm clipping, above 0 ({_TRAIN_DEFAULTS.grad_clip})")
    p.add_argument("--lr-schedule", default=None, choices=("constant", "cosine", "step"),
                   help="learning-rate schedule (default constant)")
    p.add_argument("--lr-decay", type=real(0.0, 1.0, low_open=True), default=None,
                   help="factor of the step schedule, in (0, 1]")
    p.add_argument("--lr-decay-every", type=positive_int, default=None)
    p.add_argument("--binarization", default=None, choices=("dynamic", "fixed", "none"),
                   help="for a Bernoulli model: dynamic (default) or fixed")
    p.add_argument("--clutter", default=None, choices=CLUTTER_CHOICES, help=(
        "for the attention classifier on a cluttered dataset: fresh (the preset's default: new clutter around the "
        "training digits every epoch) or fixed (the cached training split every epoch); DRAW has no such setting"))
    p.add_argument("--validation-size", type=positive_int, default=_TRAIN_DEFAULTS.validation_size,
                   help="training images held out for validation")
    p.add_argument("--validate-every", type=non_negative_int, default=None,
                   help=f"validation bound every N steps ({_TRAIN_DEFAULTS.validate_every}; 0: never)")
    p.add_argument("--validation-limit", type=positive_int, default=None,
                   help="validation images used for the periodic bound")
    p.add_argument("--checkpoint-every", type=non_negative_int, default=None,
                   help=f"checkpoint every N steps ({_TRAIN_DEFAULTS.checkpoint_every}; 0: only at the end)")
    p.add_argument("--report-every", type=positive_int, default=None,
                   help="print a line every this many steps (50)")
    p.add_argument("--snapshot-every", type=non_negative_int, default=None, help=(
        f"record {SAMPLES} prior samples and {RECONSTRUCTIONS} validation reconstructions in the log every N steps, "
        f"at the start and at the end ({_TRAIN_DEFAULTS.snapshot_every}; 0: never); "
        "draw-studio log-export --snapshots-gif shows them"))
    p.add_argument("--tensorboard", metavar="DIR", default=None,
                   help=f"also write the scalars as TensorBoard event files into DIR (needs {TENSORBOARD_INSTALL})")
    p.add_argument("--plain", action="store_true", help="plain autograd step instead of the fast path (same numbers)")
    p.add_argument("--precision", default=None, choices=PRECISIONS, help=(
        "fp32 (default: the fast path) or bf16 (autograd under bfloat16 autocast, for GPUs with bf16 units; "
        "results differ by bf16 rounding)"))
    p.add_argument("--compile", default="auto", choices=("auto", "on", "off"), help=(
        "torch.compile the fast path's steps (auto: on a CPU from ~batch 32 of mnist-paper; the first step "
        "then takes 15-40 s once, later runs reuse PyTorch's cache; also $DRAW_STUDIO_COMPILE)"))
    p.add_argument("--cuda-graphs", default="auto", choices=GRAPH_MODES, help=(
        "train each step of the fast path as one CUDA graph, checked against the eager step on the first step "
        "(falls back with a warning if it differs or cannot be captured; experimental, unmeasured). on: CUDA with one "
        "process and the fast fp32 path, refused elsewhere; auto: off until measured on a GPU"))
    add_threads(p, why="e.g. 1 for a long run beside other work")
    p.add_argument("--log", default=None, help="training log (HDF5) to write (default: beside --out, X.log.h5)")
    p.add_argument("--no-log", action="store_true", help="write no training log")
    p.add_argument("--out", required=True, help="checkpoint file to write")
    p.add_argument("--resume", default=None, help=(
        "checkpoint to continue from: its data, batch size and seed are kept; optimiser, schedule, "
        "validation and checkpoint options given here replace the saved ones"))
    p.add_argument("--init-from", default=None, help=(
        "checkpoint (e.g. a shipped model without optimiser state) whose weights, step count and settings "
        "start this run with a fresh Adam state; options given here replace its saved ones"))
    p.add_argument("--lr-warmup", type=non_negative_int, default=None, metavar="STEPS", help=(
        f"with --init-from: ramp the learning rate up linearly over this many steps, since a fresh Adam state's "
        f"first steps are as large as the rate itself (default {LR_WARMUP_AFTER_FRESH_ADAM:,}; 0: no ramp)"))
    p.add_argument("--overwrite", action="store_true", help=(
        "start a new run even though --out or its log already exists (they are replaced at the new run's "
        "first checkpoint; until then they stay untouched)"))
    p.add_argument("--allow-data-change", action="store_true", help=(
        "resume on data that differs from what the checkpoint records (dataset, number of training images, "
        "fingerprint of their pixels) instead of refusing"))
    add_device(p)
    p.set_defaults(run=checked_run)


def check_request(args) -> None:
    """What the parser cannot check alone: one starting checkpoint at most, no input is overwritten, and a
    fresh run's batch fits in memory."""
    if args.resume and args.init_from:
        raise DrawStudioError("pass either --resume (continue a run exactly) or --init-from "
                              "(start from a checkpoint's weights with a fresh optimiser), not both")
    refuse_overwriting_inputs({"--log": args.log}, {"--out": args.out, "--resume": args.resume,
                                                    "--init-from": args.init_from})
    refuse_overwriting_inputs({"--out": args.out}, {"--init-from": args.init_from})
    refuse_warmup_without_init_from(args)
    if args.tensorboard:
        require_tensorboard()
    if args.clutter is not None:
        raise DrawStudioError("--clutter sets how the attention classifier's training digits are cluttered; DRAW has "
                              "no such setting: drop it (or train --preset cluttered-classifier)")
    if args.cuda_graphs == "on":  # refused before any data loads
        ranks = distributed.ranks_from_environment()
        graphs_wanted("on", torch.device("cpu") if ranks.active else resolve_device(args.device),
                      processes=ranks.world_size, fast=not args.plain, precision=args.precision or "fp32")
    if not (args.resume or args.init_from):  # a resumed run keeps the batch size it trained with
        check_fits(forward_bytes(get_preset(args.preset).model, args.batch_size, training=True),
                   f"a training batch of {args.batch_size:,} images of {args.preset}", "use a smaller --batch-size",
                   resolve_device(args.device))


def refuse_contradictions(args) -> None:
    """Refuse, for DRAW and the attention classifier alike, options that say nothing or contradict each other:
    ``--epochs 0`` (the configuration's 0 means "not set": it would train ``--steps`` steps without a word) and
    ``--no-log`` with ``--log``.

    Raises
    ------
    DrawStudioError
        One line naming the option and the fix.
    """
    if args.epochs is not None and args.epochs == 0:
        raise DrawStudioError("--epochs must be above 0; leave it out to train --steps steps")
    if args.no_log and args.log:
        raise DrawStudioError(f"--no-log writes no training log, but --log {args.log} names one; pass one of them")


def refuse_warmup_without_init_from(args) -> None:
    """``--lr-warmup`` ramps the rate after a fresh Adam state: only ``--init-from`` starts one mid-run."""
    if args.lr_warmup is not None and not args.init_from:
        raise DrawStudioError("--lr-warmup ramps the learning rate up after --init-from's fresh Adam state; "
                              "a new run and --resume take none: drop --lr-warmup")


def lr_warmup(args) -> int:
    """Steps of the learning-rate ramp after ``--init-from``: ``--lr-warmup`` or the default."""
    return LR_WARMUP_AFTER_FRESH_ADAM if args.lr_warmup is None else args.lr_warmup


def checked_run(args) -> int:
    """:func:`check_request`, then :func:`run` (under torchrun: in the process group, left at the end).

    Under torchrun an error that every process meets alike (an argument, the data, a checkpoint, a divergence) is
    printed once, by process 0 (and by the first process of each other machine, as ``rank R of N: ...``); an error
    joining the group or choosing a device, which may be one process's own, by each process that meets it.
    """
    refuse_contradictions(args)
    if train_classifier.wanted(args):  # the attention classifier: its own loop (commands/train_classifier.py)
        return train_classifier.run(args)
    ranks = distributed.ranks_from_environment()
    joining = False
    try:
        check_request(args)
        check_global_batch(args, ranks)
        joining = True
        ranks, device = distributed.setup(args.device)
        joining = False
        try:
            with one_line_warnings(ranks):
                return run(args, ranks, device)
        finally:
            distributed.teardown()
    except DrawStudioError as exc:
        if not ranks.active or ranks.is_main:
            raise
        if joining or ranks.local_rank == 0:
            raise DrawStudioError(f"rank {ranks.rank} of {ranks.world_size}: {exc}") from exc
        return 2  # process 0 says it


def check_global_batch(args, ranks: distributed.Ranks) -> None:
    """Refuse, before any data loads, a global batch (``--batch-size``, or the checkpoint's when going on from one)
    that does not divide among the processes."""
    if not ranks.active:
        return
    source = args.resume or args.init_from
    batch = TrainConfig.from_dict(read_checkpoint(source).get("train_config") or {}).batch_size if source \
        else args.batch_size
    ranks.check_batch(batch, resumed=bool(source))


@contextlib.contextmanager
def one_line_warnings(ranks: distributed.Ranks):
    """Show DRAW Studio's run-time warnings (a fast path or CUDA graph falling back) as one line each, naming the
    process under torchrun."""
    previous = warnings.showwarning
    prefix = f"rank {ranks.rank} of {ranks.world_size}: " if ranks.active else ""

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, RuntimeWarning):
            return previous(message, category, filename, lineno, file, line)
        status(f"draw-studio train: warning: {prefix}{' '.join(str(message).split())}")

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def run_length(args) -> tuple[int | None, float]:
    """The steps and epochs asked for by ``args`` of a run that goes on from a checkpoint: ``(None, 0.0)``, the
    checkpoint's own length, when neither ``--steps`` nor ``--epochs`` is given."""
    if args.steps is None and args.epochs is None:
        return None, 0.0
    return (_TRAIN_DEFAULTS.steps if args.steps is None else args.steps), args.epochs or 0.0


def run(args, ranks: distributed.Ranks = distributed.ONE_PROCESS, device: torch.device | None = None) -> int:
    """Train as ``args`` say; with several ``ranks`` (torchrun), this process's share on ``device``."""
    preset = get_preset(args.preset)
    changes = resume_changes(**{name: getattr(args, name) for name in CHANGEABLE_ON_RESUME})
    changes["report_every"] = max(changes.get("report_every", 50), 1)
    config = train_config_for(args.preset, dataset=args.dataset, batch_size=args.batch_size, steps=args.steps,
                              epochs=args.epochs, seed=args.seed, validation_size=args.validation_size,
                              binarization=args.binarization, **changes)
    if args.dataset and (args.resume or args.init_from):
        changes["dataset"] = args.dataset  # checked against the checkpoint's (see --allow-data-change)
    options = dict(data_dir=args.data_dir, out=args.out, device=str(device or args.device), ranks=ranks,
                   download=not args.no_download,
                   fast=not args.plain, compile={"auto": None, "on": True, "off": False}[args.compile],
                   cuda_graphs=args.cuda_graphs,
                   log=False if args.no_log else (args.log or True), overwrite=args.overwrite)
    source = args.resume or args.init_from
    if source:
        steps, epochs = run_length(args)
        trainer = Trainer.from_checkpoint(source, steps, epochs=epochs, changes=changes,
                                          fresh_optimizer=not args.resume, allow_data_change=args.allow_data_change,
                                          lr_warmup=lr_warmup(args), **options)
    else:
        trainer = Trainer.from_options(preset.model, config, **options)
    if source and getattr(args, "preset_given", False) and args.preset != trainer.config.preset:
        raise DrawStudioError(f"--preset {args.preset} differs from the preset {trainer.config.preset} of {source}: "
                              f"a run {'resumed' if args.resume else 'started from a checkpoint'} keeps the "
                              "checkpoint's model; drop --preset, or start a new run of that preset")
    control = TrainingControl()
    board = args.tensorboard if ranks.is_main else None  # rank 0 alone writes and prints
    sink = TensorBoardSink(board, trainer.step) if board else contextlib.nullcontext()
    with stop_on_signals(control, quiet=not ranks.is_main), sink:
        for report in trainer.run(control):
            if ranks.is_main:
                _print(report)
            if board:
                sink.handle(report)
    if trainer.stopped:
        if ranks.is_main:
            status(f"stopped at step {trainer.step}; continue with --resume {args.out}")
        return 130
    return 0


def _print(report) -> None:
    line = report.describe()
    if line:
        status(line)


class _RememberGiven(argparse.Action):
    """Store the value and note that the option was given (``args.preset_given``)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


@contextlib.contextmanager
def stop_on_signals(control: TrainingControl, quiet: bool = False):
    """Ctrl-C or SIGTERM asks the loop to stop after the current step (it then writes its checkpoint
    and closes the log); a second signal stops at once. ``quiet``: say nothing (processes other than 0
    under torchrun, which get the same signal)."""
    def handler(signum, frame):
        if control.stop_requested:
            raise KeyboardInterrupt
        if not quiet:
            status("stopping after this step (the checkpoint is being written; press Ctrl-C again to abort)")
        control.stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
