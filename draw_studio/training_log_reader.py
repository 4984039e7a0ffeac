"""Reading a training log (``draw_studio.training_log``), also while a run is still writing it.

The reader works on an in-memory image of the file (``draw_studio.hdf5_file.read_image``), so it
never locks the file and never stops a writer; a long column is read a slice at a time, so a reader
thread leaves the window thread room to run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .errors import FileFormatError, TrainingLogError, first_line
from .hdf5_file import read_image
from .training_log import FORMAT, FORMAT_VERSION, GROUPS, OPTIONAL, RUN_SIZES, TRUNCATED_FIX, TrainingLog

SNAPSHOT_TRIES = 3
READ_SLICE_ROWS = 8_192  # a reader thread lets the window thread run between slices (see _read_in_slices)


def read_training_log(path: str | Path) -> TrainingLog:
    """Read a training log, also while a run is still writing it.

    The checks are bounded in time (no hang on a truncated or damaged
    file), and the file is never locked, so a reader never stops a writer.

    Raises
    ------
    TrainingLogError
        Missing file, not HDF5, truncated or damaged, not a training log,
        or another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise TrainingLogError(f"training log {path} does not exist; check the path")
    for attempt in range(SNAPSHOT_TRIES):
        image = read_image(path, "training log", TRUNCATED_FIX, error=TrainingLogError)
        try:
            return _read(path, image)
        except FileFormatError:
            if not image.written or attempt == SNAPSHOT_TRIES - 1:
                raise
            time.sleep(0.1)  # an older version's SWMR writer may have been caught in the middle of a flush
    raise AssertionError("unreachable")


def _read(path: Path, image) -> TrainingLog:
    try:
        f = image.open()
    except (OSError, RuntimeError, ValueError) as exc:
        raise TrainingLogError(f"{path} cannot be opened as a training log ({first_line(exc)}); "
                               f"{TRUNCATED_FIX}") from None
    try:
        with f:
            fmt = f.attrs.get("format", "")
            fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
            if fmt != FORMAT:
                raise TrainingLogError(f"{path} is an HDF5 file but not a DRAW Studio training log (format "
                                       f"{fmt!r}, expected {FORMAT!r}); pass the log written by draw-studio train")
            version = f.attrs.get("format_version")
            if version is None or int(version) != FORMAT_VERSION:
                raise TrainingLogError(f"{path} is training log format version {version}, this DRAW Studio "
                                       f"reads version {FORMAT_VERSION}; use a matching DRAW Studio")
            history = _whole_rows(f, "history")
            evals = _whole_rows(f, "eval")
            configs = [json.loads(f.attrs.get(key, "{}")) for key in ("model_config", "train_config")]
            started, software = str(f.attrs.get("started", "")), str(f.attrs.get("software", ""))
            run_id = f.attrs.get("run_id", "")
            run_id = run_id.decode() if isinstance(run_id, bytes) else str(run_id)
            sizes = {key: int(f.attrs.get(key, 0)) for key in RUN_SIZES}
    except (KeyError, ValueError, OSError, TypeError, RuntimeError) as exc:
        raise TrainingLogError(f"{path} is a damaged training log ({first_line(exc)}); "
                               f"{TRUNCATED_FIX}") from None
    if not all(isinstance(config, dict) for config in configs):
        raise TrainingLogError(f"{path} is a damaged training log (its configurations are not JSON objects); "
                               f"{TRUNCATED_FIX}")
    _check_order(path, history[0], evals[0])
    return TrainingLog(*history[:5], eval_step=evals[0], eval_bound=evals[1], model_config=configs[0],
                       train_config=configs[1], started=started, software=software, run_id=run_id, lr=history[5],
                       **sizes)


def _whole_rows(f, group: str) -> list[np.ndarray]:
    """The columns of ``group`` cut to the rows that every column already holds in full.

    An optional column (:data:`OPTIONAL`) the file lacks is read as its fill value.
    """
    columns = []
    for name, _, _ in GROUPS[group]:
        if name in OPTIONAL and f"{group}/{name}" not in f:
            columns.append(None)
            continue
        dset = f[f"{group}/{name}"]
        if dset.ndim != 1:
            raise ValueError(f"{group}/{name} is not one-dimensional")
        columns.append(_read_in_slices(dset))
    count = min(len(column) for column in columns if column is not None)
    columns = [np.full(count, fill, dtype) if column is None else column[:count]
               for column, (_, dtype, fill) in zip(columns, GROUPS[group])]
    checked = [column for column, (name, _, _) in zip(columns, GROUPS[group]) if name not in OPTIONAL]
    missing = checked[0] == -1
    for column in checked[1:]:
        missing |= np.isnan(column)
    if missing.any():
        count = int(np.argmax(missing))
    return [column[:count] for column in columns]


def _read_in_slices(dset, rows: int = READ_SLICE_ROWS) -> np.ndarray:
    """A 1-D dataset read a slice at a time: h5py holds the GIL for a whole read, so a reader thread
    that reads a long column in one go stalls the window's thread for as long."""
    out = np.empty(dset.shape, dset.dtype)
    for start in range(0, len(out), rows):
        out[start:start + rows] = dset[start:start + rows]
    return out


def _check_order(path: Path, steps: np.ndarray, eval_steps: np.ndarray) -> None:
    """Steps grow from row to row; anything else is damage (e.g. zeros read from a lost part)."""
    bad = np.flatnonzero(np.diff(steps) <= 0)
    if len(steps) and (steps[0] < 0 or len(bad)):
        row = 0 if steps[0] < 0 else int(bad[0]) + 1
        raise TrainingLogError(f"{path} is a damaged training log: row {row} has step {int(steps[row])} after "
                               f"step {int(steps[row - 1]) if row else 'none'}; {TRUNCATED_FIX}")
    if len(eval_steps) and (eval_steps[0] < 0 or (np.diff(eval_steps) < 0).any()):
        raise TrainingLogError(f"{path} is a damaged training log: its evaluation steps are out of order; "
                               f"{TRUNCATED_FIX}")
