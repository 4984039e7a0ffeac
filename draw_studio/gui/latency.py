"""How late the event loop runs: a 10 ms timer that records its lateness.

A benchmark or a test starts a :class:`LatencyProbe`, lets the window work
(e.g. train), then reads :meth:`LatencyProbe.summary`. Lateness is the time
between when a tick was due (previous tick + interval) and when it ran: a
direct measure of how long the window could not react to the user.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer


class LatencyProbe(QObject):
    """A precise ``interval_ms`` timer recording how late each tick fires (ms)."""

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self._last = 0.0
        self._lateness: list[float] = []

    def start(self) -> None:
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def reset(self) -> None:
        self._lateness.clear()
        self._last = time.perf_counter()

    def _tick(self) -> None:
        now = time.perf_counter()
        self._lateness.append(max(0.0, (now - self._last) * 1000.0 - self.interval_ms))
        self._last = now

    @property
    def lateness_ms(self) -> np.ndarray:
        """Lateness of every tick so far, in ms."""
        return np.asarray(self._lateness, dtype=np.float64)

    def summary(self) -> dict[str, float]:
        """``count``, ``p50``, ``p90``, ``p99`` and ``max`` lateness in ms (NaN without ticks)."""
        values = self.lateness_ms
        if values.size == 0:
            return {"count": 0, "p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "max": float("nan")}
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return {"count": int(values.size), "p50": float(p50), "p90": float(p90), "p99": float(p99),
                "max": float(values.max())}


def run_event_loop_until(condition, timeout_s: float, poll_ms: int = 20) -> bool:
    """Run the Qt event loop (normally, not by polling) until ``condition()`` or the timeout."""
    from PySide6.QtCore import QEventLoop

    loop = QEventLoop()
    deadline = time.perf_counter() + timeout_s
    checker = QTimer()
    checker.setInterval(poll_ms)
    checker.timeout.connect(lambda: loop.quit() if condition() or time.perf_counter() > deadline else None)
    checker.start()
    if not condition():
        loop.exec()
    checker.stop()
    return bool(condition())


def measure_while_training(window, seconds: float = 20.0, start_timeout_s: float = 120.0,
                           scrub_hz: float = 0.0) -> dict[str, float]:
    """Lateness of the event loop while the window's Training panel trains with its current settings.

    Starts training, waits for the first optimiser steps (data loading is
    not measured), probes for ``seconds`` while the window redraws as usual,
    then stops training. With ``scrub_hz`` > 0 it first waits for the run's
    first live trace, then moves the timeline one step every ``1 / scrub_hz``
    seconds (0..T and round again), as a user dragging the step slider does.
    Returns :meth:`LatencyProbe.summary` plus ``steps`` (optimiser steps
    during the measurement) and ``scrubbed`` (timeline moves done).
    """
    panel, document = window.training, window.document
    panel.start()
    if not run_event_loop_until(lambda: panel.history.train.size >= 2 or not panel.controller.active,
                                start_timeout_s):
        raise RuntimeError("training did not start in time")
    if scrub_hz > 0 and not run_event_loop_until(
            lambda: (document.live and document.trace is not None) or not panel.controller.active, start_timeout_s):
        raise RuntimeError("the training run showed no live trace in time")
    moves = [0]

    def scrub() -> None:
        document.set_step((document.step + 1) % (document.steps + 1))
        moves[0] += 1

    scrubber = QTimer()
    scrubber.timeout.connect(scrub)
    first = panel.history.train.size
    probe = LatencyProbe(10)
    probe.start()
    if scrub_hz > 0:
        scrubber.start(max(1, int(round(1000 / scrub_hz))))
    run_event_loop_until(lambda: False, seconds)
    scrubber.stop()
    probe.stop()
    summary = probe.summary()
    summary["steps"] = panel.history.train.size - first
    summary["scrubbed"] = moves[0]
    panel.controller.stop(save_final=False)
    panel.controller.wait()
    return summary
