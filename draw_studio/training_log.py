"""The training log: the curves of a run in an HDF5 file that grows while training goes on.

Layout (version 1): ``shared/spec/trace-format.md`` and ``docs/file-formats.md``.

The writer keeps the rows in memory and puts the whole file on disk at each flush: built in memory,
written under a temporary name and renamed over the old file (``draw_studio.hdf5_file``). So a
reader, in this process or another, always finds a whole, closed HDF5 file that any h5py reader
opens (no SWMR, no "open for writing" mark, no lock to wait for); a killed run, a full disk or a
file-size limit leaves the last flushed file intact and never a half-written one.

Logs written by earlier versions in HDF5's SWMR mode are still read, also while such a writer is
running or after it was killed; ``python -m draw_studio.training_log repair X.log.h5``
(``draw_studio.training_log_repair``) rewrites such a file as a plain one (so does the next
``draw-studio train --resume``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import SOFTWARE
from .errors import DrawStudioError, FileFormatError, TrainingLogError
from .files import atomic_write, free_name_beside
from .hdf5_file import build_image
from .progress import ReportKind
from .training_snapshots import SnapshotSeries, read_snapshots

FORMAT = "draw-studio/training-log"
FORMAT_VERSION = 1
CHUNK_ROWS = 1024
HISTORY = (("step", np.int64, -1), ("wall_time", np.float64, np.nan), ("loss", np.float32, np.nan),
           ("nll_x", np.float32, np.nan), ("kl", np.float32, np.nan),
           ("lr", np.float32, np.nan))  # (name, dtype, fill value)
RUN_SIZES = ("steps_per_epoch", "total_steps")  # root attributes, 0 in logs of older versions
OPTIONAL = ("lr",)  # absent from older logs (read as NaN); a NaN there never marks an unwritten row
EVAL = (("step", np.int64, -1), ("bound", np.float32, np.nan))
GROUPS = {"history": HISTORY, "eval": EVAL}
WRITE_BYTES_PER_S = 100_000  # with a flush interval, a big log is rewritten at most at about this rate
TRUNCATED_FIX = "use an intact copy, or move it away (a resumed run then starts a new log)"


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
    run_id : str
        Identity of the run (also in its checkpoints); empty in logs of older versions.
    lr : ndarray, shape (N,), float32
        Learning rate when each row was reported; NaN where not recorded (logs of older versions).
    steps_per_epoch, total_steps : int
        Optimiser steps per epoch, and the steps in all that the latest session was asked for; 0 where
        not recorded (logs of older versions).
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
    run_id: str = ""
    lr: np.ndarray | None = None
    steps_per_epoch: int = 0
    total_steps: int = 0

    def __post_init__(self) -> None:
        if self.lr is None:
            self.lr = np.full(len(self.step), np.nan, np.float32)


class TrainingLogWriter:
    """Creates (or continues) a training log and appends rows to it.

    Parameters
    ----------
    path : str or Path
    model_config, train_config : dataclass or dict
        Stored as JSON in the root attributes.
    resume_step : int, optional
        Continue the log ``source``: its rows of steps up to ``resume_step``
        are kept, later ones (written after the checkpoint being resumed)
        dropped. Without it, or if there is no such file, the log starts empty.
    run_id : str
        Identity of the run, stored in the root attributes.
    source : str or Path, optional
        The log continued with ``resume_step`` (default: ``path``).
    same_run : callable, optional
        ``same_run(old_log)`` says whether the log being continued belongs to
        this run. If not, its rows are not used and, when it is ``path``
        itself, it is kept under another name (see :attr:`notices`) rather
        than overwritten. Default: always.
    pending : bool
        Write nothing until :meth:`commit` (a new run's log moves in with its
        first checkpoint, so a run killed before has touched no file).
    flush_every_s : float
        0 (default): every ``append_*`` call puts the file on disk. Otherwise
        at most every this many seconds (longer for a big file, so that
        rewriting it stays near ``WRITE_BYTES_PER_S``), and at :meth:`flush`.

    Notes
    -----
    Each flush writes the whole file (built in memory) under a temporary
    name and renames it over ``path``: readers see whole files, and a write
    that fails (full disk, file-size limit) raises ``DrawStudioError`` and
    leaves the previous file as it was. Use as a context manager or call
    :meth:`close`.
    """

    def __init__(self, path: str | Path, model_config, train_config, resume_step: int | None = None, *,
                 run_id: str = "", source: str | Path | None = None,
                 same_run: Callable[[TrainingLog], bool] | None = None, pending: bool = False,
                 flush_every_s: float = 0.0) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise DrawStudioError(f"cannot write training log {self.path}: folder {self.path.parent} does not "
                                  "exist; create it first")
        self.attrs = {"model_config": _config_json(model_config), "train_config": _config_json(train_config),
                      "started": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "run_id": run_id}
        self.notices: list[str] = []
        self.pending = pending
        self.flush_every_s = flush_every_s
        self._columns = {group: [[np.zeros(0, dtype)] for _, dtype, _ in columns]
                         for group, columns in GROUPS.items()}
        self._dirty = True
        self._last_flush = -float("inf")
        self._interval = flush_every_s
        self._closed = False
        self.snapshots = SnapshotSeries()  # draw_studio.training_snapshots, continued like the rows
        source = Path(source) if source is not None else self.path
        if resume_step is not None and source.exists():
            self._continue(source, resume_step, same_run)
        if not self.pending:
            self.flush()

    def _continue(self, source: Path, resume_step: int, same_run) -> None:
        try:
            from .training_log_reader import read_training_log

            old, old_snapshots = read_training_log(source), read_snapshots(source)
        except FileFormatError as exc:
            raise TrainingLogError(f"cannot continue the training log: {exc}") from None
        if same_run is not None and not same_run(old):
            if source == self.path and not self.pending:
                aside = free_name_beside(self.path, "other-run")
                try:
                    os.replace(self.path, aside)
                except OSError as exc:
                    raise DrawStudioError(f"{self.path} holds the log of another run and could not be moved "
                                          f"aside ({exc.strerror or exc}); move it away yourself") from None
                self.notices.append(f"{self.path} held the log of another run: kept as {aside}; "
                                    "this run starts a new log")
            else:
                self.notices.append(f"{source} is the log of another run: this run's log starts empty")
            return
        keep, keep_eval = old.step <= resume_step, old.eval_step <= resume_step
        for index, column in enumerate((old.step, old.wall_time, old.loss, old.nll_x, old.kl, old.lr)):
            self._columns["history"][index] = [np.asarray(column[keep], HISTORY[index][1])]
        for index, column in enumerate((old.eval_step, old.eval_bound)):
            self._columns["eval"][index] = [np.asarray(column[keep_eval], EVAL[index][1])]
        self.snapshots.keep_until(old_snapshots, resume_step)
        self.attrs["started"] = old.started or self.attrs["started"]

    def _append(self, group: str, columns: list[np.ndarray]) -> None:
        if len(columns[0]) == 0:
            return
        for index, (column, (_, dtype, _)) in enumerate(zip(columns, GROUPS[group])):
            self._columns[group][index].append(np.asarray(column, dtype))
        self._dirty = True
        if time.monotonic() - self._last_flush >= self._interval:
            self.flush()

    def append_steps(self, rows, lr: float = float("nan")) -> None:
        """Append training rows: a list of (step, wall_time, loss, nll_x, kl), each with learning rate ``lr``.

        Rows of six values, (step, wall_time, loss, nll_x, kl, lr), carry their own learning rate.
        """
        rows = list(rows)
        if rows:
            columns = [np.asarray(column) for column in zip(*rows)]
            if len(columns) == len(HISTORY) - 1:
                columns.append(np.full(len(rows), lr))
            self._append("history", columns)

    def append_eval(self, step: int, bound: float) -> None:
        """Append one held-out bound (nats per image) measured at ``step``."""
        self._append("eval", [np.array([step]), np.array([bound])])

    def append_snapshot(self, step: int, samples: np.ndarray, reconstructions: np.ndarray) -> None:
        """Append the snapshot of ``step`` (uint8 mean images; see ``draw_studio.training_snapshots``)."""
        self.snapshots.add(step, samples, reconstructions)
        self._dirty = True

    def handle(self, report) -> None:
        """Append what a :class:`draw_studio.train.Report` carries (step rows or a validation bound)."""
        if report.kind is ReportKind.STEP:
            self.append_steps(report.step_losses, lr=report.lr)
        elif report.kind is ReportKind.VALIDATION:
            self.append_eval(report.step, report.bound)

    @property
    def rows(self) -> int:
        """Training rows held (written or not)."""
        return sum(len(part) for part in self._columns["history"][0])

    def image(self) -> bytes:
        """The whole log as the bytes of a closed HDF5 file."""
        for group in self._columns.values():
            for index, parts in enumerate(group):
                if len(parts) > 1:
                    group[index] = [np.concatenate(parts)]

        def fill(f) -> None:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            for key, value in self.attrs.items():
                f.attrs[key] = value
            f.attrs["software"] = SOFTWARE
            for group, columns in GROUPS.items():
                for index, (name, _, fill_value) in enumerate(columns):
                    f.create_dataset(f"{group}/{name}", data=self._columns[group][index][0], maxshape=(None,),
                                     chunks=(CHUNK_ROWS,), fillvalue=fill_value)
            self.snapshots.write(f)

        return build_image(fill, libver="latest")

    def flush(self) -> None:
        """Put every appended row on disk now (nothing while :attr:`pending`).

        Raises
        ------
        DrawStudioError
            The file could not be written (the previous one is left intact).
        """
        if self.pending or not self._dirty:
            return
        started = time.monotonic()
        data = self.image()

        def write(temp: str) -> None:
            with open(temp, "wb") as handle:
                handle.write(data)

        atomic_write(self.path, write, kind="log")
        self._dirty = False
        self._last_flush = time.monotonic()
        if self.flush_every_s > 0:
            self._interval = max(self.flush_every_s, len(data) / WRITE_BYTES_PER_S,
                                 50 * (self._last_flush - started))

    def commit(self) -> None:
        """Stop holding the log back: write it to ``path`` now (replacing what was there)."""
        self.pending = False
        self._dirty = True
        self.flush()

    def close(self) -> None:
        """Write what is left (unless still pending)."""
        if not self._closed:
            self._closed = True
            self.flush()

    def __enter__(self) -> TrainingLogWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
            return
        try:
            self.close()
        except DrawStudioError:
            pass  # the error already on its way says more


def default_log_path(checkpoint: str | Path) -> Path:
    """The training log written beside a checkpoint: ``X.ckpt`` -> ``X.log.h5``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".log.h5")


if __name__ == "__main__":  # ``python -m draw_studio.training_log repair LOG...``
    from .training_log_repair import main

    sys.exit(main())
