"""The Timeline's attention plots: gx, gy, δ, σ² and γ of the read and write windows against the step t.

One plot per parameter (x axes linked), the read window's curve red, the write window's green, and a
yellow cursor at the timeline's step. Their axes are painted from pixmaps (:mod:`~draw_studio.gui.axis_painting`):
the cursors move over the plots' grids at every step.

The plots are short (two rows under the images): their titles take one line of 8 pt, and a y axis
(:class:`SpacedAxis`) labels two or three ticks, apart (:data:`MIN_LABEL_GAP`).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontMetrics

from ..attention import PARAM_COLUMNS
from .axis_painting import cache_axes

PARAM_TITLES = {"gx": "centre gx", "gy": "centre gy", "delta": "stride δ", "sigma2": "variance σ²",
                "gamma": "intensity γ"}
CURSOR_COLOUR = "#ffd400"
TITLE_SIZE_PT = 8
MIN_LABEL_GAP = 1.5  # labelled y ticks are this many label heights apart (centre to centre) where two fit,
CLOSEST_LABEL_GAP = 1.25  # and never closer than this: one label then


NICE_FACTORS = (1.0, 2.0, 2.5, 5.0)  # tick spacings: these times a power of ten


def nice_spacings(low: float, high: float) -> list[float]:
    """The tick spacings of :data:`NICE_FACTORS` (times a power of ten) from ``low`` (> 0) to ``high``, in order."""
    power = 10.0 ** math.floor(math.log10(low))
    spacings = []
    while not spacings or spacings[-1] < high:
        spacings += [factor * power for factor in NICE_FACTORS if low * (1 - 1e-9) <= factor * power]
        power *= 10.0
    return [spacing for spacing in spacings if spacing <= high * (1 + 1e-9)] or spacings[:1]


def ticks_within(spacing: float, low: float, high: float) -> int:
    """How many multiples of ``spacing`` lie in ``low .. high``."""
    return max(0, math.floor(high / spacing + 1e-9) - math.ceil(low / spacing - 1e-9) + 1)


def mantissa(value: float) -> float:
    """``value`` (> 0) over the power of ten at or below it: 1 <= mantissa < 10."""
    return round(value / 10.0 ** math.floor(math.log10(value)), 6)


class SpacedAxis(pg.AxisItem):
    """A y axis for a short plot: two or three labels, :data:`MIN_LABEL_GAP` label heights apart where that
    fits, never closer than :data:`CLOSEST_LABEL_GAP` (pyqtgraph's own spacing puts three labels on 35 pixels,
    overlapping): else one label.

    Only the major ticks are labelled (with the decimals their spacing needs: 0.25, not 0.2); the minor
    ticks (grid lines) divide them in 2 or 5.
    """

    def __init__(self, orientation: str = "left", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.setStyle(maxTextLevel=0)  # text on the major ticks only

    def label_height(self) -> float:
        """The height of a drawn tick label in pixels (pyqtgraph draws it in 0.8 of the font's height)."""
        return 0.8 * QFontMetrics(self.style["tickFont"] or self.font()).height()

    def tickSpacing(self, minVal: float, maxVal: float, size: float):  # noqa: N802, N803 - pyqtgraph's names
        low, high = min(minVal, maxVal), max(minVal, maxVal)
        span = high - low
        if span <= 0 or size <= 0 or not math.isfinite(span):
            return super().tickSpacing(minVal, maxVal, size)
        label = self.label_height() / size * span  # a label's height, in values
        inside = (low + label / 2, high - label / 2)  # a label nearer an end than half its height is not drawn
        candidates = nice_spacings(CLOSEST_LABEL_GAP * label, span)  # labels with room between them
        counts = [ticks_within(spacing, *inside) for spacing in candidates]
        spaced = [s for s, n in zip(candidates, counts) if n >= 2 and s >= MIN_LABEL_GAP * label]
        two = [s for s, n in zip(candidates, counts) if n >= 2]
        some = [s for s, n in zip(candidates, counts) if n >= 1]
        major = spaced[0] if spaced else two[-1] if two else some[0] if some else candidates[0]
        return [(major, 0.0), (major / (2.0 if mantissa(major) == 2 else 5.0), 0.0)]

    def tickStrings(self, values, scale: float, spacing: float) -> list[str]:  # noqa: N802 - pyqtgraph's name
        step = spacing * scale
        if step <= 0 or not math.isfinite(step):
            return super().tickStrings(values, scale, spacing)
        places = max(0, -math.floor(math.log10(step)) + (1 if mantissa(step) == 2.5 else 0))
        return [f"{value * scale:.{places}f}" for value in values]


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
        title_font = QFont(self.font())
        title_font.setPointSizeF(TITLE_SIZE_PT)
        title_height = QFontMetrics(title_font).height() + 4  # pyqtgraph's title row is 30 pixels: two lines
        axis_width = QFontMetrics(self.font()).horizontalAdvance("0000") + 10  # 4-digit labels (γ reaches 1000s)
        for i, name in enumerate(PARAM_COLUMNS):
            plot = self.addPlot(row=i // 3, col=i % 3, title=PARAM_TITLES[name], axisItems={"left": SpacedAxis()})
            plot.titleLabel.setText(PARAM_TITLES[name], size=f"{TITLE_SIZE_PT}pt")
            plot.titleLabel.setMaximumHeight(title_height)
            plot.layout.setRowFixedHeight(0, title_height)
            plot.setMenuEnabled(False)
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot.getAxis("left").setWidth(axis_width)
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
        self.plots["gx"].setXRange(0, trace.steps + 0.5, padding=0.02)  # room for the last step's label

    def clear_curves(self) -> None:
        """No curves (not ``clear``: pyqtgraph's GraphicsLayoutWidget sets an instance attribute of that name, its
        layout's ``clear``, which would remove the plots themselves)."""
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
