"""Lines that every model card has, whatever the model (DRAW's card in ``draw_studio.commands.card``, the
attention classifier's in ``draw_studio.classifier_card``): the optimiser, the training done so far, where
it started from, the machine of the card and the closing line."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

from . import SOFTWARE
from .config import TrainConfig
from .formatting import duration


def optimiser_line(config: TrainConfig) -> str:
    """``- Optimiser: Adam lr ..., betas ..., clipping ..., batch ..., seed ...``."""
    return (f"- Optimiser: Adam lr {config.lr:g} (schedule {config.lr_schedule}), betas ({config.beta1:g}, "
            f"{config.beta2:g}), gradient-norm clipping {config.grad_clip:g}, batch {config.batch_size}, "
            f"seed {config.seed}")


def trained_lines(step: int, extra: dict) -> list[str]:
    """The steps, epochs and training wall time of a checkpoint (its ``step`` and ``extra``), and each
    ``--init-from`` it descends from."""
    per_epoch = int(extra.get("steps_per_epoch", 0)) or 1
    return [f"- Trained: {step} steps = {step / per_epoch:.1f} epochs, {duration(float(extra.get('wall_time', 0)))} "
            "of training wall time",
            *[f"- Started from `{Path(entry['init_from']).name}` (step {entry['step']}, sha256 "
              f"{entry['sha256'][:12]}...) with a fresh Adam state{_ramp(entry)}"
              for entry in extra.get("lineage", []) if "init_from" in entry]]


def _ramp(entry: dict) -> str:
    """How the learning rate came up after the fresh Adam state of lineage ``entry``."""
    steps = int(entry.get("lr_warmup", 0))
    return f", its learning rate ramped up over {steps:,} steps" if steps else ""


def machine_line(device: torch.device | str) -> str:
    """The machine, PyTorch and device the card's numbers were computed on."""
    return (f"- Machine of this card: {platform.machine()}, {os.cpu_count()} cores, {platform.system()}, "
            f"torch {torch.__version__}, device {device}")


def written_by_line() -> str:
    """``_Written by draw-studio X on DATE._``"""
    return f"_Written by {SOFTWARE} on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}._"
