"""Checkpoints: written atomically, loaded without executing code from the file.

A checkpoint is a ``torch.save`` dictionary of tensors and plain values that
``torch.load(weights_only=True)`` accepts. It carries its own model and
training configuration, so nothing else is needed to load it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

from . import SOFTWARE
from .config import ModelConfig, TrainConfig
from .errors import CheckpointError, DrawStudioError
from .model import DRAW

FORMAT = "draw-studio/checkpoint"
FORMAT_VERSION = 1


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(temp_path)`` then rename the temporary file over ``path``.

    On any failure (including a full disk) the temporary file is removed and
    whatever was at ``path`` before stays untouched.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise DrawStudioError(f"cannot write {path}: folder {directory} does not exist; create it first")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(temp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp made it private; give it the usual permissions
        os.replace(temp, path)
    except OSError as exc:
        raise DrawStudioError(f"could not write {path}: {exc.strerror or exc}; free some space or choose "
                              "another folder (nothing was overwritten)") from None
    finally:
        if os.path.exists(temp):
            os.remove(temp)


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
        "model": {k: v.detach().cpu().to(weights_dtype if weights_dtype and v.is_floating_point() else v.dtype)
                  for k, v in model.state_dict().items()},
        "optimizer": _to_cpu(optimizer.state_dict()) if optimizer is not None else None,
        "step": int(step),
        "extra": extra or {},
    }
    for name, value in state["model"].items():
        if not torch.isfinite(value).all():
            raise DrawStudioError(f"refusing to save a checkpoint with non-finite weights ({name})")
    atomic_write(path, lambda temp: torch.save(state, temp))


def _to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


def read_checkpoint(path: str | Path) -> dict:
    """Read and validate a checkpoint dictionary (tensors on the CPU).

    Raises
    ------
    CheckpointError
        Missing, truncated, corrupt, foreign or newer-version files, each
        with one line saying what is wrong and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path or train one with draw-studio train")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, OSError) as exc:
        text = str(exc).strip()
        first = text.splitlines()[0].split(". ")[0] if text else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt: {first[:100]}); "
                              "use an earlier checkpoint or train again") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a DRAW Studio checkpoint (no '{FORMAT}' marker); "
                              "pass a file written by draw-studio train")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {state.get('format_version')}, this "
                              f"DRAW Studio reads version {FORMAT_VERSION}; upgrade DRAW Studio")
    return state


def model_from_state(state: dict, path: str | Path = "checkpoint") -> DRAW:
    """Build a DRAW model from a checkpoint dictionary and load its weights."""
    try:
        config = ModelConfig.from_dict(state["model_config"])
        model = DRAW(config)
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, RuntimeError, DrawStudioError) as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise CheckpointError(f"{path}: weights do not match the configuration stored with them ({first}); "
                              "the file is damaged or was edited") from None
    return model


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[DRAW, dict]:
    """Load a checkpoint's model (in eval mode, on ``device``) and the raw state."""
    state = read_checkpoint(path)
    model = model_from_state(state, path).to(device)
    model.eval()
    return model, state


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
