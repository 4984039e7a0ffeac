"""The training log: the curves of a run in an HDF5 file that grows while training goes on.

Layout (version 1): ``shared/spec/trace-format.md`` and ``docs/file-formats.md``.
The writer uses HDF5's single-writer / multiple-reader mode (SWMR), so the
window or another process can read the curves while the run appends to them;
a reader sees whole rows only.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import SOFTWARE
from .checkpoint import atomic_write
from .errors import DrawStudioError, TraceFormatError

FORMAT = "draw-studio/training-log"
FORMAT_VERSION = 1
CHUNK_ROWS = 1024
HISTORY = (("step", np.int64, -1), ("wall_time", np.float64, np.nan), ("loss", np.float32, np.nan),
           ("nll_x", np.float32, np.nan), ("kl", np.float32, np.nan))  # (name, dtype, fill value)
EVAL = (("step", np.int64, -1), ("bound", np.float32, np.nan))
GROUPS = {"history": HISTORY, "eval": EVAL}


def _config_json(config) -> str:
    """JSON text of a config dataclass, a dict or None."""
    if config is None:
        return "{}"
    if isinstance(config, str):
        return config
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    return json.dumps(config, sort_keys=True)


@dataclass
class TrainingLog:
    """The curves of one run, as read from a training log.

    Attributes
    ----------
    step, wall_time, loss, nll_x, kl : ndarray, shape (N,)
        One row per optimiser step: int64 step, seconds since the start,
        and the training bound and its terms in nats per image.
    eval_step : ndarray, shape (M,), int64
    eval_bound : ndarray, shape (M,), float32
        Held-out bound (nats per image) at those steps.
    model_config, train_config : dict
    started, software : str
    """

    step: np.ndarray
    wall_time: np.ndarray
    loss: np.ndarray
    nll_x: np.ndarray
    kl: np.ndarray
    eval_step: np.ndarray
    eval_bound: np.ndarray
    model_config: dict
    train_config: dict
    started: str
    software: str


class TrainingLogWriter:
    """Creates (or continues) a training log and appends rows to it.

    Parameters
    ----------
    path : str or Path
    model_config, train_config : dataclass or dict
        Stored as JSON in the root attributes.
    resume_step : int, optional
        Continue an existing log at ``path``: rows of steps after
        ``resume_step`` (written after the checkpoint being resumed) are
        dropped. Without it, or if there is no file yet, a new log replaces
        whatever was at ``path``.

    Notes
    -----
    Each ``append_*`` call flushes, so a reader opening the file with
    :func:`read_training_log` sees those rows at once. Use as a context
    manager or call :meth:`close`.
    """

    def __init__(self, path: str | Path, model_config, train_config, resume_step: int | None = None) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise DrawStudioError(f"cannot write training log {self.path}: folder {self.path.parent} does not "
                                  "exist; create it first")
        attrs = {"model_config": _config_json(model_config), "train_config": _config_json(train_config),
                 "started": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        rows = None
        if resume_step is not None and self.path.exists():
            old = read_training_log(self.path)
            keep = old.step <= resume_step
            keep_eval = old.eval_step <= resume_step
            rows = {"history": [old.step[keep], old.wall_time[keep], old.loss[keep], old.nll_x[keep], old.kl[keep]],
                    "eval": [old.eval_step[keep_eval], old.eval_bound[keep_eval]]}
            attrs["started"] = old.started
        # A fresh file is built under a temporary name and renamed, then opened for SWMR writing: this also
        # clears the "open for writing" mark that a crashed writer leaves in an HDF5 file.
        def build(temp: str) -> None:
            with h5py.File(temp, "w", libver="latest") as f:
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                for key, value in attrs.items():
                    f.attrs[key] = value
                f.attrs["software"] = SOFTWARE
                for group, columns in GROUPS.items():
                    for index, (name, dtype, fill) in enumerate(columns):
                        data = rows[group][index] if rows else np.zeros(0, dtype)
                        f.create_dataset(f"{group}/{name}", data=np.asarray(data, dtype), maxshape=(None,),
                                         chunks=(CHUNK_ROWS,), fillvalue=fill)

        atomic_write(self.path, build)
        self._file = h5py.File(self.path, "a", libver="latest")
        self._file.swmr_mode = True

    def _append(self, group: str, columns: list[np.ndarray]) -> None:
        count = len(columns[0])
        if count == 0:
            return
        # Values first, step last: a reader treats a row whose step is still the fill value as not yet written.
        order = list(range(1, len(columns))) + [0]
        for index in order:
            name, dtype, _ = GROUPS[group][index]
            dset = self._file[f"{group}/{name}"]
            old = dset.shape[0]
            dset.resize((old + count,))
            dset[old:] = np.asarray(columns[index], dtype)
        self.flush()

    def append_steps(self, rows) -> None:
        """Append training rows: a list of (step, wall_time, loss, nll_x, kl)."""
        rows = list(rows)
        if rows:
            self._append("history", [np.asarray(column) for column in zip(*rows)])

    def append_eval(self, step: int, bound: float) -> None:
        """Append one held-out bound (nats per image) measured at ``step``."""
        self._append("eval", [np.array([step]), np.array([bound])])

    def handle(self, report) -> None:
        """Append what a :class:`draw_studio.train.Report` carries (step rows or a validation bound)."""
        if report.kind == "step":
            self.append_steps(report.step_losses)
        elif report.kind == "validation":
            self.append_eval(report.step, report.bound)

    def flush(self) -> None:
        """Make every appended row visible to readers."""
        if self._file:
            self._file.flush()

    def close(self) -> None:
        if self._file:
            self._file.close()

    def __enter__(self) -> "TrainingLogWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_training_log(path: str | Path) -> TrainingLog:
    """Read a training log, also while a run is still writing it.

    Raises
    ------
    TraceFormatError
        Missing file, not HDF5, not a training log, or another format version.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise TraceFormatError(f"training log {path} does not exist; check the path")
    if not h5py.is_hdf5(path):
        raise TraceFormatError(f"{path} is not an HDF5 file; pass a training log written by draw-studio train")
    try:
        f = h5py.File(path, "r", libver="latest", swmr=True)
    except OSError as exc:
        raise TraceFormatError(f"{path} cannot be opened as a training log ({exc})") from None
    with f:
        fmt = f.attrs.get("format", "")
        fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
        if fmt != FORMAT:
            raise TraceFormatError(f"{path} is an HDF5 file but not a DRAW Studio training log (format {fmt!r}, "
                                   f"expected {FORMAT!r}); pass the log written by draw-studio train")
        version = f.attrs.get("format_version")
        if version is None or int(version) != FORMAT_VERSION:
            raise TraceFormatError(f"{path} is training log format version {version}, this DRAW Studio reads "
                                   f"version {FORMAT_VERSION}; use a matching DRAW Studio")
        try:
            history = _whole_rows(f, "history")
            evals = _whole_rows(f, "eval")
            configs = [json.loads(f.attrs.get(key, "{}")) for key in ("model_config", "train_config")]
            started, software = str(f.attrs.get("started", "")), str(f.attrs.get("software", ""))
        except (KeyError, ValueError) as exc:
            raise TraceFormatError(f"{path} is a damaged training log ({exc})") from None
    return TrainingLog(*history, eval_step=evals[0], eval_bound=evals[1], model_config=configs[0],
                       train_config=configs[1], started=started, software=software)


def _whole_rows(f, group: str) -> list[np.ndarray]:
    """The columns of ``group`` cut to the rows that every column already holds in full."""
    columns = []
    for name, _, _ in GROUPS[group]:
        dset = f[f"{group}/{name}"]
        dset.refresh()
        columns.append(dset[()])
    count = min(len(column) for column in columns)
    columns = [column[:count] for column in columns]
    missing = columns[0] == -1
    for column in columns[1:]:
        missing |= np.isnan(column)
    if missing.any():
        count = int(np.argmax(missing))
    return [column[:count] for column in columns]
