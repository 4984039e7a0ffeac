"""Where the window's docks go: the default three columns, restoring a saved layout, floating docks.

Functions of a :class:`~PySide6.QtWidgets.QMainWindow` and its docks (by object name); the main window
calls them and keeps nothing of its own about layout.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDockWidget, QMainWindow, QTabBar

LAYOUT_VERSION = 1


def new_dock(window: QMainWindow, panel, on_shown: Callable[[object], None]) -> QDockWidget:
    """A movable, floatable, closable dock holding ``panel`` (named ``panel.dock_name``); ``on_shown(panel)``
    runs whenever the dock comes into view."""
    dock = QDockWidget(panel.title, window)
    dock.setObjectName(panel.dock_name)
    dock.setWidget(panel)
    dock.visibilityChanged.connect(lambda shown, panel=panel: shown and on_shown(panel))
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                     | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                     | QDockWidget.DockWidgetFeature.DockWidgetClosable)
    return dock


def tab_behind(window: QMainWindow, front: QDockWidget, back: QDockWidget) -> None:
    """Put the dock ``back`` in a tab behind the dock ``front``.

    ``back`` is hidden while it is tabified: tabifying a shown dock before the window is shown
    leaves a second, stale copy of the tab bar on screen for every tab group after the first
    (seen with PySide6 6.12; tests/test_gui_window.py checks for it).
    """
    back.hide()
    window.tabifyDockWidget(front, back)
    back.show()
    front.raise_()


def arrange_docks(window: QMainWindow, docks: dict[str, QDockWidget]) -> None:
    """Three columns: training and information | timeline and latents | gallery and glimpses."""
    d = docks
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, d["trainingDock"])
    window.splitDockWidget(d["trainingDock"], d["timelineDock"], Qt.Orientation.Horizontal)
    window.splitDockWidget(d["timelineDock"], d["galleryDock"], Qt.Orientation.Horizontal)
    window.splitDockWidget(d["trainingDock"], d["informationDock"], Qt.Orientation.Vertical)
    window.splitDockWidget(d["timelineDock"], d["latentsDock"], Qt.Orientation.Vertical)
    window.splitDockWidget(d["galleryDock"], d["glimpsesDock"], Qt.Orientation.Vertical)
    window.resize(1440, 900)
    apply_default_sizes(window, docks)


def apply_default_sizes(window: QMainWindow, docks: dict[str, QDockWidget]) -> None:
    """The columns' and rows' starting sizes in pixels (they only take once the window has its real size)."""
    d = docks
    window.resizeDocks([d["trainingDock"], d["timelineDock"], d["galleryDock"]], [440, 580, 420],
                       Qt.Orientation.Horizontal)
    window.resizeDocks([d["trainingDock"], d["informationDock"]], [520, 340], Qt.Orientation.Vertical)
    window.resizeDocks([d["timelineDock"], d["latentsDock"]], [560, 300], Qt.Orientation.Vertical)
    window.resizeDocks([d["galleryDock"], d["glimpsesDock"]], [470, 390], Qt.Orientation.Vertical)


def restore_layout(window: QMainWindow, state: QByteArray) -> bool:
    """``restoreState(state)``, then hide the tab bars it left behind: Qt (PySide6 6.12) builds new tab
    bars for the restored tab groups and leaves the old ones visible, stale copies that no longer
    switch tabs, exactly over or beside the new ones."""
    before = {bar: tab_texts(bar) for bar in window.findChildren(QTabBar) if bar.parent() is window}
    restored = window.restoreState(state, LAYOUT_VERSION)
    fresh = {tab_texts(bar) for bar in window.findChildren(QTabBar)
             if bar.parent() is window and bar not in before and bar.isVisibleTo(window)}
    for bar, texts in before.items():
        if texts in fresh:
            bar.hide()
    return restored


def tab_texts(bar: QTabBar) -> tuple[str, ...]:
    """The titles on a tab bar, left to right."""
    return tuple(bar.tabText(i) for i in range(bar.count()))


def bring_floating_docks_forward(window: QMainWindow, docks: dict[str, QDockWidget]) -> None:
    """Put every floating dock inside the screen and above the window (a restored layout may have
    left one where the screen no longer is, or under the window)."""
    for dock in docks.values():
        if not (dock.isFloating() and dock.isVisible()):
            continue
        screen = QGuiApplication.screenAt(dock.geometry().center()) or window.screen()
        area = screen.availableGeometry()
        frame = dock.geometry()
        width, height = min(frame.width(), area.width()), min(frame.height(), area.height())
        x = min(max(frame.x(), area.x()), area.x() + area.width() - width)
        y = min(max(frame.y(), area.y()), area.y() + area.height() - height)
        dock.setGeometry(x, y, width, height)
        if dock.windowHandle() is not None and window.windowHandle() is not None:
            dock.windowHandle().setTransientParent(window.windowHandle())  # kept above the window
        dock.raise_()
