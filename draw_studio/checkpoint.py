"""Checkpoints: written atomically, loaded without executing code from the file.

A checkpoint is a ``torch.save`` dictionary of tensors and plain values that
``torch.load(weights_only=True)`` accepts. It carries its own model and
training configuration, so nothing else is needed to load it.
"""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

import torch

from . import SOFTWARE
from .config import ModelConfig, TrainConfig
from .errors import CheckpointError, DrawStudioError, first_line
from .files import HDF5_SIGNATURE, atomic_write, require_file
from .model import DRAW

FORMAT = "draw-studio/checkpoint"
FORMAT_VERSION = 1


def weights_copy(model: torch.nn.Module, weights_dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """``model``'s state dict on the CPU, its floating-point tensors in ``weights_dtype`` (None: as they are)."""
    return {k: v.detach().cpu().to(weights_dtype if weights_dtype and v.is_floating_point() else v.dtype)
            for k, v in model.state_dict().items()}


def save_checkpoint(path: str | Path, model: DRAW, train_config: TrainConfig | None = None,
                    optimizer: torch.optim.Optimizer | None = None, step: int = 0,
                    extra: dict | None = None, weights_dtype: torch.dtype | None = None) -> None:
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : str or Path
    model : DRAW
    train_config : TrainConfig, optional
    optimizer : Optimizer, optional
        Its state is stored so that training resumes exactly; leave it out
        for a small shipped model.
    step : int
        Optimiser steps taken so far.
    extra : dict, optional
        More plain values (wall time, validation bound, RNG state...).
    weights_dtype : torch.dtype, optional
        Store floating-point weights in this type (e.g. float16 for a small
        shipped file); loading casts them back to the model's float32.
    """
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "software": SOFTWARE,
        "model_config": model.config.to_dict(),
        "train_config": train_config.to_dict() if train_config is not None else None,
        "model": weights_copy(model, weights_dtype),
        "optimizer": cpu_copy(optimizer.state_dict()) if optimizer is not None else None,
        "step": int(step),
        "extra": extra or {},
    }
    write_checkpoint_state(path, state)


def write_checkpoint_state(path: str | Path, state: dict) -> None:
    """Write a checkpoint dictionary (any kind) atomically, refusing non-finite weights in ``state["model"]``.

    Raises
    ------
    DrawStudioError
        Non-finite weights (nothing is written), or the file could not be written.
    """
    for name, value in state["model"].items():
        if not torch.isfinite(value).all():
            raise DrawStudioError(f"refusing to save a checkpoint with non-finite weights ({name})")
    # torch.save reports a full disk as a RuntimeError of its C++ stream: serialise in memory, then
    # write the bytes with Python's own I/O, whose failures are OSErrors with their errno
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getbuffer()
    atomic_write(path, lambda temp: Path(temp).write_bytes(data), kind="checkpoint")


def cpu_copy(value):
    """``value`` (a tensor, or dicts / lists / tuples of them, e.g. an optimiser's state) with every tensor on
    the CPU and detached."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: cpu_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(cpu_copy(v) for v in value)
    return value


def read_checkpoint(path: str | Path) -> dict:
    """Read and validate a checkpoint dictionary (tensors on the CPU).

    Every file that cannot be parsed, or whose contents are not what
    :func:`save_checkpoint` writes (types of the settings, weights that are
    tensors and finite, the step count...), is refused.

    Raises
    ------
    CheckpointError
        Missing, unreadable, truncated, corrupt, foreign or newer-version
        files, each with one line saying what is wrong and what to do.
    """
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
        raise CheckpointError(unreadable_message(path, _first_line(exc))) from None
    if not isinstance(state, dict) or not isinstance(state.get("format"), str) or state["format"] != FORMAT:
        raise CheckpointError(f"{path} is not a DRAW Studio checkpoint (no '{FORMAT}' marker); "
                              "pass a file written by draw-studio train")
    version = state.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        shown = version if type(version) is int else type(version).__name__
        raise CheckpointError(f"{path} has checkpoint format version {shown}, this "
                              f"DRAW Studio reads version {FORMAT_VERSION}; upgrade DRAW Studio")
    if state.get("kind", "draw") != "draw":  # the attention classifier's (draw_studio.classifier_checkpoint)
        raise CheckpointError(f"{path} holds an attention classifier, not a DRAW model, and this needs a DRAW model; "
                              "a classifier works with draw-studio train --resume, eval and trace")
    problem = _structure_problem(state)
    if problem:
        raise CheckpointError(f"{path} is a damaged checkpoint ({problem}); use an earlier checkpoint or train again")
    return state


def unreadable_message(path: str | Path, reason: str) -> str:
    """The one line for a file that ``torch.load`` refused: what the file is when it is another DRAW Studio
    file (a trace, a training log) or HDF5, else a truncated or corrupt checkpoint.

    Parameters
    ----------
    path : str or Path
        The file given as a checkpoint.
    reason : str
        Why it could not be loaded (the first line of ``torch.load``'s error).

    Returns
    -------
    str
        The message, naming the problem and the fix.
    """
    from .file_kinds import LOG, TRACE, inspect_file  # only on this failure path: it needs h5py

    try:
        with open(path, "rb") as handle:
            hdf5 = handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    except OSError:
        hdf5 = False
    if not hdf5:
        return (f"{path} is not a readable checkpoint (truncated or corrupt: {reason}); "
                "use an earlier checkpoint or train again")
    try:
        info = inspect_file(path)
    except DrawStudioError:  # HDF5, but neither a trace nor a training log (or a damaged one)
        info = None
    if info is not None and info.kind == LOG:
        whose = "an attention classifier's training log" if info.classifier else "a training log"
        return f"{path} is {whose}, not a checkpoint; pass the run's .ckpt file"
    if info is not None and info.kind == TRACE:
        whose = "an attention classifier's trace" if info.classifier else "a trace"
        return f"{path} is {whose}, not a checkpoint; pass the .ckpt file of the model that recorded it"
    return f"{path} is an HDF5 file, not a checkpoint; pass a .ckpt file written by draw-studio train"


def _first_line(exc: BaseException) -> str:
    """The first sentence of ``exc``'s first line (torch's messages run on)."""
    return first_line(exc).split(". ")[0][:100]


def _setting_problem(config_class, values, what: str) -> str | None:
    """Why ``values`` is not a settings dictionary of ``config_class`` (None if it is)."""
    if not isinstance(values, dict) or not all(isinstance(key, str) for key in values):
        return f"{what} is a {type(values).__name__}, not a dictionary of settings"
    for field in dataclasses.fields(config_class):
        if field.name not in values:
            continue
        value, default = values[field.name], field.default
        if isinstance(default, bool):
            good = isinstance(value, bool)
        elif isinstance(default, int):
            good = type(value) is int
        elif isinstance(default, float):
            good = type(value) in (int, float) and math.isfinite(value)
        else:
            good = isinstance(value, type(default))
        if not good:
            return f"{what} {field.name} = {str(value)[:40]!r} is not a valid {type(default).__name__}"
    try:
        config_class.from_dict(values)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any refusal of the settings is a damaged file
        message = _first_line(exc)
        return message if message.startswith(what) else f"{what}: {message}"
    return None


def _structure_problem(state: dict) -> str | None:
    """What is wrong with a checkpoint dictionary's structure, or None."""
    problem = _setting_problem(ModelConfig, state.get("model_config"), "model setting")
    if problem:
        return problem.replace("model setting is", "model_config is")
    if state.get("train_config") is not None:
        problem = _setting_problem(TrainConfig, state["train_config"], "training setting")
        if problem:
            return problem.replace("training setting is", "train_config is")
    return contents_problem(state)


def contents_problem(state: dict) -> str | None:
    """What is wrong with a checkpoint's weights, optimiser state, step or extra (any model kind), or None."""
    weights = state.get("model")
    if not isinstance(weights, dict) or not weights:
        return "no weights"
    for name, value in weights.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            return f"weight {str(name)[:40]!r} is not a tensor"
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return f"weight {name} holds non-finite values"
    if state.get("optimizer") is not None and not isinstance(state["optimizer"], dict):
        return "the optimiser state is not a dictionary"
    step = state.get("step", 0)
    if type(step) is not int or step < 0:
        return f"step {str(step)[:40]!r} is not a count of steps"
    if not isinstance(state.get("extra", {}), dict):
        return "extra is not a dictionary"
    return None


def model_from_state(state: dict, path: str | Path = "checkpoint") -> DRAW:
    """Build a DRAW model from a checkpoint dictionary and load its weights.

    Raises
    ------
    CheckpointError
        The settings are invalid, or the weights do not fit them.
    """
    try:
        config = ModelConfig.from_dict(state["model_config"])
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any refusal of the settings is a damaged file
        raise CheckpointError(f"{path} holds invalid model settings ({_first_line(exc)}); the file is damaged "
                              "or was edited") from None
    try:
        model = DRAW(config)
        model.load_state_dict(state["model"])
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - the weights do not fit the settings, whatever the way
        first = first_line(exc)
        raise CheckpointError(f"{path}: weights do not match the configuration stored with them ({first}); "
                              "the file is damaged or was edited") from None
    return model


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[DRAW, dict]:
    """Load a checkpoint's model (in eval mode, on ``device``) and the raw state."""
    state = read_checkpoint(path)
    model = model_from_state(state, path).to(device)
    model.eval()
    return model, state


SHIPPED_MODELS = Path(__file__).resolve().parents[1] / "models"
DEFAULT_MODEL = "mnist-attention"


def default_checkpoint() -> Path | None:
    """The shipped ``models/mnist-attention.ckpt`` if it is there, else None."""
    path = SHIPPED_MODELS / f"{DEFAULT_MODEL}.ckpt"
    return path if path.is_file() else None


def checkpoint_or_default(path: str | Path | None) -> Path:
    """``path`` itself, or the shipped default model when ``path`` is None."""
    if path:
        return Path(path)
    shipped = default_checkpoint()
    if shipped is None:
        raise CheckpointError(f"no checkpoint given and no shipped model at {SHIPPED_MODELS / DEFAULT_MODEL}.ckpt; "
                              "pass a checkpoint file (train one with draw-studio train)")
    return shipped
