"""A panel that redraws only while in view: a hidden tab waits, and draws what changed when it is shown."""

from __future__ import annotations

from .panel import Panel


class InViewPanel(Panel):
    """A :class:`~draw_studio.gui.panel.Panel` whose :meth:`refresh` redraws only while it is visible (e.g. a tab
    behind another), and which catches up when it is shown."""

    def refresh(self) -> None:
        """Redraw if anything changed, and only while in view (a hidden tab waits)."""
        if self._dirty and self.isVisible():
            self._dirty = False
            self.redraw()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.refresh()
