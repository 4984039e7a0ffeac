"""Keys that work anywhere in a window unless a text field is being edited.

A :class:`WindowKeys` filter sees every key press of the application before
the widget with focus does. For a press inside its window (the window or a
panel floating from it; not a dialog, not while a popup is open) it runs the
action bound to the key, unless the focus is in a text field the user is
editing. A text field counts as being edited once the user clicked or
tabbed into it, or typed into it; Return, Enter or Escape end the editing,
and so does focus moving elsewhere. A field that got focus by itself (e.g.
the first field of the window after a file was opened) is not being edited:
Left and Right then move the step rather than the text cursor.

Navigation keys (arrows, Home/End, Page Up/Down, Space) work with focus in
a field that is not being edited; letter keys only when no text field has
focus at all, so typing a letter into a field never triggers an action.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

USER_FOCUS = (Qt.FocusReason.MouseFocusReason, Qt.FocusReason.TabFocusReason, Qt.FocusReason.BacktabFocusReason,
              Qt.FocusReason.ShortcutFocusReason)
KEEP_FOCUS_STATE = (Qt.FocusReason.ActiveWindowFocusReason, Qt.FocusReason.PopupFocusReason)
END_EDITING = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape)
NAVIGATION = (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Home, Qt.Key.Key_End,
              Qt.Key.Key_PageUp, Qt.Key.Key_PageDown, Qt.Key.Key_Space)
PLAIN = (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier)


def text_field(widget: QWidget | None) -> QWidget | None:
    """The editable text field ``widget`` is or belongs to (a spin box's or combo box's line edit), or None."""
    if widget is None:
        return None
    parent = widget.parentWidget()
    if isinstance(widget, QLineEdit) and isinstance(parent, QAbstractSpinBox | QComboBox):
        widget = parent
    if isinstance(widget, QAbstractSpinBox):
        return None if widget.isReadOnly() else widget
    if isinstance(widget, QComboBox):
        return widget if widget.isEditable() else None
    if isinstance(widget, QLineEdit | QTextEdit | QPlainTextEdit):
        return None if widget.isReadOnly() else widget
    return None


class WindowKeys(QObject):
    """Bind keys to actions for the whole of ``window`` (see the module docstring).

    Parameters
    ----------
    window : QWidget
        The top-level window the keys act in.
    actions : dict
        Qt key -> callable with no argument.
    """

    def __init__(self, window: QWidget, actions: dict[int, Callable[[], None]],
                 parent: QObject | None = None) -> None:
        super().__init__(parent or window)
        self.window = window
        self.actions = dict(actions)
        self.editing: QWidget | None = None  # the text field being edited, if any
        QApplication.instance().installEventFilter(self)

    def stop_editing(self) -> None:
        """Forget that a field is being edited (e.g. after focus was moved on purpose)."""
        self.editing = None

    def _in_window(self, widget: QWidget) -> bool:
        """True for a widget of the window or of a panel floating from it (not a dialog)."""
        top = widget.window()
        if isinstance(top, QDialog):
            return False
        while top is not None:
            if top is self.window:
                return True
            top = top.parentWidget()
        return False

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        kind = event.type()
        if kind not in (QEvent.Type.KeyPress, QEvent.Type.FocusIn, QEvent.Type.FocusOut,
                        QEvent.Type.MouseButtonPress):
            return False
        if not isinstance(watched, QWidget):
            return False
        if kind == QEvent.Type.FocusIn:
            field = text_field(watched)
            if event.reason() not in KEEP_FOCUS_STATE:
                self.editing = field if field is not None and event.reason() in USER_FOCUS else None
        elif kind == QEvent.Type.FocusOut:
            if event.reason() not in KEEP_FOCUS_STATE and text_field(watched) is self.editing:
                self.editing = None
        elif kind == QEvent.Type.MouseButtonPress:
            field = text_field(watched)
            if field is not None and field.hasFocus():
                self.editing = field  # a click into the field that has focus: the user means to edit it
        else:
            return self._on_key(watched, event)
        return False

    def _on_key(self, watched: QWidget, event) -> bool:
        field = text_field(QApplication.focusWidget())
        key = event.key()
        if field is not None and field is self.editing:
            if key in END_EDITING:
                self.editing = None
            return False
        action = self.actions.get(key)
        if (action is None or event.modifiers() not in PLAIN or QApplication.activePopupWidget() is not None
                or not self._in_window(watched)):
            if field is not None and (event.text().isprintable() and event.text() or key in (
                    Qt.Key.Key_Backspace, Qt.Key.Key_Delete)):
                self.editing = field  # typing into a field starts editing it
            return False
        if field is not None and key not in NAVIGATION:
            self.editing = field  # a letter typed into a field is text, not a command
            return False
        action()
        event.accept()
        return True
