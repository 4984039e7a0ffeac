"""Starts, pauses, stops and tears down training: a :class:`~draw_studio.gui.worker.TrainingWorker` on
its :class:`~draw_studio.gui.background.WorkerThread`; and names new runs (:func:`fresh_checkpoint_path`)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, Signal

from ..progress import ReportKind
from ..trace import TraceInputs
from ..train import Trainer
from ..training_log import default_log_path
from .background import WorkerThread
from .worker import TrainingJob, TrainingWorker

IDLE, STARTING, RUNNING, PAUSED, STOPPING = "idle", "starting", "running", "paused", "stopping"


def default_run_folder() -> str:
    """Where new runs go unless the user chose a folder: ``<the user's data location>/runs``
    (``QStandardPaths.AppDataLocation``, e.g. ``~/.local/share/DRAW Studio/DRAW Studio/runs``)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return str(Path(base) / "runs" if base else Path.home() / ".draw-studio" / "runs")


def fresh_checkpoint_path(folder: str | Path, preset: str, taken: Collection[str] = (),
                          now: datetime | None = None) -> str:
    """A checkpoint path for a new run: ``folder/<preset>-<YYYYMMDD-HHMMSS>.ckpt``.

    Never a path in ``taken`` nor one where a checkpoint or its training log already is
    (``-2``, ``-3``... is added to the name until it is free).
    """
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    folder = Path(folder).expanduser()
    number = 1
    while True:
        path = folder / f"{preset}-{stamp}{'' if number == 1 else f'-{number}'}.ckpt"
        if str(path) not in taken and not path.exists() and not default_log_path(path).exists():
            return str(path)
        number += 1


class TrainingController(QObject):
    """The window's handle on training; every slot runs in the GUI thread.

    Signals
    -------
    state_changed(str) : ``idle``, ``starting``, ``running``, ``paused`` or ``stopping``
    reports(list) : coalesced training reports
    live_trace(Trace, int) : a trace of validation images and its training step
    trace_ready(str, Trace) : a requested trace
    request_failed(str, str) : a request's purpose and the error message
    saved(str) : a checkpoint was written
    failed(str) : training stopped on an error
    finished() : the worker thread has ended; :attr:`trainer` holds the trained model and
        :attr:`last_job` what it was asked to do
    """

    state_changed = Signal(str)
    reports = Signal(object)
    live_trace = Signal(object, int)
    trace_ready = Signal(str, object)
    request_failed = Signal(str, str)
    saved = Signal(str)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = IDLE
        self.trainer: Trainer | None = None
        self.last_job: TrainingJob | None = None
        self._thread: WorkerThread | None = None
        self._worker: TrainingWorker | None = None

    @property
    def active(self) -> bool:
        """A worker thread exists (starting, running, paused or stopping)."""
        return self._thread is not None

    @property
    def worker(self) -> TrainingWorker | None:
        """The running worker (a :class:`~draw_studio.gui.background.BackgroundWorker`), or None."""
        return self._worker

    @property
    def checkpoint_path(self) -> str | None:
        """Where the running job writes its checkpoints (None: nowhere)."""
        return self._worker.job.out if self._worker is not None else None

    @property
    def step(self) -> int:
        """Optimiser steps done by the running (or last) trainer; 0 before the first."""
        trainer = self._worker.trainer if self._worker is not None else self.trainer
        return int(trainer.step) if trainer is not None else 0

    @property
    def model_config(self):
        """The configuration of the model being (or last) trained, or None (safe from the GUI thread)."""
        trainer = self._worker.trainer if self._worker is not None else self.trainer
        return trainer.model.config if trainer is not None else None

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def start(self, job: TrainingJob) -> None:
        """Train ``job`` in a new thread (ignored while one runs)."""
        if self.active:
            return
        self.trainer = None
        self.last_job = job
        worker = TrainingWorker(job)
        worker.yielded.connect(self._on_reports)
        worker.live_trace.connect(self.live_trace)
        worker.trace_ready.connect(self.trace_ready)
        worker.request_failed.connect(self.request_failed)
        worker.saved.connect(self.saved)
        worker.failed.connect(self.failed)
        thread = WorkerThread(worker, self, name="trainingThread")
        thread.ended.connect(self._on_thread_finished)
        self._thread, self._worker = thread, worker
        self._set_state(STARTING)
        thread.start()

    def pause(self) -> None:
        if self._worker is not None and self.state in (STARTING, RUNNING):
            self._worker.pause()

    def resume(self) -> None:
        if self._worker is not None and self.state == PAUSED:
            self._worker.resume()
            self._set_state(RUNNING)

    def stop(self, save_final: bool = True) -> None:
        """Ask training to stop after the current step (it writes its final checkpoint unless told not to)."""
        if self._worker is None:
            return
        if not save_final:
            self._worker.skip_final_save()
        self._worker.stop()
        self._set_state(STOPPING)

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the worker thread has ended; True if it did (or none ran)."""
        thread = self._thread
        if thread is None:
            return True
        return thread.wait(timeout_ms)  # ended -> _on_thread_finished, at once

    def save(self, path: str) -> None:
        """Write a checkpoint: through the worker while it runs, directly once it has finished."""
        if self._worker is not None:
            self._worker.request_save(path)
        elif self.trainer is not None:
            self.trainer.save(path)
            self.saved.emit(str(path))

    def request_trace(self, purpose: str, inputs: TraceInputs) -> bool:
        """Ask the running worker for a trace of ``inputs``; False if no worker runs."""
        if self._worker is None:
            return False
        self._worker.request_trace(purpose, inputs)
        return True

    def request_live_trace(self) -> None:
        if self._worker is not None:
            self._worker.request_live_trace()

    def _on_reports(self, reports: list) -> None:
        for report in reports:
            if self._worker is None:
                break  # late reports of a worker already torn down
            if report.kind is ReportKind.PAUSED:
                self._set_state(PAUSED)
            elif report.kind in (ReportKind.START, ReportKind.RESUMED) and self.state != STOPPING:
                self._set_state(RUNNING)
        self.reports.emit(reports)

    def _on_thread_finished(self) -> None:
        if self._thread is None:
            return
        worker, thread = self._worker, self._thread
        self._worker, self._thread = None, None
        self.trainer = worker.trainer  # the worker itself is freed by Python: its thread has ended
        thread.deleteLater()
        self._set_state(IDLE)
        self.finished.emit()
