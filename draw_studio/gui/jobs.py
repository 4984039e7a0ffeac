"""Background jobs (exports) on a ``QThread``, reporting progress to the window."""

from __future__ import annotations

import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from ..errors import DrawStudioError

# A job gets a progress(done, total) callable and returns the message shown when it succeeds.
JobFunction = Callable[[Callable[[int, int], None]], str]


class _JobWorker(QObject):
    progress = Signal(int, int)
    done = Signal(str)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, function: JobFunction) -> None:
        super().__init__()
        self.function = function

    @Slot()
    def run(self) -> None:
        try:
            self.done.emit(self.function(lambda done, total: self.progress.emit(int(done), int(total))))
        except DrawStudioError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - report, never crash the window
            traceback.print_exc()
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        finally:
            self.finished.emit()


class JobRunner(QObject):
    """Runs one job at a time in its own thread.

    Signals
    -------
    started(str) : the job's description
    progress(int, int) : done, total
    done(str) : the job's success message
    failed(str) : the job's error message
    idle() : no job runs any more
    """

    started = Signal(str)
    progress = Signal(int, int)
    done = Signal(str)
    failed = Signal(str)
    idle = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: _JobWorker | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def run(self, description: str, function: JobFunction) -> bool:
        """Start ``function`` in the background; False if another job still runs."""
        if self.busy:
            return False
        worker, thread = _JobWorker(function), QThread(self)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progress.connect(self.progress)
        worker.done.connect(self.done)
        worker.failed.connect(self.failed)
        # quit() is thread-safe: call it from the worker's thread at once, so that wait() in the GUI thread
        # does not wait for an event the blocked GUI thread would have to deliver
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._on_finished)
        self._worker, self._thread = worker, thread
        self.started.emit(description)
        thread.start()
        return True

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the running job (if any) has ended."""
        if self._thread is None:
            return True
        finished = self._thread.wait(timeout_ms)
        if finished:
            self._on_finished()
        return finished

    def _on_finished(self) -> None:
        if self._thread is None:
            return
        self._thread.deleteLater()
        self._worker, self._thread = None, None
        self.idle.emit()
