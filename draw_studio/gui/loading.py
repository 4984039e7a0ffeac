"""What a file is (checkpoint, trace or training log) and loading it, without Qt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import default_checkpoint, load_model
from ..config import TrainConfig, get_preset
from ..errors import DrawStudioError
from ..files import file_sha256
from ..hdf5_file import read_image
from ..model import DRAW
from ..trace_file import FORMAT as TRACE_FORMAT
from ..training_log import FORMAT as LOG_FORMAT

CHECKPOINT, TRACE, LOG = "checkpoint", "trace", "log"
# a checkpoint is a zip archive (torch.save) or, from old PyTorch versions, a pickle
CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")


def file_kind(path: str | Path) -> str:
    """``checkpoint``, ``trace`` or ``log``, from the file's content (not its name).

    Raises
    ------
    DrawStudioError
        The file is missing, a folder, empty, neither HDF5 nor a PyTorch
        file, or HDF5 but neither a trace nor a training log.
    """
    import h5py

    path = Path(path)
    if path.is_dir():
        raise DrawStudioError(f"{path} is a folder; open a checkpoint, a trace or a training log file")
    if not path.is_file():
        raise DrawStudioError(f"{path} does not exist; check the path")
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
        hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise DrawStudioError(f"could not read {path}: {exc.strerror or exc}; check the file and its "
                              "permissions") from None
    if not hdf5:
        if not head:
            raise DrawStudioError(f"{path} is empty; open a checkpoint, a trace or a training log")
        if path.suffix.lower() in (".h5", ".hdf5"):
            raise DrawStudioError(f"{path} is named like a trace or a training log but is not an HDF5 file; "
                                  "open a trace or a training log written by DRAW Studio")
        if not head.startswith(CHECKPOINT_MAGIC) and path.suffix.lower() not in CHECKPOINT_SUFFIXES:
            raise DrawStudioError(f"{path} is neither a checkpoint nor an HDF5 trace or training log; open a "
                                  "file written by DRAW Studio")
        return CHECKPOINT  # the checkpoint loader says what is wrong with a damaged one
    try:
        fmt = _format_attribute(path)
    except DrawStudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged HDF5 file can fail in many ways
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise DrawStudioError(f"{path} cannot be opened as HDF5 ({first}); it is damaged or truncated") from None
    fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
    if fmt == TRACE_FORMAT:
        return TRACE
    if fmt == LOG_FORMAT:
        return LOG
    raise DrawStudioError(f"{path} is an HDF5 file but neither a DRAW Studio trace nor a training log "
                          f"(format {fmt!r}); open a checkpoint, a trace or a training log")


def _format_attribute(path: Path):
    """The root ``format`` attribute, after a bounded check that the file is whole (h5py can spin for
    ever on a truncated file); opened without locks, so a writer is never blocked."""
    image = read_image(path, "trace or training log", "use an intact copy", snapshot=False)
    with image.open() as f:
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


def startup_model() -> LoadedModel:
    """The shipped default model (``checkpoint.default_checkpoint``) if present, else an untrained
    mnist-paper model."""
    shipped = default_checkpoint()
    return load_checkpoint(shipped) if shipped is not None else fresh_model()
