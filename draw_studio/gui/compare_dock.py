"""The Compare dock, a tab beside the Timeline: two models on one image, and their runs learning to draw.

It only assembles its two panels as tabs: the two models on the same test images with one step slider
(:mod:`.compare_panel`) and, when both checkpoints have a training log with snapshots beside them,
their samples at the same training step (:mod:`.compare_snapshots`). Kept out of the main window:
:func:`add_compare_dock` builds and docks it, :func:`show_compare` opens model B in it and brings it to
the front (``draw-studio gui A.ckpt --compare B.ckpt``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from .compare_panel import ComparePanel
from .compare_snapshots import CompareSnapshotsPanel
from .document import Document
from .explore_common import raise_dock_of
from .panel import Panel


class CompareDock(Panel):
    """The dock's content: the compare panel and the runs' snapshots, as tabs."""

    title = "Compare"
    dock_name = "compareDock"

    def __init__(self, state: Document, service, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.models = ComparePanel(state, service)
        self.snapshots = CompareSnapshotsPanel(state)
        self.tabs = QTabWidget(objectName="compareTabs")
        self.tabs.setDocumentMode(True)
        for panel in (self.models, self.snapshots):
            self.tabs.addTab(panel, panel.title)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self.models.model_b_changed.connect(lambda _: self._follow_models())
        state.source_changed.connect(self._follow_models)

    def _follow_models(self) -> None:
        """The snapshots tab follows the two compared checkpoints (A: the open one)."""
        loaded = self.document.model
        self.snapshots.set_models(loaded.path if loaded is not None else None, self.models.path_b)

    @property
    def dirty(self) -> bool:
        return self.models.dirty or self.snapshots.dirty

    def refresh(self) -> None:
        self.models.refresh()
        self.snapshots.refresh()

    def redraw(self) -> None:  # the panels redraw themselves (refresh)
        pass

    def wait(self, timeout_s: float = 600.0) -> str:
        """Block (processing events) until the comparison running or waiting has arrived; "" or why it failed."""
        self.snapshots.wait(int(timeout_s * 1000))
        return self.models.wait(timeout_s)


def add_compare_dock(window) -> CompareDock:
    """Build the Compare dock of ``window`` (a MainWindow) as a tab beside the Timeline, the Timeline in front."""
    compare = CompareDock(window.document, window.service)
    window.panels.append(compare)
    window.docks[compare.dock_name] = window._dock(compare)
    window.tab_behind("timelineDock", compare.dock_name)
    return compare


def _give_room(compare: CompareDock) -> None:
    """Most of its column's height for the Compare dock (the Latents dock below keeps a strip)."""
    from PySide6.QtCore import Qt

    window = compare.window()
    docks = getattr(window, "docks", {})
    dock, below = docks.get(compare.dock_name), docks.get("latentsDock")
    if dock is not None and below is not None and not dock.isFloating() and below.isVisible():
        window.resizeDocks([dock, below], [700, 160], Qt.Orientation.Vertical)


def show_compare(compare: CompareDock, path_b: str | Path, wait: bool = False) -> str:
    """Bring the Compare dock (its two-models tab) to the front and compare the open model with ``path_b``.

    With ``wait`` (the screenshot), return once the comparison is shown: "" or why it failed.
    """
    raise_dock_of(compare)
    compare.tabs.setCurrentWidget(compare.models)
    _give_room(compare)
    compare.models.open_model_b(path_b)
    if not wait:
        return ""
    failure = compare.wait()
    compare.refresh()
    return failure
