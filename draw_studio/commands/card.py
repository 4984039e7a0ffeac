"""``draw-studio card``: evaluate a checkpoint and write its model card (Markdown)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ..checkpoint import load_model
from ..classifier_card import classifier_card
from ..classifier_checkpoint import CLASSIFIER_KIND, checkpoint_kind
from ..config import TrainConfig
from ..data import load_split, model_inputs
from ..device import resolve_device
from ..errors import DrawStudioError
from ..evaluate import evaluate
from ..files import atomic_write
from ..memory import check_fits, forward_bytes
from ..model_card import machine_line, optimiser_line, trained_lines, written_by_line
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


def described_test_set(dataset: str, binarization: str, seed: int | None) -> str:
    """The card's words for the test images, e.g. "MNIST test set, fixed binarisation seed 150204623"."""
    name = "MNIST" if dataset == "mnist" else f"`{dataset}`"
    seen = {"fixed": f"fixed binarisation seed {seed}", "given": "the data's own binary pixels",
            "none": "grey levels / 255"}[binarization]
    return f"{name} test set, {seen}"


def run(args) -> int:
    refuse_overwriting_inputs({"--out": args.out}, {"checkpoint": args.checkpoint})
    if checkpoint_kind(args.checkpoint) == CLASSIFIER_KIND:
        return run_classifier(args)
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
    commands = args.made_with or [train_command(config, f"{name}.ckpt")]
    lines = [
        f"# Model card: {name}",
        "",
        f"- Preset `{config.preset}`: " + ", ".join(f"{k}={v}" for k, v in model.config.to_dict().items()),
        f"- Data: {config.dataset}, training split = first {int(extra.get('train_images', 0))} training images "
        f"(the last {config.validation_size} are the validation split); {config.binarization} binarisation "
        "while training",
        optimiser_line(config),
        *trained_lines(step, extra),
        machine_line(device),
        "",
        f"## Test results ({described_test_set(config.dataset, binarization, bin_seed)}, nats per image, "
        "lower is better)",
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
        written_by_line(),
        "",
    ]
    atomic_write(args.out, lambda temp: Path(temp).write_text("\n".join(lines)))
    status(f"wrote {args.out}")
    print(f"{name}: bound {full.bound:.2f} nats (n={full.n})" + "".join(
        f", IW bound {w.iw_bound:.2f} (K={w.importance_samples}, n={w.n})" for w in weighted))
    return 0


def run_classifier(args) -> int:
    """``card`` of an attention classifier: its test and validation error and the error after each glimpse."""
    if args.importance_weighted:
        raise DrawStudioError("--importance-weighted asks for bounds of DRAW; a classifier's card gives its error "
                              "rates: drop it")
    card = classifier_card(args.checkpoint, data_dir=args.data_dir, download=not args.no_download, name=args.name,
                           made_with=args.made_with, notes=args.note, device=args.device, progress=status)
    atomic_write(args.out, lambda temp: Path(temp).write_text(card.text))
    status(f"wrote {args.out}")
    name = args.name or Path(args.checkpoint).stem
    print(f"{name}: test error {card.test.error:.2f}% ({card.test.errors} of {card.test.n}), validation error "
          f"{card.valid.error:.2f}% ({card.valid.errors} of {card.valid.n}), step {card.step}")
    return 0
