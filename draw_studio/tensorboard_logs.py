"""A run's scalars as TensorBoard event files: live while training, or converted from a finished log.

``draw-studio train --tensorboard DIR`` feeds every report to a :class:`TensorBoardSink`;
``draw-studio log-export LOG.h5 --tensorboard DIR`` calls :func:`export_log_tensorboard`. Both need
the optional ``tensorboard`` package (``pip install "draw-studio[tensorboard]"``) and write through
``torch.utils.tensorboard.SummaryWriter``.

Tags, one point per optimiser step (x = the step):

========================  =====================================================================
``train/bound``           training bound, nats per image (mean over the batch): the log's ``loss``
``train/nll_x``           its reconstruction term L_x
``train/kl``              its latent term L_z
``train/lr``              learning rate (not written where a log of an older version has none)
``valid/bound``           held-out bound, nats per image
========================  =====================================================================

An attention classifier's run (:mod:`draw_studio.curve_meaning`) writes ``train/cross_entropy`` (nats per
image), ``train/lr`` and ``valid/error_percent`` instead.

A converted log's points carry the wall time ``started + wall_time`` (so TensorBoard's "relative"
axis is the log's training time); a live run's, the time they were written.
"""

from __future__ import annotations

import calendar
import math
import time
from pathlib import Path

import numpy as np

from .curve_meaning import CLASSIFIER, DRAW, log_kind
from .errors import DrawStudioError
from .files import write_failure
from .progress import Report, ReportKind
from .training_log import TrainingLog
from .training_log_reader import read_training_log

INSTALL = 'pip install "draw-studio[tensorboard]"'
EVENT_FILES = "events.out.tfevents.*"
TRAIN_TAGS = (("train/bound", "loss"), ("train/nll_x", "nll_x"), ("train/kl", "kl"))  # (tag, log column)
# kind -> (the training tags with their log columns, the validation tag)
TAGS = {DRAW: (TRAIN_TAGS, "valid/bound"),
        CLASSIFIER: ((("train/cross_entropy", "loss"),), "valid/error_percent")}
REPORT_COLUMNS = {"loss": 2, "nll_x": 3, "kl": 4}  # their places in a report's step_losses rows


def require_tensorboard() -> None:
    """Raise ``DrawStudioError`` naming the install command when the ``tensorboard`` package is missing."""
    try:
        import torch.utils.tensorboard  # noqa: F401 - imports tensorboard itself
    except ImportError:
        raise DrawStudioError(f"TensorBoard event files need the tensorboard package: {INSTALL}") from None


def summary_writer(log_dir: str | Path, purge_step: int | None = None):
    """A ``torch.utils.tensorboard.SummaryWriter`` writing into ``log_dir`` (created if needed).

    Parameters
    ----------
    purge_step : int, optional
        Points of earlier event files in ``log_dir`` at this step or later are hidden (a resumed run
        going on from step ``purge_step - 1``).

    Raises
    ------
    DrawStudioError
        The ``tensorboard`` package is missing (the message says how to install it), or the folder
        cannot be created.
    """
    require_tensorboard()
    from torch.utils.tensorboard import SummaryWriter

    log_dir = Path(log_dir)
    if log_dir.exists() and not log_dir.is_dir():
        raise DrawStudioError(f"cannot write TensorBoard files into {log_dir}: it is a file; give a folder")
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)
    except OSError as exc:
        raise DrawStudioError(write_failure(log_dir, exc)) from None


class TensorBoardSink:
    """Writes the scalars of a running training's reports (``Trainer.run()``) as TensorBoard events.

    Parameters
    ----------
    log_dir : str or Path
        Folder of the event files (created if needed).
    start_step : int
        The step the run starts from: points that earlier event files in ``log_dir`` hold after it
        (a resumed run's own past beyond its checkpoint, or another run) are hidden.

    Notes
    -----
    Use as a context manager or call :meth:`close`. Raises ``DrawStudioError`` as :func:`summary_writer`.
    """

    def __init__(self, log_dir: str | Path, start_step: int = 0, kind: str = DRAW) -> None:
        self.log_dir = Path(log_dir)
        self.train_tags, self.valid_tag = TAGS[kind]
        self.writer = summary_writer(log_dir, purge_step=start_step + 1)

    def handle(self, report: Report) -> None:
        """Write what ``report`` carries: every step's training terms and the learning rate of a
        ``"step"`` report, the bound of a ``"validation"`` report; flushed at checkpoints and the end."""
        if report.kind is ReportKind.STEP:
            for row in report.step_losses:  # (step, wall, loss, nll_x, kl[, lr])
                for tag, column in self.train_tags:
                    self.writer.add_scalar(tag, row[REPORT_COLUMNS[column]], row[0])
            if report.step_losses and math.isfinite(report.lr):  # the rate of the report's last step
                self.writer.add_scalar("train/lr", report.lr, report.step_losses[-1][0])
        elif report.kind is ReportKind.VALIDATION:
            self.writer.add_scalar(self.valid_tag, report.bound, report.step)
        elif report.kind in (ReportKind.CHECKPOINT, ReportKind.DONE):
            self.writer.flush()

    def close(self) -> None:
        """Write what is left and close the event file."""
        self.writer.close()

    def __enter__(self) -> TensorBoardSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def export_log_tensorboard(log: str | Path | TrainingLog, log_dir: str | Path) -> int:
    """Write every point of a training log's curves as TensorBoard events into ``log_dir``.

    Parameters
    ----------
    log : str, Path or TrainingLog
        The log (read when given a path).
    log_dir : str or Path
        A new or empty folder (event files already there would mix with these).

    Returns
    -------
    int
        Points written, all tags together.

    Raises
    ------
    DrawStudioError
        ``tensorboard`` missing, ``log_dir`` already holding event files or not writable, or an
        unreadable log (``TrainingLogError``).
    """
    if not isinstance(log, TrainingLog):
        log = read_training_log(log)
    log_dir = Path(log_dir)
    if log_dir.is_dir() and any(log_dir.glob(EVENT_FILES)):
        raise DrawStudioError(f"{log_dir} already holds TensorBoard event files; export into a new or empty "
                              "folder (TensorBoard would mix the two)")
    origin = _started(log.started)
    train_tags, valid_tag = TAGS[log_kind(log.model_config)]
    writer = summary_writer(log_dir)
    points = 0
    try:
        steps, walls = log.step.tolist(), (origin + log.wall_time).tolist()
        for tag, column in train_tags:
            for step, wall, value in zip(steps, walls, getattr(log, column).tolist()):
                writer.add_scalar(tag, value, step, walltime=wall)
            points += len(steps)
        for step, wall, value in zip(steps, walls, log.lr.tolist()):
            if value == value:  # NaN: not recorded
                writer.add_scalar("train/lr", value, step, walltime=wall)
                points += 1
        eval_walls = (np.interp(log.eval_step, log.step, log.wall_time) if len(log.step)
                      else np.zeros(len(log.eval_step))) + origin
        for step, wall, value in zip(log.eval_step.tolist(), eval_walls.tolist(), log.eval_bound.tolist()):
            writer.add_scalar(valid_tag, value, step, walltime=wall)
            points += 1
        writer.flush()
    except OSError as exc:
        raise DrawStudioError(write_failure(log_dir, exc)) from None
    finally:
        writer.close()
    return points


def _started(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 UTC time ``2025-01-31T12:00:00Z``; now when unreadable."""
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except (TypeError, ValueError):
        return time.time()
