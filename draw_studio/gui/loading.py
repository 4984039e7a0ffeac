"""Loading what the window shows, without Qt: a checkpoint's model, an untrained model, the startup model.

What a file is (checkpoint, trace or training log) is decided in the core (:mod:`draw_studio.file_kinds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import default_checkpoint, load_model
from ..config import TrainConfig, get_preset
from ..file_kinds import CHECKPOINT, LOG, TRACE, file_kind
from ..files import file_sha256
from ..model import DRAW

__all__ = ["CHECKPOINT", "LOG", "TRACE", "LoadedModel", "file_kind", "fresh_model", "load_checkpoint", "startup_model"]


@dataclass
class LoadedModel:
    """A model to show, with where it came from."""

    model: DRAW
    train_config: TrainConfig
    sha256: str
    description: str
    path: str | None = None
    resumable: bool = False  # the file holds the optimiser state: training can continue from it
    steps_per_epoch: int | None = None  # of the run that wrote the file, when it records it


def load_checkpoint(path: str | Path, device: str = "cpu") -> LoadedModel:
    """Load a checkpoint's model for the window."""
    model, state = load_model(path, device)
    config = TrainConfig.from_dict(state.get("train_config") or {})
    per_epoch = (state.get("extra") or {}).get("steps_per_epoch")
    return LoadedModel(model, config, file_sha256(path), f"{Path(path).name} (step {int(state.get('step', 0)):,})",
                       str(path), resumable=state.get("optimizer") is not None, steps_per_epoch=per_epoch)


def fresh_model(preset: str = "mnist-paper", seed: int = 0) -> LoadedModel:
    """An untrained model of ``preset`` (so the panels have something to show at once)."""
    chosen = get_preset(preset)
    torch.manual_seed(seed)
    model = DRAW(chosen.model)
    model.eval()
    config = TrainConfig(preset=preset, dataset=chosen.dataset, **chosen.train_overrides)
    return LoadedModel(model, config, "", f"untrained {preset} model")


def startup_model() -> LoadedModel:
    """The shipped default model (``checkpoint.default_checkpoint``) if present, else an untrained
    mnist-paper model."""
    shipped = default_checkpoint()
    return load_checkpoint(shipped) if shipped is not None else fresh_model()
