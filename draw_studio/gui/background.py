"""One background worker for the window: a generator run on a ``QThread``, its yields sent as signals.

As napari's generator workers (``napari.qt.threading.GeneratorWorker``): a function returns a
generator; :class:`BackgroundWorker` runs it on a thread of its own (:class:`WorkerThread`), sends
what it yields to the GUI thread as signals, holds it while paused and ends it when stopped, both
between two yields, and sends what it returns or raises as a signal too. Nothing it runs touches a
widget. Training (``Trainer.run`` yields ``Report`` objects, :mod:`~draw_studio.gui.worker`) and
the exports (:mod:`~draw_studio.gui.jobs`) both run on it.

High-rate yields are coalesced: with ``coalesce_s`` above 0, at most one ``yielded`` signal every
``coalesce_s`` seconds carries every item since the last (an ``urgent`` item goes at once), so a
generator yielding thousands of items a second costs the event loop a few signals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from ..errors import DrawStudioError, first_line
from ..progress import TrainingControl

log = logging.getLogger(__name__)

# ``function(control)`` returns a generator (or any iterator); its return value arrives on ``returned``
GeneratorFunction = Callable[[TrainingControl], Iterator[Any]]


class JobStopped(BaseException):  # noqa: N818 - a signal to unwind, as GeneratorExit, not an error
    """Raised in the worker thread by :meth:`BackgroundWorker.send_item` once a stop was asked.

    A ``BaseException``, so that no ``except Exception`` of the job swallows it; ``finally`` blocks
    (e.g. ``files.atomic_write`` removing its temporary file) still run.
    """


def one_line(exc: BaseException) -> str:
    """An error as the one line the window shows: a DrawStudioError's message, else ``Type: first line``."""
    if isinstance(exc, DrawStudioError):
        return str(exc)
    first = first_line(exc, 300)
    return type(exc).__name__ if first == type(exc).__name__ else f"{type(exc).__name__}: {first}"


class BackgroundWorker(QObject):
    """Runs a generator in a worker thread; what it yields, returns or raises arrives as signals.

    Parameters
    ----------
    function : callable
        ``function(control)`` returns the generator to run (called in the worker thread).
        ``control`` is :attr:`control`: a generator may watch the flags itself (see
        ``honours_control``).
    control : TrainingControl, optional
        The pause and stop flags (default: new ones). Its ``wait_while_paused`` is what the worker
        calls, about every 0.1 s, while it holds the generator.
    honours_control : bool
        False (default): the worker holds the generator while paused and closes it
        (``GeneratorExit`` at its ``yield``) at the first yield after a stop. True: the generator
        watches ``control`` itself (``Trainer.run`` does: it reports a pause, and on a stop writes
        its final checkpoint before it ends); the worker only runs it.
    coalesce_s : float
        0: one ``yielded`` signal per item. Above 0: at most one ``yielded`` every ``coalesce_s``
        seconds, carrying every item since the last (and the rest at the end).
    urgent : callable, optional
        ``urgent(item)``: send this item, and those held before it, at once.

    Signals
    -------
    started() : the worker thread began to run the function
    yielded(list) : items, in the order yielded (one, or all held since the last signal)
    returned(object) : the generator's return value (it was exhausted)
    stopped() : the worker ended the generator on a stop request (``honours_control`` False)
    paused(), resumed() : the worker holds (releases) the generator (``honours_control`` False)
    failed(str) : one line: a ``DrawStudioError``'s message, or ``Type: message`` for any other
        exception (never a traceback: it goes to the ``logging`` debug level)
    finished() : always, last
    """

    started = Signal()
    yielded = Signal(object)
    returned = Signal(object)
    stopped = Signal()
    paused = Signal()
    resumed = Signal()
    failed = Signal(str)
    finished = Signal()

    def __init__(self, function: GeneratorFunction, *, control: TrainingControl | None = None,
                 honours_control: bool = False, coalesce_s: float = 0.0,
                 urgent: Callable[[Any], bool] | None = None) -> None:
        super().__init__()
        self.function = function
        self.control = control if control is not None else TrainingControl()
        self.honours_control = honours_control
        self.coalesce_s = coalesce_s
        self.urgent = urgent
        self._pending: list = []
        self._last_emit = float("-inf")

    # ------------------------------------------------------------------ flags (any thread)
    def pause(self) -> None:
        """Hold the generator at its next yield (or let it pause itself, ``honours_control``)."""
        self.control.pause()

    def resume(self) -> None:
        self.control.resume()

    def stop(self) -> None:
        """End the generator at its next yield (or let it stop itself, ``honours_control``)."""
        self.control.stop()

    @property
    def is_paused(self) -> bool:
        return self.control.paused

    @property
    def stop_requested(self) -> bool:
        return self.control.stop_requested

    # ------------------------------------------------------------------ the worker thread
    @Slot()
    def run(self) -> None:
        """Run the generator to its end, a stop or an exception; then ``finished``."""
        self.started.emit()
        try:
            if self.control.stop_requested:  # stopped before it began
                self.stopped.emit()
                return
            iterator = self.function(self.control)
            try:
                while True:
                    try:
                        item = next(iterator)
                    except StopIteration as end:
                        self._flush()
                        self.returned.emit(end.value)
                        return
                    self.send_item(item)
            except JobStopped:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
                raise
        except JobStopped:
            self._flush()
            self.stopped.emit()
        except Exception as exc:  # noqa: BLE001 - any failure reaches the window as one line, never a crash
            log.debug("background job failed", exc_info=True)
            self._flush()
            self.failed.emit(one_line(exc))
        finally:
            self._flush()
            self.finished.emit()

    def send_item(self, item: Any) -> None:
        """Send ``item`` as a yield does, then check the flags (worker thread only).

        What a job written with a callback (e.g. a ``progress(done, total)`` of the core) calls
        instead of ``yield``: a pause holds the caller here, a stop raises :class:`JobStopped`.
        """
        self._pending.append(item)
        now = time.perf_counter()
        if (self.coalesce_s <= 0 or now - self._last_emit >= self.coalesce_s
                or (self.urgent is not None and self.urgent(item))):
            self._flush()
        if self.honours_control:
            return
        if self.control.paused and not self.control.stop_requested:
            self._flush()
            self.paused.emit()
            while self.control.paused and not self.control.stop_requested:
                self.control.wait_while_paused()
            if not self.control.stop_requested:
                self.resumed.emit()
        if self.control.stop_requested:
            raise JobStopped

    def _flush(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._last_emit = time.perf_counter()
            self.yielded.emit(batch)


class WorkerThread(QObject):
    """A :class:`BackgroundWorker` on a ``QThread`` of its own; this handle lives in the GUI thread.

    Signals
    -------
    ended() : the thread has ended (after every signal of the worker); emitted once
    """

    ended = Signal()

    def __init__(self, worker: BackgroundWorker, parent: QObject | None = None, name: str = "") -> None:
        super().__init__(parent)
        self.worker = worker
        self.thread = QThread(self)
        if name:
            self.thread.setObjectName(name)
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)
        # quit() is thread-safe: call it from the worker's thread at once, so that wait() in the GUI thread
        # does not wait for an event the blocked GUI thread would have to deliver
        worker.finished.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.finished.connect(self._on_finished)
        self._ended = False

    @property
    def running(self) -> bool:
        """Started and not yet ended."""
        return not self._ended

    def start(self) -> None:
        self.thread.start()

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the thread has ended (``ended`` is then emitted at once); True if it has."""
        if self._ended:
            return True
        if not self.thread.wait(timeout_ms):
            return False
        self._on_finished()
        return True

    def _on_finished(self) -> None:
        if not self._ended:
            self._ended = True
            self.ended.emit()
