"""What every panel shares: it draws from the open document, only when something changed, from the window's timer."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .document import Document


class Panel(QWidget):
    """A dock's content. Subclasses implement :meth:`redraw`; signals only :meth:`mark_dirty`.

    The window's redraw timer (at most ~30 Hz) calls :meth:`refresh`, so a
    burst of changes costs one redraw. ``state`` (also ``document``) is the
    open :class:`~draw_studio.gui.document.Document`: a panel draws only what
    it holds, and says what the source lacks (:meth:`Document.lacks`). A
    panel out of view whose only change is the timeline's step
    (:attr:`only_step_changed`) is drawn when it comes into view; one that
    never shows the step sets ``follows_step = False``.
    """

    title = ""
    dock_name = ""
    follows_step = True  # False: the timeline's step changes nothing the panel shows (a step leaves it clean)

    def __init__(self, state: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = self.document = state
        self._dirty = True
        self._changed_more_than_step = True  # since the last redraw, something besides the timeline's step changed
        self._step_moving = False  # step_changed is being delivered (set before mark_dirty hears it, cleared after)
        for signal in (state.source_changed, state.traces_changed, state.trace_changed, state.image_changed):
            signal.connect(self.mark_dirty)
        if self.follows_step:
            state.step_changed.connect(self._step_begins)
            state.step_changed.connect(self.mark_dirty)  # a subclass that stops following the step disconnects it
            state.step_changed.connect(self._step_ends)

    def message_above(self, view: QWidget, object_name: str) -> QLabel:
        """Lay out a grey, wrapping message line above ``view`` (which takes the rest); return the label."""
        message = QLabel(objectName=object_name)
        message.setStyleSheet("color: #9a9a9a;")
        message.setWordWrap(True)
        message.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)  # at the top when alone
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(message)
        layout.addWidget(view, 1)
        return message

    def mark_dirty(self, *_) -> None:
        self._dirty = True
        if not self._step_moving:
            self._changed_more_than_step = True

    def _step_begins(self, *_) -> None:
        self._step_moving = True

    def _step_ends(self, *_) -> None:
        self._step_moving = False

    @property
    def dirty(self) -> bool:
        """Something changed since the last redraw."""
        return self._dirty

    @property
    def only_step_changed(self) -> bool:
        """The timeline's step is all that changed since the last redraw (a hidden panel may wait until shown)."""
        return self._dirty and not self._changed_more_than_step

    def refresh(self) -> None:
        """Redraw if anything changed since the last redraw."""
        if self._dirty:
            self._dirty = self._changed_more_than_step = False
            self.redraw()

    def redraw(self) -> None:
        raise NotImplementedError


def out_of_view(widget: QWidget) -> bool:
    """``widget`` cannot be seen: hidden, or in a dock whose tab is behind another's (Qt keeps those "visible",
    moved out of their window)."""
    if not widget.isVisible():
        return True
    top = widget.window()
    return not top.rect().intersects(QRect(widget.mapTo(top, QPoint(0, 0)), widget.size()))
