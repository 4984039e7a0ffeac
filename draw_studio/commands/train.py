"""``draw-studio train``: train a model from a preset, or resume a checkpoint."""

from __future__ import annotations

import contextlib
import dataclasses
import signal

import torch

from ..config import PRECISIONS, PRESETS, TrainConfig, get_preset
from ..train import Trainer, TrainingControl
from .common import add_data, add_device, duration, status

_TRAIN_DEFAULTS = TrainConfig()
CHANGEABLE_ON_RESUME = ("lr", "beta1", "beta2", "grad_clip", "lr_schedule", "lr_decay", "lr_decay_every",
                        "validate_every", "validation_limit", "checkpoint_every", "report_every", "precision")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train DRAW (or resume a run)", description=(
        "Train DRAW with Adam on a dataset; checkpoints are written atomically every --checkpoint-every "
        "steps and at the end (also on Ctrl-C)."))
    p.add_argument("--preset", default="mnist-paper", choices=list(PRESETS), help="model preset")
    p.add_argument("--dataset", default=None, help="dataset (default: the preset's)")
    add_data(p)
    p.add_argument("--steps", type=int, default=_TRAIN_DEFAULTS.steps, help="total optimiser steps")
    p.add_argument("--epochs", type=float, default=0.0, help="train for this many epochs (overrides --steps)")
    p.add_argument("--batch-size", type=int, default=_TRAIN_DEFAULTS.batch_size)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=None, help=f"Adam learning rate ({_TRAIN_DEFAULTS.lr})")
    p.add_argument("--beta1", type=float, default=None, help=f"Adam beta1 ({_TRAIN_DEFAULTS.beta1})")
    p.add_argument("--beta2", type=float, default=None, help=f"Adam beta2 ({_TRAIN_DEFAULTS.beta2})")
    p.add_argument("--grad-clip", type=float, default=None, help=f"gradient-norm clipping ({_TRAIN_DEFAULTS.grad_clip})")
    p.add_argument("--lr-schedule", default=None, choices=("constant", "cosine", "step"),
                   help="learning-rate schedule (default constant)")
    p.add_argument("--lr-decay", type=float, default=None, help="factor of the step schedule")
    p.add_argument("--lr-decay-every", type=int, default=None)
    p.add_argument("--binarization", default=None, choices=("dynamic", "fixed", "none"),
                   help="for a Bernoulli model: dynamic (default) or fixed")
    p.add_argument("--validation-size", type=int, default=_TRAIN_DEFAULTS.validation_size,
                   help="training images held out for validation")
    p.add_argument("--validate-every", type=int, default=None,
                   help=f"validation bound every N steps ({_TRAIN_DEFAULTS.validate_every}; 0: never)")
    p.add_argument("--validation-limit", type=int, default=None,
                   help="validation images used for the periodic bound")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help=f"checkpoint every N steps ({_TRAIN_DEFAULTS.checkpoint_every}; 0: only at the end)")
    p.add_argument("--report-every", type=int, default=None, help="print a line every this many steps (50)")
    p.add_argument("--plain", action="store_true", help="plain autograd step instead of the fast path (same numbers)")
    p.add_argument("--precision", default=None, choices=PRECISIONS, help=(
        "fp32 (default: the fast path) or bf16 (autograd under bfloat16 autocast, for GPUs with bf16 units; "
        "results differ by bf16 rounding)"))
    p.add_argument("--compile", default="auto", choices=("auto", "on", "off"), help=(
        "torch.compile the fast path's steps (auto: on a CPU from ~batch 32 of mnist-paper; the first step "
        "then takes 15-40 s once, later runs reuse PyTorch's cache; also $DRAW_STUDIO_COMPILE)"))
    p.add_argument("--threads", type=int, default=0, help="CPU threads for PyTorch (default: PyTorch's choice)")
    p.add_argument("--log", default=None, help="training log (HDF5) to write (default: beside --out, X.log.h5)")
    p.add_argument("--no-log", action="store_true", help="write no training log")
    p.add_argument("--out", required=True, help="checkpoint file to write")
    p.add_argument("--resume", default=None, help=(
        "checkpoint to continue from: its data, batch size and seed are kept; optimiser, schedule, "
        "validation and checkpoint options given here replace the saved ones"))
    p.add_argument("--init-from", default=None, help=(
        "checkpoint (e.g. a shipped model without optimiser state) whose weights, step count and settings "
        "start this run with a fresh Adam state; options given here replace its saved ones"))
    add_device(p)
    p.set_defaults(run=run)


def run(args) -> int:
    preset = get_preset(args.preset)
    overrides = dict(preset.train_overrides)
    if args.binarization:
        overrides["binarization"] = args.binarization
    changes = {name: getattr(args, name) for name in CHANGEABLE_ON_RESUME if getattr(args, name) is not None}
    changes["report_every"] = max(changes.get("report_every", 50), 1)
    config = dataclasses.replace(
        TrainConfig(), preset=args.preset, dataset=args.dataset or preset.dataset, batch_size=args.batch_size,
        steps=args.steps, epochs=args.epochs, seed=args.seed, validation_size=args.validation_size,
        **overrides, **changes)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    trainer = Trainer(preset.model, config, data_dir=args.data_dir, out=args.out, resume=args.resume,
                      device=args.device, download=not args.no_download, fast=not args.plain,
                      compile={"auto": None, "on": True, "off": False}[args.compile],
                      log=False if args.no_log else (args.log or True),
                      resume_changes=changes, init_from=args.init_from)
    control = TrainingControl()
    with stop_on_signals(control):
        for report in trainer.run(control):
            _print(report)
    if control.stop_requested:
        status(f"stopped at step {trainer.step}; continue with --resume {args.out}")
        return 130
    return 0


def _print(report) -> None:
    if report.kind == "step":
        status(f"step {report.step:>7}/{report.total_steps}  epoch {report.epoch:6.2f}  "
               f"loss {report.loss:8.2f} (L_x {report.nll_x:7.2f} + L_z {report.kl:6.2f})  "
               f"{report.images_per_s:6.0f} img/s  lr {report.lr:.2e}  ETA {duration(report.eta_s)}")
    elif report.kind == "validation":
        status(f"step {report.step:>7}  validation bound {report.bound:.2f} nats")
    elif report.kind == "checkpoint":
        status(f"step {report.step:>7}  checkpoint {report.path}")
    elif report.kind in ("start", "nonfinite", "done") and report.message:
        status(f"step {report.step:>7}  {report.message}")


@contextlib.contextmanager
def stop_on_signals(control: TrainingControl):
    """Ctrl-C or SIGTERM asks the loop to stop after the current step (it then writes its checkpoint
    and closes the log); a second signal stops at once."""
    def handler(signum, frame):
        if control.stop_requested:
            raise KeyboardInterrupt
        status("stopping after this step (the checkpoint is being written; press Ctrl-C again to abort)")
        control.stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
