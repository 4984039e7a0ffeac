"""The model card of an attention classifier: what ``draw-studio card`` writes for a classifier checkpoint.

The card gives the classifier's settings, data and training, its error on the whole test and validation
splits of the data it was trained on, the error of the answer read after each glimpse (how many glimpses
it takes to find and name the digit), the paper's figure beside it, and the command lines that reproduce
it. DRAW's card is ``draw_studio.commands.card``; the lines both share are ``draw_studio.model_card``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .classifier_checkpoint import load_classifier
from .classifier_eval import ClassifierEvaluation, classifier_split, evaluate_classifier
from .config import TrainConfig
from .device import resolve_device
from .model_card import machine_line, optimiser_line, trained_lines, written_by_line

# Gregor et al. (2015), Table 1: differentiable attention, 8 glimpses of 12x12, 100x100 cluttered MNIST.
PAPER_TEST_ERROR = 3.36


@dataclass(frozen=True)
class ClassifierCard:
    """A classifier's card and the evaluations it reports.

    Attributes
    ----------
    text : str
        The Markdown of the card.
    test, valid : ClassifierEvaluation
        On the whole test split (with the error after each glimpse) and the whole validation split.
    step : int
        The checkpoint's optimiser step.
    """

    text: str
    test: ClassifierEvaluation
    valid: ClassifierEvaluation
    step: int


def classifier_train_command(config: TrainConfig, out: str, data_dir: str = "../shared/data/mnist") -> str:
    """The ``draw-studio train`` line that trains a classifier of ``config`` from scratch."""
    words = ["draw-studio", "train", "--preset", config.preset, "--dataset", config.dataset, "--data-dir", data_dir,
             *(["--epochs", f"{config.epochs:g}"] if config.epochs > 0 else ["--steps", str(config.steps)]),
             "--clutter", config.clutter, "--batch-size", str(config.batch_size), "--seed", str(config.seed),
             "--lr", f"{config.lr:g}",
             "--beta1", f"{config.beta1:g}", "--grad-clip", f"{config.grad_clip:g}", "--lr-schedule",
             config.lr_schedule, "--out", out]
    return shlex.join(words)


def training_split(config: TrainConfig, extra: dict) -> str:
    """What the training split was: one fixed clutter of the training digits, or a fresh one every epoch."""
    digits = f"the first {int(extra.get('train_images', 0))} MNIST training images"
    if config.clutter == "fresh":
        return f"training split = {digits}, cluttered anew every epoch (--clutter fresh)"
    return f"training split = the clutter of {digits}"


def classifier_card(checkpoint: str | Path, *, data_dir: str | Path | None = None, download: bool = True,
                    name: str | None = None, made_with: Sequence[str] = (), notes: Sequence[str] = (),
                    device: str = "auto", batch_size: int = 500,
                    progress: Callable[[str], None] | None = None) -> ClassifierCard:
    """Evaluate a classifier checkpoint on its data's whole test and validation splits and write its card.

    Parameters
    ----------
    checkpoint : str or Path
        A classifier checkpoint (``draw-studio train --preset cluttered-classifier``).
    data_dir : str or Path, optional
        Where the MNIST files are (the cluttered splits are built from them, or read from the cache).
    name : str, optional
        The model's name (default: the file's stem).
    made_with : sequence of str
        The command lines that made it (default: the train command rebuilt from the checkpoint).
    notes : sequence of str
        Lines of free text for the end of the card.
    progress : callable, optional
        Called with a line before each long part.

    Raises
    ------
    DrawStudioError
        Not a classifier checkpoint, missing data, or a non-finite result, each with one line.
    """
    say = progress or (lambda _line: None)
    device = resolve_device(device)
    model, state = load_classifier(checkpoint, device)
    config = TrainConfig.from_dict(state.get("train_config") or {})
    extra = state.get("extra") or {}
    step = int(state.get("step", 0))
    dataset, test_set = classifier_split(state, None, "test", data_dir, download)
    say(f"classifying {len(test_set)} {dataset} test images...")
    test = evaluate_classifier(model, test_set.images, test_set.labels, batch_size, every_glimpse=True)
    _, valid_set = classifier_split(state, None, "valid", data_dir, download)
    say(f"classifying {len(valid_set)} {dataset} validation images...")
    valid = evaluate_classifier(model, valid_set.images, valid_set.labels, batch_size)
    name = name or Path(checkpoint).stem
    steps = model.config.steps
    lines = [
        f"# Model card: {name}",
        "",
        f"- Attention classifier, preset `{config.preset}`: "
        + ", ".join(f"{k}={v}" for k, v in model.config.to_dict().items() if k != "kind"),
        f"- Data: {dataset} ({test_set.source.split(' from ')[0]}); {training_split(config, extra)} (the last "
        f"{config.validation_size} make the validation split, the MNIST test images the test split)",
        optimiser_line(config),
        *trained_lines(step, extra),
        machine_line(device),
        "",
        f"## Test results ({dataset}, lower is better)",
        "",
        "| measure | images | value |",
        "|---|---|---|",
        f"| test error | {test.n} | **{test.error:.2f}%** ({test.errors} wrong) |",
        f"| test cross-entropy | {test.n} | {test.cross_entropy:.4f} nats per image |",
        f"| validation error | {valid.n} | {valid.error:.2f}% ({valid.errors} wrong) |",
        f"| the paper (Gregor et al. 2015, Table 1: 8 glimpses of 12x12) | | {PAPER_TEST_ERROR:.2f}% |",
        "",
        "## Test error after each glimpse",
        "",
        f"Only the answer after glimpse {steps} is trained; the earlier answers read the same output layer on "
        "the LSTM's state after that glimpse (what the classifier would say if stopped there).",
        "",
        "| glimpse | " + " | ".join(str(t + 1) for t in range(steps)) + " |",
        "|---|" + "---|" * steps,
        "| test error (%) | " + " | ".join(f"{e:.2f}" for e in test.glimpse_error) + " |",
        "",
        "## Reproduce",
        "",
        "```",
        *(made_with or [classifier_train_command(config, f"{name}.ckpt")]),
        f"draw-studio eval {name}.ckpt --data-dir ../shared/data/mnist --split test --json",
        f"draw-studio eval {name}.ckpt --data-dir ../shared/data/mnist --split valid --json",
        "```",
        "",
        *notes,
        "",
        written_by_line(),
        "",
    ]
    return ClassifierCard("\n".join(lines), test, valid, step)
