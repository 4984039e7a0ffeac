"""Background jobs (exports) on the generic :class:`~draw_studio.gui.background.BackgroundWorker`,
reporting progress to the window.

A job is either a function given a ``progress(done, total)`` callable (the core's exporters take
one) that returns the message shown when it succeeds, or a generator function that yields
``(done, total)`` and returns that message. Either way each progress point is one yield of the
worker: a pause holds the job there and a stop ends it there (a file being written is then
left as it was: ``files.atomic_write`` removes its temporary file).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

from PySide6.QtCore import QObject, Signal

from ..progress import TrainingControl
from .background import BackgroundWorker, WorkerThread

# A job gets a progress(done, total) callable and returns the message shown when it succeeds;
# or it is a generator function (given nothing) yielding (done, total) and returning that message.
JobFunction = Callable[[Callable[[int, int], None]], str] | Callable[[], Iterator[tuple[int, int]]]
PROGRESS_INTERVAL_S = 0.05  # at most ~20 progress signals a second


def job_worker(function: JobFunction) -> BackgroundWorker:
    """A worker running ``function`` (see :data:`JobFunction`), yielding (done, total) pairs."""
    if inspect.isgeneratorfunction(function):
        def generator(control: TrainingControl):
            return (yield from function())
    else:
        def generator(control: TrainingControl):
            return function(lambda done, total: worker.send_item((int(done), int(total))))
            yield  # a generator whose only "yields" are the progress calls above

    worker = BackgroundWorker(generator, coalesce_s=PROGRESS_INTERVAL_S)  # (a name the callback above uses)
    return worker


class JobRunner(QObject):
    """Runs one job at a time in its own thread.

    Signals
    -------
    started(str) : the job's description
    progress(int, int) : done, total
    done(str) : the job's success message
    failed(str) : the job's error message
    stopped() : the job was stopped (:meth:`stop`) before it finished
    idle() : no job runs any more
    """

    started = Signal(str)
    progress = Signal(int, int)
    done = Signal(str)
    failed = Signal(str)
    stopped = Signal()
    idle = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: WorkerThread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None

    @property
    def worker(self) -> BackgroundWorker | None:
        """The running job's worker, or None."""
        return self._thread.worker if self._thread is not None else None

    def run(self, description: str, function: JobFunction) -> bool:
        """Start ``function`` in the background; False if another job still runs."""
        if self.busy:
            return False
        worker = job_worker(function)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_returned)
        worker.failed.connect(self.failed)
        worker.stopped.connect(self.stopped)
        thread = WorkerThread(worker, self, name="jobThread")
        thread.ended.connect(self._on_finished)
        self._thread = thread
        self.started.emit(description)
        thread.start()
        return True

    def pause(self) -> None:
        """Hold the running job at its next progress point."""
        if self._thread is not None:
            self._thread.worker.pause()

    def resume(self) -> None:
        if self._thread is not None:
            self._thread.worker.resume()

    def stop(self) -> None:
        """End the running job at its next progress point (``stopped``, then ``idle``)."""
        if self._thread is not None:
            self._thread.worker.stop()

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the running job (if any) has ended."""
        if self._thread is None:
            return True
        return self._thread.wait(timeout_ms)  # ended -> _on_finished, at once

    def _on_progress(self, points: list) -> None:
        done, total = points[-1]  # the latest of the points gathered since the last signal
        self.progress.emit(int(done), int(total))

    def _on_returned(self, message) -> None:
        self.done.emit("" if message is None else str(message))

    def _on_finished(self) -> None:
        if self._thread is None:
            return
        self._thread.deleteLater()
        self._thread = None
        self.idle.emit()
