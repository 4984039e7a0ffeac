"""Starts, pauses, stops and tears down the training worker and its ``QThread``."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QThread, Signal

from ..progress import ReportKind
from ..train import Trainer
from .worker import TraceRequest, TrainingJob, TrainingWorker

IDLE, STARTING, RUNNING, PAUSED, STOPPING = "idle", "starting", "running", "paused", "stopping"


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
    finished() : the worker thread has ended; :attr:`trainer` holds the trained model
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
        self._thread: QThread | None = None
        self._worker: TrainingWorker | None = None

    @property
    def active(self) -> bool:
        """A worker thread exists (starting, running, paused or stopping)."""
        return self._thread is not None

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
        worker = TrainingWorker(job)
        thread = QThread(self)
        thread.setObjectName("trainingThread")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.reports.connect(self._on_reports)
        worker.live_trace.connect(self.live_trace)
        worker.trace_ready.connect(self.trace_ready)
        worker.request_failed.connect(self.request_failed)
        worker.saved.connect(self.saved)
        worker.failed.connect(self.failed)
        # quit() is thread-safe: call it from the worker's thread at once, so that wait() in the GUI thread
        # does not wait for an event the blocked GUI thread would have to deliver
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._on_thread_finished)
        self._thread, self._worker = thread, worker
        self._set_state(STARTING)
        thread.start()

    def pause(self) -> None:
        if self._worker is not None and self.state in (STARTING, RUNNING):
            self._worker.control.pause()

    def resume(self) -> None:
        if self._worker is not None and self.state == PAUSED:
            self._worker.control.resume()
            self._set_state(RUNNING)

    def stop(self, save_final: bool = True) -> None:
        """Ask training to stop after the current step (it writes its final checkpoint unless told not to)."""
        if self._worker is None:
            return
        if not save_final:
            self._worker.skip_final_save()
        self._worker.control.stop()
        self._set_state(STOPPING)

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the worker thread has ended; True if it did (or none ran)."""
        thread = self._thread
        if thread is None:
            return True
        done = thread.wait(timeout_ms)
        if done:
            self._on_thread_finished()
        return done

    def save(self, path: str) -> None:
        """Write a checkpoint: through the worker while it runs, directly once it has finished."""
        if self._worker is not None:
            self._worker.request_save(path)
        elif self.trainer is not None:
            self.trainer.save(path)
            self.saved.emit(str(path))

    def request_trace(self, request: TraceRequest) -> bool:
        """Ask the running worker for a trace; False if no worker runs."""
        if self._worker is None:
            return False
        self._worker.request_trace(request)
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
