"""What every panel shares: redraw only when something changed, from the window's timer."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .state import StudioState


class Panel(QWidget):
    """A dock's content. Subclasses implement :meth:`redraw`; signals only :meth:`mark_dirty`.

    The window's redraw timer (at most ~30 Hz) calls :meth:`refresh`, so a
    burst of changes costs one redraw.
    """

    title = ""
    dock_name = ""

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._dirty = True
        state.trace_changed.connect(self.mark_dirty)
        state.image_changed.connect(self.mark_dirty)
        state.step_changed.connect(self.mark_dirty)

    def message_above(self, view: QWidget, object_name: str) -> QLabel:
        """Lay out a grey, wrapping message line above ``view`` (which takes the rest); return the label."""
        message = QLabel(objectName=object_name)
        message.setStyleSheet("color: #9a9a9a;")
        message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(message)
        layout.addWidget(view, 1)
        return message

    def mark_dirty(self, *_) -> None:
        self._dirty = True

    def refresh(self) -> None:
        """Redraw if anything changed since the last redraw."""
        if self._dirty:
            self._dirty = False
            self.redraw()

    def redraw(self) -> None:
        raise NotImplementedError
