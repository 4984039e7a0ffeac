"""The window's redraw timer: dirty panels redrawn ~30 times a second, one per event-loop turn."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from .panel import out_of_view

REDRAW_INTERVAL_MS = 33  # at most ~30 redraws per second


class PanelRedrawer(QObject):
    """Redraws the panels of ``panels`` (a list the window may still append to) whose data changed.

    Parameters
    ----------
    panels : list
        The window's panels (each with ``refresh()``, ``dirty``, ``only_step_changed`` and ``title``).
    is_shown : callable
        True while the window is visible: only then may a panel out of view wait for step moves.
    report : callable
        Takes the one-line text of a panel that failed to draw (the status bar).
    parent : QObject
        Owner of the timers (they die with it).
    """

    def __init__(self, panels: list, is_shown: Callable[[], bool], report: Callable[[str], None],
                 parent: QObject) -> None:
        super().__init__(parent)
        self.panels = panels
        self.is_shown = is_shown
        self.report = report
        self.errors: list[str] = []  # panels that failed to draw, in order
        self._queue: list = []  # dirty panels still to redraw, one per event-loop turn
        self._turn = QTimer(self, singleShot=True, interval=0)  # the next turn
        self._turn.timeout.connect(self._next)
        self.timer = QTimer(self, interval=REDRAW_INTERVAL_MS)
        self.timer.timeout.connect(self._in_turns)

    def start(self) -> None:
        """Start the ~30 Hz timer."""
        self.timer.start()

    def stop(self) -> None:
        """Stop redrawing (the window is closing): the timer, the next turn and the panels still queued."""
        self.timer.stop()
        self._turn.stop()
        self._queue.clear()

    def redraw_now(self) -> None:
        """Redraw every dirty panel at once (what the timer does in turns)."""
        for panel in self.panels:
            self.refresh(panel)

    def refresh(self, panel) -> None:
        """Redraw ``panel``; a panel that fails to draw never takes the window down: the failure goes to
        ``report`` and :attr:`errors`."""
        try:
            panel.refresh()
        except Exception as exc:  # noqa: BLE001 - one panel's bug must not crash the window
            text = f"could not draw the {panel.title} panel ({type(exc).__name__}: {exc})"
            self.errors.append(text)
            self.report(text)

    def catch_up(self, panel) -> None:
        """A dock came into view: draw the step moves its panel waited for before it is painted."""
        if panel.only_step_changed:
            self.refresh(panel)

    def _in_turns(self) -> None:
        """The timer's redraw: the dirty panels one per event-loop turn, each painted before the next
        is drawn, so that a change that dirties every panel (opening a file, a step) never holds the
        event loop for the sum of all their paints. A panel out of view (a tab behind another, a closed
        dock) that only missed step moves waits until it is shown (:meth:`catch_up`)."""
        if not self._queue:
            shown = self.is_shown()
            self._queue = [panel for panel in self.panels
                           if panel.dirty and not (shown and panel.only_step_changed and out_of_view(panel))]
            self._next()

    def _next(self) -> None:
        if self._queue:
            self.refresh(self._queue.pop(0))
        if self._queue:
            self._turn.start()
