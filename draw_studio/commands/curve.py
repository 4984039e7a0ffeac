"""``draw-studio curve``: a run's learning curve (validation bound against epochs) as a PNG."""

from __future__ import annotations

from ..classifier_checkpoint import read_any_checkpoint
from ..plots import MARKS, learning_curve_png
from .arguments import positive_float
from .common import command_parser, refuse_overwriting_inputs, status


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "curve", help="draw a training log's learning curve into a PNG (needs matplotlib)")
    p.add_argument("log", help="training log (X.log.h5)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--checkpoint", default=None, help="the run's checkpoint: its steps per epoch put epochs "
                   "on the x axis")
    p.add_argument("--steps-per-epoch", type=positive_float, default=None,
                   help="optimiser steps per epoch (x in epochs)")
    p.add_argument("--marks", default=None, choices=sorted(MARKS), help="mark the paper's (and public "
                   "reproductions') test figures for this model: MNIST bounds, or the classifier's error")
    p.add_argument("--title", default="")
    p.set_defaults(run=run)


def run(args) -> int:
    refuse_overwriting_inputs({"--out": args.out}, {"log": args.log, "--checkpoint": args.checkpoint})
    per_epoch = args.steps_per_epoch
    if per_epoch is None and args.checkpoint:
        per_epoch = (read_any_checkpoint(args.checkpoint).get("extra") or {}).get("steps_per_epoch") or None
    out = learning_curve_png(args.log, args.out, per_epoch, MARKS.get(args.marks, ()), args.title)
    status(f"wrote {out}")
    return 0
