"""Several training runs side by side: one summary per training log, and the settings that tell them apart.

:func:`summarize_runs` takes log files and folders (scanned for ``*.log.h5``) and returns a
:class:`RunSummary` per log; :func:`differing_settings` names the hyper-parameters whose values are
not the same in every run (the columns a runs table shows). ``draw-studio runs`` prints the table.

A run's **state**:

* ``finished``: its last logged step reached the steps in all that its latest session was asked for
  (the log's ``total_steps`` attribute; for logs of older versions, the training configuration's
  ``steps``, or ``epochs`` x steps per epoch);
* ``running``: not finished, and the log was written within the last :func:`running_window` seconds
  (a running trainer rewrites its log at least every 5 s, less often for a big log: at most every
  size / 100 kB/s seconds);
* ``stopped``: neither (stopped by the user, killed, or crashed; ``--resume`` goes on from its
  checkpoint).

A run's best validation figure is what its log's ``eval/bound`` holds (:mod:`draw_studio.curve_meaning`):
DRAW's lowest validation bound in nats per image (:attr:`RunSummary.best_bound`), or an attention
classifier's lowest validation error in percent (:attr:`RunSummary.best_error_percent`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .curve_meaning import CLASSIFIER, DRAW, log_kind
from .errors import DrawStudioError
from .training_log import WRITE_BYTES_PER_S, TrainingLog
from .training_log_reader import read_training_log

LOG_PATTERN = "*.log.h5"
RUNNING_SECONDS = 60.0  # a log written this recently (or within 3 flush intervals of a big log) is a running run
BOOKKEEPING = ("report_every", "checkpoint_every", "snapshot_every", "validate_every")  # not hyper-parameters
MODEL_RENAMED = {"steps": "glimpses"}  # the model's T, not to be confused with the optimiser steps
TRAIN_RENAMED = {"steps": "target_steps", "epochs": "target_epochs"}  # asked for, not done (RunSummary.step)
STATES = ("finished", "running", "stopped")


@dataclass
class RunSummary:
    """One training run, as its log tells it.

    Attributes
    ----------
    path : Path
        The training log.
    name : str
        The log's file name without ``.log.h5``.
    preset : str
    settings : dict
        Hyper-parameters by name: the model settings (the model's ``steps``, T, named ``glimpses``) and
        the training settings but the preset and those only about reporting; the training length asked
        for is ``target_steps`` or ``target_epochs``, whichever the run uses.
    step : int
        Last optimiser step logged (0 for a log without rows).
    total_steps : int or None
        Steps in all that the latest session was asked for (None when unknown).
    steps_per_epoch : int or None
    epochs : float or None
        ``step / steps_per_epoch`` (None when unknown).
    images_seen : int
        ``step`` x batch size.
    wall_time : float
        Seconds of training (all sessions) at the last row.
    best_bound : float or None
        Lowest held-out (validation) bound, nats per image; None without one, and for a classifier.
    best_step : int or None
        The step of the best validation figure (the bound, or a classifier's error).
    state : str
        ``finished``, ``running`` or ``stopped`` (see the module documentation).
    run_id, started : str
    modified : float
        The log's modification time (seconds since the epoch).
    log : TrainingLog
        The curves, as read.
    kind : str
        ``draw``, or ``classifier`` for an attention classifier's run (:func:`draw_studio.curve_meaning.log_kind`).
    best_error_percent : float or None
        A classifier's lowest validation error, in percent; None without one, and for DRAW.
    """

    path: Path
    name: str
    preset: str
    settings: dict
    step: int
    total_steps: int | None
    steps_per_epoch: int | None
    epochs: float | None
    images_seen: int
    wall_time: float
    best_bound: float | None
    best_step: int | None
    state: str
    run_id: str
    started: str
    modified: float
    log: TrainingLog = field(repr=False)
    kind: str = DRAW
    best_error_percent: float | None = None

    @property
    def best_valid(self) -> float | None:
        """The best validation figure, whichever the run has (a bound in nats, or a classifier's error in %)."""
        return self.best_error_percent if self.kind == CLASSIFIER else self.best_bound


def find_logs(paths) -> list[Path]:
    """The training logs among ``paths``: files as given, folders scanned for ``*.log.h5`` (not recursively,
    sorted by name); each log once.

    Raises
    ------
    DrawStudioError
        A path that does not exist.
    """
    found: list[Path] = []
    for path in map(Path, [paths] if isinstance(paths, (str, Path)) else paths):
        if path.is_dir():
            found += sorted(path.glob(LOG_PATTERN))
        elif path.is_file():
            found.append(path)
        else:
            raise DrawStudioError(f"{path} does not exist; give training logs (X.log.h5) or folders holding them")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def running_window(size_bytes: int) -> float:
    """Seconds since its last write within which a log of ``size_bytes`` counts as being written."""
    return max(RUNNING_SECONDS, 3 * size_bytes / WRITE_BYTES_PER_S)


def run_settings(log: TrainingLog) -> dict:
    """The hyper-parameters of a run (see :attr:`RunSummary.settings`), each only where it means something.

    A DRAW run has no ``clutter`` (the attention classifier's setting), and no ``read_n`` / ``write_n``
    when it reads / writes without attention.

    Parameters
    ----------
    log : TrainingLog
        Any object with the log's ``model_config`` and ``train_config`` dictionaries.

    Returns
    -------
    dict
        Settings by the names :attr:`RunSummary.settings` gives them.
    """
    train = {TRAIN_RENAMED.get(name, name): value for name, value in log.train_config.items()
             if name not in BOOKKEEPING + ("preset",)}
    train.pop("target_steps" if float(train.get("target_epochs") or 0) > 0 else "target_epochs", None)
    model = {MODEL_RENAMED.get(name, name): value for name, value in log.model_config.items()}
    if log_kind(log.model_config) == DRAW:
        train.pop("clutter", None)
        for attention, size in (("read_attention", "read_n"), ("write_attention", "write_n")):
            if not model.get(attention, True):
                model.pop(size, None)
    return {**model, **train}


def summarize_run(path: str | Path, now: float | None = None, log: TrainingLog | None = None) -> RunSummary:
    """The summary of the run whose training log is ``path``.

    Parameters
    ----------
    now : float, optional
        The time to judge ``running`` against (default: now).
    log : TrainingLog, optional
        ``path`` as already read (default: read it).

    Raises
    ------
    TrainingLogError
        The log cannot be read.
    """
    path = Path(path)
    log = read_training_log(path) if log is None else log
    stat = path.stat()
    train = log.train_config
    step = int(log.step[-1]) if len(log.step) else 0
    per_epoch = log.steps_per_epoch or _checkpoint_steps_per_epoch(path) or None
    total = log.total_steps or None
    if total is None:
        epochs = float(train.get("epochs") or 0)
        total = (math.ceil(epochs * per_epoch) if per_epoch else None) if epochs > 0 else train.get("steps")
    finite = np.flatnonzero(np.isfinite(log.eval_bound))
    best = int(finite[np.argmin(log.eval_bound[finite])]) if len(finite) else None
    now = time.time() if now is None else now
    if total is not None and step >= int(total):
        state = "finished"
    elif now - stat.st_mtime <= running_window(stat.st_size):
        state = "running"
    else:
        state = "stopped"
    name = path.name[:-len(".log.h5")] if path.name.endswith(".log.h5") else path.stem
    kind = log_kind(log.model_config)
    best_value = float(log.eval_bound[best]) if best is not None else None
    return RunSummary(
        path=path, name=name, preset=str(train.get("preset", "")), settings=run_settings(log), step=step,
        total_steps=int(total) if total is not None else None, steps_per_epoch=per_epoch,
        epochs=step / per_epoch if per_epoch else None, images_seen=step * int(train.get("batch_size") or 0),
        wall_time=float(log.wall_time[-1]) if len(log.wall_time) else 0.0,
        best_bound=best_value if kind == DRAW else None,
        best_step=int(log.eval_step[best]) if best is not None else None, state=state, run_id=log.run_id,
        started=log.started, modified=stat.st_mtime, log=log, kind=kind,
        best_error_percent=best_value if kind == CLASSIFIER else None)


def summarize_runs(paths, now: float | None = None) -> list[RunSummary]:
    """:func:`summarize_run` for every log :func:`find_logs` finds in ``paths`` (files and folders)."""
    return [summarize_run(path, now) for path in find_logs(paths)]


def differing_settings(runs: list[RunSummary]) -> list[str]:
    """Names of the settings whose values are not the same in every run (one missing from a run counts as
    differing), in the order they first appear; empty for fewer than two runs."""
    if len(runs) < 2:
        return []
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(run.settings))
    missing = object()
    return [name for name in names
            if len({repr(run.settings.get(name, missing)) for run in runs}) > 1]


def _checkpoint_steps_per_epoch(log_path: Path) -> int | None:
    """Steps per epoch recorded by the checkpoint beside a log of an older version (``X.log.h5`` -> ``X.ckpt``)."""
    checkpoint = log_path.with_name(log_path.name[:-len(".log.h5")] + ".ckpt") \
        if log_path.name.endswith(".log.h5") else None
    if checkpoint is None or not checkpoint.is_file():
        return None
    from .checkpoint import read_checkpoint

    try:
        value = (read_checkpoint(checkpoint).get("extra") or {}).get("steps_per_epoch")
    except DrawStudioError:
        return None
    return int(value) if value else None
