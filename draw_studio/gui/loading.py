"""What a file is (checkpoint, trace or training log) and loading it, without Qt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import file_sha256, load_model
from ..config import TrainConfig, get_preset
from ..errors import DrawStudioError
from ..model import DRAW

CHECKPOINT, TRACE, LOG = "checkpoint", "trace", "log"
SHIPPED_MODEL = Path("models") / "mnist-attention.ckpt"


def file_kind(path: str | Path) -> str:
    """``checkpoint``, ``trace`` or ``log``, from the file's content (not its name).

    Raises
    ------
    DrawStudioError
        The file is missing, or is HDF5 but neither a trace nor a training log.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DrawStudioError(f"{path} does not exist; check the path")
    if not h5py.is_hdf5(path):
        return CHECKPOINT
    try:
        fmt = _format_attribute(path)
    except OSError as exc:
        raise DrawStudioError(f"{path} cannot be opened as HDF5 ({exc})") from None
    fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
    if fmt == "draw-studio/trace":
        return TRACE
    if fmt == "draw-studio/training-log":
        return LOG
    raise DrawStudioError(f"{path} is an HDF5 file but neither a DRAW Studio trace nor a training log "
                          f"(format {fmt!r}); open a checkpoint, a trace or a training log")


def _format_attribute(path: Path):
    """The root ``format`` attribute; a training log still being written is opened in SWMR mode."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format", "")
    except OSError:
        with h5py.File(path, "r", libver="latest", swmr=True) as f:
            return f.attrs.get("format", "")


@dataclass
class LoadedModel:
    """A model to show, with where it came from."""

    model: DRAW
    train_config: TrainConfig
    sha256: str
    description: str
    path: str | None = None
    resumable: bool = False  # the file holds the optimiser state: training can continue from it


def load_checkpoint(path: str | Path, device: str = "cpu") -> LoadedModel:
    """Load a checkpoint's model for the window."""
    model, state = load_model(path, device)
    config = TrainConfig.from_dict(state.get("train_config") or {})
    return LoadedModel(model, config, file_sha256(path), f"{Path(path).name} (step {int(state.get('step', 0)):,})",
                       str(path), resumable=state.get("optimizer") is not None)


def fresh_model(preset: str = "mnist-paper", seed: int = 0) -> LoadedModel:
    """An untrained model of ``preset`` (so the panels have something to show at once)."""
    chosen = get_preset(preset)
    torch.manual_seed(seed)
    model = DRAW(chosen.model)
    model.eval()
    config = TrainConfig(preset=preset, dataset=chosen.dataset, **chosen.train_overrides)
    return LoadedModel(model, config, "", f"untrained {preset} model")


def startup_model(project_dir: str | Path | None = None) -> LoadedModel:
    """The shipped model ``models/mnist-attention.ckpt`` if present, else an untrained mnist-paper model.

    The model is looked for under ``project_dir`` (default: the working
    folder, then the folder holding the ``draw_studio`` package).
    """
    folders = [Path(project_dir)] if project_dir else [Path.cwd(), Path(__file__).resolve().parents[2]]
    for folder in folders:
        shipped = folder / SHIPPED_MODEL
        if shipped.is_file():
            return load_checkpoint(shipped)
    return fresh_model()
