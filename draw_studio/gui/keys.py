"""Keys that work anywhere in a window unless a text field is being edited.

A :class:`WindowKeys` binds each key to an action with a window-wide
``QShortcut`` (Qt matches shortcuts in C++: no Python runs for the window's
other events). Qt first offers a key to the widget with focus as a
"shortcut override": a text field claims the keys it edits with, so the
shortcut does not fire. Each text field of the window gets a small event
filter that decides that claim: a field claims keys only while the user is
editing it. A text field counts as being edited once the user clicked or
tabbed into it, or typed into it; Return, Enter or Escape end the editing,
and so does focus moving elsewhere. A field that got focus by itself (e.g.
the first field of the window after a file was opened) is not being edited:
Left and Right then move the step rather than the text cursor.

Navigation keys (arrows, Home/End, Page Up/Down, Space) work with focus in
a field that is not being edited; letter keys only when no text field has
focus at all, so typing a letter into a field never triggers an action. A
dialog (another window) and an open popup keep their keys.

An application-wide event filter would do the same with less code, but it
calls Python for every event of the program (timers, paints, posted calls:
~2,000 a second while a big log opens), and each call must take the GIL back
from whatever background thread holds it: measured, that made the window
wait tens of milliseconds at a time while background threads read a log.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
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


TEXT_FIELD_TYPES = (QLineEdit, QAbstractSpinBox, QComboBox, QTextEdit, QPlainTextEdit)
WATCHED = (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride, QEvent.Type.FocusIn, QEvent.Type.FocusOut,
           QEvent.Type.MouseButtonPress)


class WindowKeys(QObject):
    """Bind keys to actions for the whole of ``window`` (see the module docstring).

    Parameters
    ----------
    window : QWidget
        The top-level window the keys act in (also in panels floating from it).
    actions : dict
        Qt key -> callable with no argument.
    """

    def __init__(self, window: QWidget, actions: dict[int, Callable[[], None]],
                 parent: QObject | None = None) -> None:
        super().__init__(parent or window)
        self.window = window
        self.actions = dict(actions)
        self.editing: QWidget | None = None  # the text field being edited, if any
        self.shortcuts = []
        for key, action in self.actions.items():
            shortcut = QShortcut(QKeySequence(key), window)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)  # also in a panel floating from the window
            shortcut.setAutoRepeat(True)
            shortcut.activated.connect(action)
            self.shortcuts.append(shortcut)
        self._mark = f"watched_by_window_keys_{id(self)}"  # a property of every text field this filters
        for widget in window.findChildren(QWidget):
            self._watch(widget)
        QApplication.instance().focusChanged.connect(self._on_focus_changed)

    def stop_editing(self) -> None:
        """Forget that a field is being edited (e.g. after focus was moved on purpose)."""
        self.editing = None

    def _watch(self, widget: QWidget | None) -> QWidget | None:
        """Put the filter on ``widget`` if it is (part of) a text field not yet watched; the field or None."""
        if widget is None or not isinstance(widget, TEXT_FIELD_TYPES):
            return None
        if not widget.property(self._mark):
            widget.setProperty(self._mark, True)
            widget.installEventFilter(self)
            inner = widget.lineEdit() if isinstance(widget, QAbstractSpinBox | QComboBox) else None
            if inner is not None:
                self._watch(inner)
        return text_field(widget)

    def _on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        """A field created after the window (a new panel) is watched from its first focus on; it got that
        focus from a click if a mouse button is down (its FocusIn came before the filter did)."""
        if new is None or new.property(self._mark):
            return
        field = self._watch(new)
        if field is not None and QApplication.mouseButtons() != Qt.MouseButton.NoButton:
            self.editing = field

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        kind = event.type()
        if kind not in WATCHED:
            return False
        field = text_field(watched)
        if field is None:
            return False
        if kind == QEvent.Type.FocusIn:
            if event.reason() not in KEEP_FOCUS_STATE:
                self.editing = field if event.reason() in USER_FOCUS else None
        elif kind == QEvent.Type.FocusOut:
            if event.reason() not in KEEP_FOCUS_STATE and field is self.editing:
                self.editing = None
        elif kind == QEvent.Type.MouseButtonPress:
            if field.hasFocus():
                self.editing = field  # a click into the field that has focus: the user means to edit it
        elif kind == QEvent.Type.ShortcutOverride:
            return self._lets_shortcut_run(field, event)
        elif field is self.editing:
            if event.key() in END_EDITING:
                self.editing = None
        elif event.text().isprintable() and event.text() or event.key() in (Qt.Key.Key_Backspace,
                                                                              Qt.Key.Key_Delete):
            self.editing = field  # typing into a field starts editing it
        return False

    def _lets_shortcut_run(self, field: QWidget, event) -> bool:
        """True (the field does not claim the key) for an action's navigation key in a field not being edited."""
        key = event.key()
        if (field is self.editing or key not in NAVIGATION or key not in self.actions
                or event.modifiers() not in PLAIN):
            return False  # the field decides, as it does without us (it claims the keys it edits with)
        event.ignore()
        return True
