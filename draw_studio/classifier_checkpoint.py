"""Checkpoints of the attention classifier: the conventions of ``draw_studio.checkpoint`` plus ``kind``.

A classifier checkpoint is the same kind of file as a DRAW checkpoint (a ``torch.save`` dictionary
with the ``draw-studio/checkpoint`` marker and format version, read with
``torch.load(weights_only=True)``, written atomically) whose ``kind`` is ``"classifier"`` and whose
``model_config`` holds a :class:`~draw_studio.classifier.ClassifierConfig`. A DRAW checkpoint has no
``kind``. :func:`checkpoint_kind` tells the two apart; ``draw_studio.checkpoint.read_checkpoint``
refuses a classifier with one line.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from . import SOFTWARE
from .checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    contents_problem,
    cpu_copy,
    read_checkpoint,
    unreadable_message,
    weights_copy,
    write_checkpoint_state,
)
from .classifier import CLASSIFIER_KIND, AttentionClassifier, ClassifierConfig
from .config import TrainConfig
from .errors import CheckpointError, DrawStudioError, first_line
from .files import require_file

DRAW_KIND = "draw"


def save_classifier_checkpoint(path: str | Path, model: AttentionClassifier, train_config: TrainConfig | None = None,
                               optimizer: torch.optim.Optimizer | None = None, step: int = 0,
                               extra: dict | None = None, weights_dtype: torch.dtype | None = None) -> None:
    """Write a classifier checkpoint atomically (parameters as :func:`draw_studio.checkpoint.save_checkpoint`).

    Raises
    ------
    DrawStudioError
        Non-finite weights (nothing is written), or the file could not be written.
    """
    write_checkpoint_state(path, {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": CLASSIFIER_KIND, "software": SOFTWARE,
        "model_config": model.config.to_dict(),
        "train_config": train_config.to_dict() if train_config is not None else None,
        "model": weights_copy(model, weights_dtype),
        "optimizer": cpu_copy(optimizer.state_dict()) if optimizer is not None else None,
        "step": int(step), "extra": extra or {}})


def _load(path: str | Path) -> dict:
    """The dictionary of a DRAW Studio checkpoint file (any kind), or one line saying why not."""
    path = require_file(path, CheckpointError, f"{path} is a folder, not a checkpoint; pass a .ckpt file",
                        f"checkpoint {path} does not exist; check the path or train one with draw-studio train")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"could not read {path}: {exc.strerror or exc}; check the file and its "
                              "permissions") from None
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file can break the unpickler in any way
        raise CheckpointError(unreadable_message(path, first_line(exc, 100))) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a DRAW Studio checkpoint (no '{FORMAT}' marker); "
                              "pass a file written by draw-studio train")
    if type(state.get("format_version")) is not int or state["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {state.get('format_version')!r}, this "
                              f"DRAW Studio reads version {FORMAT_VERSION}; upgrade DRAW Studio")
    return state


def checkpoint_kind(path: str | Path) -> str:
    """``"classifier"`` or ``"draw"``: what model a checkpoint holds.

    A file that cannot be read as a checkpoint counts as ``"draw"``: the DRAW loader then says what
    is wrong with it.
    """
    try:
        state = _load(path)
    except DrawStudioError:
        return DRAW_KIND
    return CLASSIFIER_KIND if state.get("kind") == CLASSIFIER_KIND else DRAW_KIND


def read_classifier_checkpoint(path: str | Path) -> dict:
    """Read and check a classifier checkpoint (tensors on the CPU).

    Raises
    ------
    CheckpointError
        Missing, unreadable, damaged or foreign files, and DRAW checkpoints, each with one line.
    """
    state = _load(path)
    if state.get("kind") != CLASSIFIER_KIND:
        raise CheckpointError(f"{path} holds a DRAW model, not an attention classifier; pass a classifier "
                              "checkpoint (draw-studio train --preset cluttered-classifier)")
    problem = _structure_problem(state)
    if problem:
        raise CheckpointError(f"{path} is a damaged checkpoint ({problem}); use an earlier checkpoint or train again")
    return state


def read_any_checkpoint(path: str | Path) -> dict:
    """Read and check a checkpoint of either kind: a classifier's, else DRAW's (whose reader says what is wrong
    with a file that is neither)."""
    return read_classifier_checkpoint(path) if checkpoint_kind(path) == CLASSIFIER_KIND else read_checkpoint(path)


def _structure_problem(state: dict) -> str | None:
    """What is wrong with a classifier checkpoint's dictionary, or None."""
    try:
        ClassifierConfig.from_dict(state.get("model_config"))
        if state.get("train_config") is not None:
            if not isinstance(state["train_config"], dict):
                return "train_config is not a dictionary of settings"
            TrainConfig.from_dict(state["train_config"])
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any refusal of the settings is a damaged file
        return first_line(exc, 120)
    return contents_problem(state)


def classifier_from_state(state: dict, path: str | Path = "checkpoint") -> AttentionClassifier:
    """Build the classifier of a checked checkpoint dictionary and load its weights.

    Raises
    ------
    CheckpointError
        The weights do not fit the settings stored with them.
    """
    model = AttentionClassifier(ClassifierConfig.from_dict(state["model_config"]))
    try:
        model.load_state_dict(state["model"])
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - the weights do not fit the settings, whatever the way
        raise CheckpointError(f"{path}: weights do not match the configuration stored with them "
                              f"({first_line(exc)}); the file is damaged or was edited") from None
    return model


def load_classifier(path: str | Path, device: torch.device | str = "cpu") -> tuple[AttentionClassifier, dict]:
    """A classifier checkpoint's model (in eval mode, on ``device``) and its raw state."""
    state = read_classifier_checkpoint(path)
    model = classifier_from_state(state, path).to(device)
    model.eval()
    return model, state
