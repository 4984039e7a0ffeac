"""The Timeline's attention plots: gx, gy, δ, σ² and γ of the read and write windows against the step t.

One plot per parameter (x axes linked), the read window's curve red, the write window's green, and a
yellow cursor at the timeline's step. Their axes are painted from pixmaps (:mod:`~draw_studio.gui.axis_painting`):
the cursors move over the plots' grids at every step.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from ..attention import PARAM_COLUMNS
from .axis_painting import cache_axes

PARAM_TITLES = {"gx": "centre gx", "gy": "centre gy", "delta": "stride δ", "sigma2": "variance σ²",
                "gamma": "intensity γ"}
CURSOR_COLOUR = "#ffd400"


class AttentionPlots(pg.GraphicsLayoutWidget):
    """Five plots, one per attention parameter, with a legend in the sixth cell.

    Parameters
    ----------
    read_colour, write_colour : str
        The colours of the read and the write window's curves.
    """

    def __init__(self, read_colour: str, write_colour: str) -> None:
        super().__init__()
        self.setObjectName("attentionPlots")
        self.setMinimumHeight(150)
        self.plots: dict[str, pg.PlotItem] = {}
        self.read_curves: dict[str, pg.PlotDataItem] = {}
        self.write_curves: dict[str, pg.PlotDataItem] = {}
        self.cursors: list[pg.InfiniteLine] = []
        for i, name in enumerate(PARAM_COLUMNS):
            plot = self.addPlot(row=i // 3, col=i % 3, title=PARAM_TITLES[name])
            plot.titleLabel.setText(PARAM_TITLES[name], size="8pt")
            plot.setMenuEnabled(False)
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot.getAxis("left").setWidth(34)
            self.read_curves[name] = plot.plot(pen=pg.mkPen(read_colour, width=1.5))
            self.write_curves[name] = plot.plot(pen=pg.mkPen(write_colour, width=1.5))
            cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen(CURSOR_COLOUR, width=1))
            plot.addItem(cursor, ignoreBounds=True)  # a move never makes the view recompute its range
            self.cursors.append(cursor)
            if self.plots:
                plot.setXLink(next(iter(self.plots.values())))
            self.plots[name] = plot
        cache_axes(*self.plots.values())
        legend = self.addLabel(
            f"<span style='color:{read_colour}'>━ read</span><br>"
            f"<span style='color:{write_colour}'>━ write</span><br>"
            f"<span style='color:{CURSOR_COLOUR}'>│ step t</span><br>x axis: step t", row=1, col=2)
        legend.setMaximumWidth(120)

    def show_params(self, trace, image: int) -> None:
        """The curves of image ``image`` of ``trace`` (a DRAW or a classify trace: read, and write if it has one).

        Each plot's range is set here, once per image: with automatic ranges, every move of the cursors
        would make each plot recompute its range from its curves.
        """
        t = np.arange(1, trace.steps + 1)
        for column, name in enumerate(PARAM_COLUMNS):
            shown = []
            for params, curves in ((trace.read_params, self.read_curves),
                                   (getattr(trace, "write_params", None), self.write_curves)):
                if params is None:
                    curves[name].setData([], [])
                else:
                    values = params[image, :, column]  # (T,)
                    curves[name].setData(t, values)
                    shown.append(values)
            self.plots[name].setYRange(*value_range(np.concatenate(shown) if shown else np.zeros(0)), padding=0.08)
        self.plots["gx"].setXRange(0, trace.steps, padding=0.02)

    def clear(self) -> None:
        """No curves."""
        for curves in (self.read_curves, self.write_curves):
            for curve in curves.values():
                curve.setData([], [])

    def set_step(self, step: int) -> None:
        """Put the cursors at step ``step``."""
        for cursor in self.cursors:
            cursor.setValue(step)


def value_range(values: np.ndarray) -> tuple[float, float]:
    """(low, high) of the finite ``values``, widened around a constant, (0, 1) without any."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if high - low <= 1e-9 * max(abs(low), abs(high), 1e-12):
        half = max(abs(low) * 0.05, 1e-3)  # a constant sits in the middle
        return low - half, high + half
    return low, high
