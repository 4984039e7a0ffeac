"""The two plots of the Compare dock: both models' KL per step as bars, and the per-image bounds as a scatter.

Widgets only (the Compare panel, :mod:`~draw_studio.gui.compare_panel`, says what they show): every
number comes from a :class:`~draw_studio.explore.compare.Comparison`.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal

COLOUR_A = "#4da6ff"
COLOUR_B = "#ff9f43"
SELECTED_COLOUR = "#ffd400"
BAR_WIDTH = 0.4  # of one step: A's bars left of t, B's right of it
Y_BOUND_B, Y_DIFFERENCE = "bound B", "B − A"
EMPTY_KL_NOTE = "no image compared yet"


class KlBars(pg.PlotWidget):
    """KL(Q(z_t|x) || N(0, I)) per step t of the selected image: model A's bars beside model B's, a legend,
    and a cursor on the shown step."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("compareKlPlot")
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.showGrid(y=True, alpha=0.2)
        plot.setLabel("bottom", "step t")
        plot.setLabel("left", "KL (nats)")
        plot.setTitle("KL per step of the selected image", size="9pt")
        self.legend = plot.addLegend(offset=(-8, 8), labelTextSize="8pt")
        self.bars_a = pg.BarGraphItem(x=[], height=[], width=BAR_WIDTH, brush=COLOUR_A, pen=pg.mkPen(None), name="A")
        self.bars_b = pg.BarGraphItem(x=[], height=[], width=BAR_WIDTH, brush=COLOUR_B, pen=pg.mkPen(None), name="B")
        self.bars_a.setObjectName("compareKlBarsA")
        self.bars_b.setObjectName("compareKlBarsB")
        plot.addItem(self.bars_a)
        plot.addItem(self.bars_b)
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen(SELECTED_COLOUR, width=1))
        plot.addItem(self.cursor)
        self.empty_note = pg.TextItem(EMPTY_KL_NOTE, color="#9a9a9a", anchor=(0.5, 0.5))
        self.empty_note.setPos(0.5, 0.5)
        plot.addItem(self.empty_note, ignoreBounds=True)

    def show_kl(self, kl_a: np.ndarray | None, kl_b: np.ndarray | None, names: tuple[str, str] = ("A", "B")) -> None:
        """Bars of ``kl_a`` (T_a,) and ``kl_b`` (T_b,) against t = 1..T (None: none), named in the legend."""
        self.legend.clear()
        steps = 1  # the most steps of the two
        for bars, kl, name, shift in ((self.bars_a, kl_a, names[0], -BAR_WIDTH / 2),
                                      (self.bars_b, kl_b, names[1], BAR_WIDTH / 2)):
            if kl is None:
                bars.setOpts(x=[], height=[])
                continue
            t = np.arange(1, len(kl) + 1)
            bars.setOpts(x=t + shift, height=np.asarray(kl, dtype=np.float64), width=BAR_WIDTH)
            self.legend.addItem(bars, f"{name}: {float(np.sum(kl)):.1f} nats")
            steps = max(steps, len(kl))
        plot = self.getPlotItem()
        shown = kl_a is not None or kl_b is not None
        self.empty_note.setVisible(not shown)
        self.cursor.setVisible(shown)
        if shown:
            plot.setXRange(0.5, steps + 0.5, padding=0.01)
            plot.enableAutoRange(axis=pg.ViewBox.YAxis)
        else:  # no steps to show: the unit square with the note, not a range around a step that does not exist
            plot.setRange(xRange=(0.0, 1.0), yRange=(0.0, 1.0), padding=0.0)

    def bar_heights(self, side: str) -> np.ndarray:
        """The heights drawn for model ``side`` (``"A"`` or ``"B"``)."""
        bars = self.bars_a if side == "A" else self.bars_b
        height = bars.opts.get("height")
        return np.asarray([] if height is None else height, dtype=np.float64)

    def set_step(self, step: int) -> None:
        self.cursor.setValue(step)


class BoundScatter(pg.PlotWidget):
    """One point per image: x = its bound under A, y = its bound under B (or B − A); a click selects it.

    Signals
    -------
    image_clicked(int) : the index of the image whose point was clicked
    """

    image_clicked = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("compareScatter")
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setLabel("bottom", "bound A (nats)")
        self.points = pg.ScatterPlotItem(size=7, pen=pg.mkPen(None), brush=pg.mkBrush(200, 200, 200, 170),
                                         hoverable=True, hoverSize=10, tip=None)
        self.points.setObjectName("compareScatterPoints")
        self.selected = pg.ScatterPlotItem(size=13, pen=pg.mkPen(SELECTED_COLOUR, width=2), brush=pg.mkBrush(None))
        self.selected.setObjectName("compareScatterSelected")
        self.reference = pg.PlotDataItem(pen=pg.mkPen("#8a8a8a", width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
        plot.addItem(self.reference, ignoreBounds=True)  # the view fits the points, the line runs across
        plot.addItem(self.points)
        plot.addItem(self.selected)
        self.points.sigClicked.connect(self._on_clicked)
        self.x = np.zeros(0)
        self.y = np.zeros(0)
        self.y_axis = Y_BOUND_B

    def show_bounds(self, bounds_a: np.ndarray, bounds_b: np.ndarray, y_axis: str, selected: int) -> None:
        """Plot the images' bounds (n,) with ``y_axis`` (:data:`Y_BOUND_B` or :data:`Y_DIFFERENCE`); frame
        image ``selected``. The dashed line is y = x (no difference), or y = 0."""
        self.y_axis = y_axis
        self.x = np.asarray(bounds_a, dtype=np.float64)
        b = np.asarray(bounds_b, dtype=np.float64)
        self.y = b - self.x if y_axis == Y_DIFFERENCE else b
        self.points.setData(x=self.x, y=self.y, data=np.arange(len(self.x)))
        plot = self.getPlotItem()
        plot.setLabel("left", "B − A (nats)" if y_axis == Y_DIFFERENCE else "bound B (nats)")
        if len(self.x):
            low, high = float(min(self.x.min(), b.min())), float(max(self.x.max(), b.max()))
            if y_axis == Y_DIFFERENCE:
                self.reference.setData([self.x.min(), self.x.max()], [0.0, 0.0])
            else:
                self.reference.setData([low, high], [low, high])
        else:
            self.reference.setData([], [])
        plot.autoRange(padding=0.06)
        self.select(selected)

    def select(self, index: int) -> None:
        """Frame the point of image ``index`` (-1 or out of range: none)."""
        if 0 <= index < len(self.x):
            self.selected.setData(x=[self.x[index]], y=[self.y[index]])
        else:
            self.selected.setData(x=[], y=[])

    def point_position(self, index: int) -> tuple[float, float]:
        """Where image ``index``'s point is, in the plot's coordinates."""
        return float(self.x[index]), float(self.y[index])

    def _on_clicked(self, _item, points, _event=None) -> None:
        if len(points):
            self.image_clicked.emit(int(points[0].data()))
