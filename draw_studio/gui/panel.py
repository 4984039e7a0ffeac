"""What every panel shares: it draws from the open document, only when something changed, from the window's timer."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .document import Document


class Panel(QWidget):
    """A dock's content. Subclasses implement :meth:`redraw`; signals only :meth:`mark_dirty`.

    The window's redraw timer (at most ~30 Hz) calls :meth:`refresh`, so a
    burst of changes costs one redraw. ``state`` (also ``document``) is the
    open :class:`~draw_studio.gui.document.Document`: a panel draws only what
    it holds, and says what the source lacks (:meth:`Document.lacks`).
    """

    title = ""
    dock_name = ""

    def __init__(self, state: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = self.document = state
        self._dirty = True
        for signal in (state.source_changed, state.traces_changed, state.trace_changed, state.image_changed,
                       state.step_changed):
            signal.connect(self.mark_dirty)

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

    @property
    def dirty(self) -> bool:
        """Something changed since the last redraw."""
        return self._dirty

    def refresh(self) -> None:
        """Redraw if anything changed since the last redraw."""
        if self._dirty:
            self._dirty = False
            self.redraw()

    def redraw(self) -> None:
        raise NotImplementedError
