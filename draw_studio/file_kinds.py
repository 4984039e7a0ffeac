"""What a DRAW Studio file is (checkpoint, trace or training log), decided from its content, without Qt.

The window and ``draw-studio gui`` both ask :func:`file_kind` before opening anything, so a file that
is none of the three (a text file named ``.h5``, a CSV, a picture, an empty file, a folder, a
truncated HDF5 file) is one clear message, never a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DrawStudioError, first_line
from .files import require_file
from .hdf5_file import read_image
from .trace_file import FORMAT as TRACE_FORMAT
from .training_log import FORMAT as LOG_FORMAT

CHECKPOINT, TRACE, LOG = "checkpoint", "trace", "log"
# a checkpoint is a zip archive (torch.save) or, from old PyTorch versions, a pickle
CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")
HDF5_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True)
class FileInfo:
    """What :func:`inspect_file` found: the kind, and the model configuration an HDF5 file names
    (a dict, empty for a checkpoint: it is read with the model)."""

    kind: str
    model_config: dict = field(default_factory=dict)

    @property
    def classifier(self) -> bool:
        """The file's model is an attention classifier (a classify trace, or a classifier's training log)."""
        return self.model_config.get("kind") == "classifier"

    @property
    def model_steps(self) -> int:
        """T of the file's model (0 when the file does not say)."""
        try:
            return max(int(self.model_config.get("steps", 0)), 0)
        except (TypeError, ValueError):
            return 0


def file_kind(path: str | Path) -> str:
    """``checkpoint``, ``trace`` or ``log``, from the file's content (not its name); see :func:`inspect_file`."""
    return inspect_file(path).kind


def inspect_file(path: str | Path) -> FileInfo:
    """The kind of ``path`` (``checkpoint``, ``trace`` or ``log``), from the file's content (not its name).

    A file that is not HDF5 is taken for a checkpoint only when it starts like one (a zip archive
    or a pickle) or is named like one (``.ckpt``, ``.pt``, ``.pth``); the checkpoint loader then
    says what is wrong with a damaged one.

    Raises
    ------
    DrawStudioError
        The file is missing, a folder, empty, unreadable, neither HDF5 nor a PyTorch file, or
        HDF5 but truncated, damaged, or neither a trace nor a training log.
    """
    import h5py

    path = require_file(path, DrawStudioError, f"{path} is a folder; open a checkpoint, a trace or a training log file",
                        f"{path} does not exist; check the path")
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
        if path.suffix.lower() in HDF5_SUFFIXES:
            raise DrawStudioError(f"{path} is named like a trace or a training log but is not an HDF5 file; "
                                  "open a trace or a training log written by DRAW Studio")
        if not head.startswith(CHECKPOINT_MAGIC) and path.suffix.lower() not in CHECKPOINT_SUFFIXES:
            raise DrawStudioError(f"{path} is neither a checkpoint nor an HDF5 trace or training log; open a "
                                  "file written by DRAW Studio")
        return FileInfo(CHECKPOINT)
    try:
        fmt, config = _root_attributes(path)
    except DrawStudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged HDF5 file can fail in many ways
        first = first_line(exc)
        raise DrawStudioError(f"{path} cannot be opened as HDF5 ({first}); it is damaged or truncated") from None
    fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
    if fmt == TRACE_FORMAT:
        return FileInfo(TRACE, config)
    if fmt == LOG_FORMAT:
        return FileInfo(LOG, config)
    raise DrawStudioError(f"{path} is an HDF5 file but neither a DRAW Studio trace nor a training log "
                          f"(format {fmt!r}); open a checkpoint, a trace or a training log")


def _root_attributes(path: Path) -> tuple[object, dict]:
    """The root ``format`` attribute and the ``model_config`` it names ({} if none or unreadable), after a
    bounded check that the file is whole (h5py can spin for ever on a truncated file); opened without
    locks, so a writer is never blocked."""
    image = read_image(path, "trace or training log", "use an intact copy", snapshot=False)
    with image.open() as f:
        fmt = f.attrs.get("format", "")
        try:
            config = json.loads(f.attrs.get("model_config", "{}"))
        except (TypeError, ValueError):
            config = {}
    return fmt, config if isinstance(config, dict) else {}
