"""The Explore dock: one tab per tool that asks the model a question (issue "Ask DRAW questions").

It only assembles the tool panels (one file each): draw your own (:mod:`.drawing_pad`), fork at
step t and the commitment curve (:mod:`.fork_panel`), edit a latent (:mod:`.latent_edit_panel`),
move a window (:mod:`.window_edit_panel`) and interpolate (:mod:`.interpolation_panel`). The
window's redraw timer refreshes the tab in view; a click on a cell of the Latents heatmap opens
the latent editor on that cell.
"""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from .document import Document
from .drawing_pad import DrawingPadPanel
from .explore_common import LatestRun, ModelFinder, raise_dock_of
from .fork_panel import ForkPanel
from .interpolation_panel import InterpolationPanel
from .jobs import JobRunner
from .latent_edit_panel import LatentEditPanel
from .panel import Panel
from .window_edit_panel import WindowEditPanel

TOOLS = ("drawing", "fork", "latent", "window", "interpolate")


class ExploreDock(Panel):
    """The tool panels as tabs.

    Parameters
    ----------
    state : Document
    service : ModelService
        Gives the test images (the Training panel's data folder).
    latents : LatentsPanel, optional
        Its ``cell_clicked`` opens the latent editor.
    """

    title = "Explore"
    dock_name = "exploreDock"

    def __init__(self, state: Document, service, latents=None, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.finder = ModelFinder(state)
        self.drawing = DrawingPadPanel(state, service, self.finder)
        self.fork = ForkPanel(state, self.finder)
        self.latent = LatentEditPanel(state, self.finder)
        self.window_edit = WindowEditPanel(state, self.finder)
        self.interpolation = InterpolationPanel(state, service, self.finder)
        self.tools = dict(zip(TOOLS, (self.drawing, self.fork, self.latent, self.window_edit, self.interpolation)))
        self.tabs = QTabWidget(objectName="exploreTabs")
        self._pages = {}
        for tool in self.tools.values():  # in a scroll area: the dock never widens the window
            page = QScrollArea(frameShape=QFrame.Shape.NoFrame, widgetResizable=True)
            page.setWidget(tool)
            self._pages[tool] = page
            self.tabs.addTab(page, tool.title)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self.tabs.currentChanged.connect(lambda _: self.refresh())
        if latents is not None:
            latents.cell_clicked.connect(self.edit_cell)
            self.latents = latents

    @property
    def current_tool(self) -> Panel:
        """The tool panel in view."""
        return self.tabs.currentWidget().widget()

    def show_tool(self, name: str) -> Panel:
        """Bring tool ``name`` (one of ``TOOLS``) and this dock to the front."""
        tool = self.tools[name]
        self.tabs.setCurrentWidget(self._pages[tool])
        raise_dock_of(self)
        return tool

    def edit_cell(self, step: int, latent: int) -> None:
        """A click on the Latents heatmap: edit z_step[latent] of the shown image."""
        self.show_tool("latent")
        if self.latent.select_cell(step, latent) and hasattr(self, "latents"):
            self.latents.select_cell(step, latent)

    def refresh(self) -> None:
        """Redraw the tool in view (the others redraw when they come into view)."""
        page = self.tabs.currentWidget()
        if page is not None and self.isVisible():
            page.widget().refresh()

    def redraw(self) -> None:  # the tools redraw themselves (refresh)
        pass

    def wait(self, timeout_ms: int = 60_000) -> None:
        """Block until every tool's background run has ended (closing, tests)."""
        for tool in self.tools.values():
            for runner in vars(tool).values():
                if isinstance(runner, (LatestRun, JobRunner)):
                    runner.wait(timeout_ms)
