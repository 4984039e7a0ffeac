"""``draw-studio card``: evaluate a checkpoint and write its model card (Markdown)."""

from __future__ import annotations

import argparse
import os
import platform
import shlex
from datetime import datetime, timezone
from pathlib import Path

import torch

from .. import SOFTWARE
from ..checkpoint import load_model
from ..config import TrainConfig
from ..data import load_split, model_inputs
from ..device import resolve_device
from ..evaluate import evaluate
from ..files import atomic_write
from ..formatting import duration
from ..memory import check_fits, forward_bytes
from .arguments import MAX_INT
from .common import add_data, add_device, add_threads, command_parser, refuse_overwriting_inputs, status


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "card", help="evaluate a checkpoint and write its model card (Markdown)")
    p.add_argument("checkpoint")
    add_data(p)
    p.add_argument("--out", required=True, help="Markdown file to write")
    p.add_argument("--name", default=None, help="model name (default: the file's stem)")
    p.add_argument("--importance-weighted", action="append", type=_iw_spec, default=None, metavar="K:N",
                   help="an importance-weighted bound with K samples on the first N test images "
                        "(repeat for several; default 50:1000)")
    p.add_argument("--made-with", action="append", default=[], help="a command line that made this model "
                   "(repeat for each; default: the train command rebuilt from the checkpoint)")
    p.add_argument("--note", action="append", default=[], help="a line of free text for the card")
    add_threads(p, why="e.g. 1 for a card computed beside a training run")
    add_device(p)
    p.set_defaults(run=run)


def _iw_spec(text: str) -> tuple[int, int]:
    """``"K:N"`` -> (K, N) with K >= 2 and N >= 1."""
    try:
        k, n = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K:N (samples:images), e.g. 50:1000, not {text!r}") from None
    if k < 2 or n < 1 or k > MAX_INT or n > MAX_INT:
        raise argparse.ArgumentTypeError(f"K must be at least 2 and N at least 1, not {text!r}")
    return k, n


def train_command(config: TrainConfig, out: str) -> str:
    """The ``draw-studio train`` line that reproduces ``config`` (from scratch)."""
    words = ["draw-studio", "train", "--preset", config.preset, "--dataset", config.dataset,
             "--data-dir", "../shared/data/mnist",
             *(["--epochs", f"{config.epochs:g}"] if config.epochs > 0 else ["--steps", str(config.steps)]),
             "--batch-size", str(config.batch_size), "--seed", str(config.seed), "--lr", f"{config.lr:g}", "--beta1",
             f"{config.beta1:g}", "--grad-clip", f"{config.grad_clip:g}", "--lr-schedule", config.lr_schedule,
             "--binarization", config.binarization, "--out", out]
    return shlex.join(words)


def run(args) -> int:
    refuse_overwriting_inputs({"--out": args.out}, {"checkpoint": args.checkpoint})
    device = resolve_device(args.device)
    model, state = load_model(args.checkpoint, device)
    for k, _ in args.importance_weighted or [(50, 1000)]:
        images = max(1, 500 // k) * k  # what evaluate() runs at once for batch 500
        check_fits(forward_bytes(model.config, images), f"the importance-weighted bound with K={k}",
                   "use a smaller K", device)
    config = TrainConfig.from_dict(state.get("train_config") or {})
    extra = state.get("extra") or {}
    test = load_split(config.dataset, "test", args.data_dir, config.validation_size, not args.no_download)
    pixels, binarization, bin_seed = model_inputs(test, model.config.likelihood)
    status(f"evaluating {len(pixels)} test images...")
    full = evaluate(model, pixels, batch_size=500, binarization=binarization, binarization_seed=bin_seed)
    full.require_finite(args.checkpoint)
    weighted = []
    for k, limit in args.importance_weighted or [(50, 1000)]:
        status(f"importance-weighted bound on {min(limit, len(pixels))} images, K={k}...")
        weighted.append(evaluate(model, pixels[:limit], batch_size=500, importance_samples=k,
                                 binarization=binarization, binarization_seed=bin_seed))
        weighted[-1].require_finite(args.checkpoint)
    name = args.name or Path(args.checkpoint).stem
    step = int(state.get("step", 0))
    per_epoch = int(extra.get("steps_per_epoch", 0)) or 1
    commands = args.made_with or [train_command(config, f"{name}.ckpt")]
    lines = [
        f"# Model card: {name}",
        "",
        f"- Preset `{config.preset}`: " + ", ".join(f"{k}={v}" for k, v in model.config.to_dict().items()),
        f"- Data: {config.dataset}, training split = first {int(extra.get('train_images', 0))} training images "
        f"(the last {config.validation_size} are the validation split); {config.binarization} binarisation "
        "while training",
        f"- Optimiser: Adam lr {config.lr:g} (schedule {config.lr_schedule}), betas ({config.beta1:g}, "
        f"{config.beta2:g}), gradient-norm clipping {config.grad_clip:g}, batch {config.batch_size}, "
        f"seed {config.seed}",
        f"- Trained: {step} steps = {step / per_epoch:.1f} epochs, {duration(float(extra.get('wall_time', 0)))} "
        "of training wall time",
        *[f"- Started from `{Path(entry['init_from']).name}` (step {entry['step']}, sha256 "
          f"{entry['sha256'][:12]}...) with a fresh Adam state" for entry in extra.get("lineage", [])],
        f"- Machine of this card: {platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
        f"torch {torch.__version__}, device {device}",
        "",
        "## Test results (MNIST test set, fixed binarisation "
        f"seed {bin_seed}, nats per image, lower is better)",
        "",
        "| measure | images | value |",
        "|---|---|---|",
        f"| variational bound L = L_x + L_z | {full.n} | **{full.bound:.2f}** |",
        f"| reconstruction L_x | {full.n} | {full.nll_x:.2f} |",
        f"| KL L_z | {full.n} | {full.kl:.2f} |",
        *[f"| importance-weighted bound, K={w.importance_samples} | {w.n} | **{w.iw_bound:.2f}** "
          f"(bound on the same images: {w.bound:.2f}) |" for w in weighted],
        "",
        "## Reproduce",
        "",
        "```",
        *commands,
        f"draw-studio eval {name}.ckpt --data-dir ../shared/data/mnist --split test --json",
        *[f"draw-studio eval {name}.ckpt --data-dir ../shared/data/mnist --split test --limit {w.n} "
          f"--importance-samples {w.importance_samples} --json" for w in weighted],
        "```",
        "",
        *[f"{note}" for note in args.note],
        "",
        f"_Written by {SOFTWARE} on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}._",
        "",
    ]
    atomic_write(args.out, lambda temp: Path(temp).write_text("\n".join(lines)))
    status(f"wrote {args.out}")
    print(f"{name}: bound {full.bound:.2f} nats (n={full.n})" + "".join(
        f", IW bound {w.iw_bound:.2f} (K={w.importance_samples}, n={w.n})" for w in weighted))
    return 0
