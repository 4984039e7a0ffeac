"""Work of the curves off the window thread: one lane per kind of work, the newest request wins.

A :class:`BackgroundLane` runs one function at a time on its own thread. Asking again while it
runs cancels the running request (its result is dropped) and runs the new one next; the window
thread only gets the newest result, through a queued signal. Used for smoothing and thinning long
curves, reading training logs and writing CSV files (:mod:`draw_studio.gui.curves`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from ..errors import DrawStudioError, first_line

PROGRESS_EVERY_S = 0.1  # progress reaches the window at most this often

# work(progress, cancelled) -> result; progress(done, total); cancelled() -> bool
Work = Callable[[Callable[[int, int], None], Callable[[], bool]], object]


class _Relay(QObject):
    """Carries results from the lane's thread to the window thread (queued: it lives in the window thread)."""

    done = Signal(int, object)
    failed = Signal(int, str)
    progress = Signal(int, int, int)


@dataclass
class _Request:
    token: int
    work: Work
    done: Callable[[object], None]
    failed: Callable[[str], None] | None
    progress: Callable[[int, int], None] | None
    cancel: threading.Event = field(default_factory=threading.Event)


class _Runnable(QRunnable):
    def __init__(self, request: _Request, relay: _Relay) -> None:
        super().__init__()
        self.request, self.relay = request, relay
        self._last_progress = 0.0

    def _progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_S or done >= total:
            self._last_progress = now
            self.relay.progress.emit(self.request.token, int(done), int(total))

    def run(self) -> None:
        request = self.request
        try:
            result = request.work(self._progress, request.cancel.is_set)
        except DrawStudioError as exc:
            self.relay.failed.emit(request.token, str(exc))
        except MemoryError:
            self.relay.failed.emit(request.token, "not enough memory for this")
        except Exception as exc:  # noqa: BLE001 - report, never take the window down
            if not request.cancel.is_set():
                logging.getLogger(__name__).debug("curve task failed", exc_info=True)  # never on stderr
            self.relay.failed.emit(request.token, f"{type(exc).__name__}: {first_line(exc, 200)}")
        else:
            self.relay.done.emit(request.token, result)


class BackgroundLane(QObject):
    """Runs requests one at a time off the window thread; only the newest one's result is delivered.

    Parameters
    ----------
    name : str
        For the thread's name (debugging).
    """

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._pool.setObjectName(name)
        self._relay = _Relay()
        self._relay.done.connect(self._on_done)
        self._relay.failed.connect(self._on_failed)
        self._relay.progress.connect(self._on_progress)
        self._token = 0
        self._running: _Request | None = None
        self._waiting: _Request | None = None

    @property
    def busy(self) -> bool:
        """A request runs or waits."""
        return self._running is not None or self._waiting is not None

    def submit(self, work: Work, done: Callable[[object], None], failed: Callable[[str], None] | None = None,
               progress: Callable[[int, int], None] | None = None) -> int:
        """Run ``work(progress, cancelled)`` off the window thread; returns the request's token.

        ``done(result)``, ``failed(message)`` and ``progress(done, total)`` are
        called in the window thread, and only while this is the newest request:
        an older request still running is told to stop (its ``cancelled()``
        turns true) and whatever it returns is dropped.
        """
        self._token += 1
        request = _Request(self._token, work, done, failed, progress)
        if self._running is not None:
            self._running.cancel.set()
        self._waiting = request
        self._start_waiting()
        return request.token

    def cancel(self) -> None:
        """Drop every request (the running one is told to stop; nothing is delivered)."""
        self._token += 1
        self._waiting = None
        if self._running is not None:
            self._running.cancel.set()

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the lane's thread is idle (results still arrive through the event loop)."""
        return self._pool.waitForDone(timeout_ms)

    def _start_waiting(self) -> None:
        if self._running is None and self._waiting is not None:
            self._running, self._waiting = self._waiting, None
            self._pool.start(_Runnable(self._running, self._relay))

    def _finish(self, token: int) -> _Request | None:
        """The request that ended, if it is still the newest one; starts the next."""
        request = self._running if self._running is not None and self._running.token == token else None
        if request is not None:
            self._running = None
        self._start_waiting()
        return request if request is not None and token == self._token else None

    def _on_done(self, token: int, result: object) -> None:
        request = self._finish(token)
        if request is not None:
            request.done(result)

    def _on_failed(self, token: int, message: str) -> None:
        request = self._finish(token)
        if request is not None and request.failed is not None:
            request.failed(message)

    def _on_progress(self, token: int, done: int, total: int) -> None:
        if token == self._token and self._running is not None and self._running.progress is not None:
            self._running.progress(done, total)
