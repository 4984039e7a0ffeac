"""The training curves' right axis: the learning rate (a dashed line), or an attention classifier's validation error.

The view box lies behind the plot's main one, x-linked to it, and fits its y range to what it holds.
A constant learning rate (a run without a schedule) would make pyqtgraph's automatic range
±0.5 around it, drawn as "-400..400 (x0.001)": its range is then 0..twice the rate instead, the line
in the middle. The right axis is shown only while a learning rate is drawn. Its ticks say "2e-4" rather than
pyqtgraph's "2" with "(x0.0001)" added to the label, which a plot of a docked panel's height cuts off
(:class:`RateAxisItem`).

An attention classifier's validation error is in percent, not in the nats of its cross-entropy on the
left axis: it is drawn against the right axis instead of the learning rate (:meth:`LearningRateAxis.show_errors`,
the axis then says "validation error, %"), as lines of other runs may be (:meth:`LearningRateAxis.hold_errors`).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from .axis_painting import cache_axis, steady_width

CONSTANT_SHARE = 1e-6  # a spread below this share of the rate's size counts as constant
RATE_LABEL = "learning rate"
ERROR_LABEL = "validation error, %"


def rate_tick_strings(values: list[float], spacing: float) -> list[str]:
    """Tick labels for small rates in one power of ten: ``[0, 5e-5, 1e-4]`` -> ``["0", "0.5e-4", "1e-4"]``.

    Parameters
    ----------
    values : list of float
        The tick values.
    spacing : float
        The distance between neighbouring ticks (> 0): the labels have the decimals it needs.
    """
    largest = max((abs(v) for v in values), default=0.0)
    if largest == 0.0 or spacing <= 0.0:
        return [f"{v:g}" for v in values]
    exponent = math.floor(math.log10(largest))
    unit = 10.0 ** exponent
    decimals = max(0, math.ceil(-math.log10(spacing / unit) - 1e-9))
    labels = []
    for value in values:
        mantissa = f"{value / unit:.{decimals}f}"
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        labels.append("0" if float(mantissa) == 0.0 else f"{mantissa}e{exponent}")
    return labels


class RateAxisItem(pg.AxisItem):
    """The right axis: while it shows a learning rate (:attr:`compact`), small ticks read "2e-4" and the label
    carries no scale; otherwise (a classifier's error in percent) pyqtgraph's own ticks."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.compact = True
        self.enableAutoSIPrefix(False)  # the ticks carry the power of ten: no "(x0.0001)" in the label

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        if self.compact and values and max(abs(v) for v in values) < 0.01:
            return rate_tick_strings(list(values), spacing)
        return super().tickStrings(values, scale, spacing)


class LearningRateAxis:
    """The learning-rate line of ``plot`` and its right axis.

    Attributes
    ----------
    view : pyqtgraph.ViewBox
        The view box the line is drawn in.
    item : pyqtgraph.PlotDataItem
        The line.
    error_item : pyqtgraph.PlotDataItem
        A classifier's validation errors, drawn instead of the rate (:meth:`show_errors`).
    label : str
        What the right axis says now (``learning rate`` or ``validation error, %``).
    """

    def __init__(self, plot: pg.PlotItem, colour: str, error_colour: str = "#ff5ad0") -> None:
        self.plot = plot
        self.view = pg.ViewBox(enableMouse=False)
        self.view.setZValue(-10)  # behind the main view box, which keeps the mouse
        plot.scene().addItem(self.view)
        plot.setAxisItems({"right": RateAxisItem("right")})
        axis = plot.getAxis("right")
        axis.linkToView(self.view)
        axis.setLabel(RATE_LABEL)
        self.label = RATE_LABEL
        cache_axis(axis)
        steady_width(axis, "0.5e-4")  # room for the rate's ticks from the start (they widen it otherwise)
        self.view.setXLink(plot)
        self.view.enableAutoRange(axis=pg.ViewBox.XAxis, enable=False)  # x: the main view box's
        self.item = pg.PlotDataItem(pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine))
        self.view.addItem(self.item)
        self.error_item = pg.PlotDataItem(pen=pg.mkPen(error_colour, width=2), symbol="o", symbolSize=6,
                                          symbolBrush=error_colour, symbolPen=None)
        self.view.addItem(self.error_item)
        self._errors_drawn = False  # error_item holds points
        main = plot.getViewBox()
        main.sigResized.connect(lambda *_: self.view.setGeometry(main.sceneBoundingRect()))
        plot.hideAxis("right")
        self.constant: float | None = None  # the rate drawn when it never changes

    def show(self, x: np.ndarray, rates: np.ndarray, recorded: bool) -> None:
        """Draw ``rates`` against ``x`` (the points drawn: min/max thinned, so they hold the extremes), the right
        axis only when the run ``recorded`` a learning rate."""
        self._clear_errors()
        self._set_label(RATE_LABEL)
        self.item.setData(x, rates)
        self.show_axis(recorded)
        finite = rates[np.isfinite(rates)]
        constant = None
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            if high - low <= CONSTANT_SHARE * max(abs(low), abs(high)):
                constant = high
        if constant != self.constant:
            self.constant = constant
            self.fit()

    def show_errors(self, x: np.ndarray, errors: np.ndarray, marked: bool) -> None:
        """Draw a classifier's validation ``errors`` (percent, (M,)) against ``x`` instead of the learning rate, with
        a circle on each point when ``marked``; the right axis says "validation error, %"."""
        self.hold_errors()
        self.error_item.setData(x, errors, symbol="o" if marked else None)
        self._errors_drawn = True

    def hold_errors(self) -> None:
        """Make the right axis the validation error's, in percent, fitted to what its view box holds (no learning
        rate drawn), e.g. for other runs' error curves added to :attr:`view`."""
        if self.label != ERROR_LABEL:
            self.item.setData([], [])
            self._set_label(ERROR_LABEL)
        self.show_axis(True)
        if self.constant is not None:
            self.constant = None
            self.fit()

    def _set_label(self, label: str) -> None:
        if label != self.label:
            self.label = label
            axis = self.plot.getAxis("right")
            axis.compact = label == RATE_LABEL
            axis.setLabel(label)

    def _clear_errors(self) -> None:
        if self._errors_drawn:
            self.error_item.setData([], [])
            self._errors_drawn = False

    def keep_linear(self) -> None:
        """Keep the learning rate's axis linear when the plot's y axis turns logarithmic (pyqtgraph turns every
        axis of the plot, and so also the learning rate's view box, which holds plain rates, not their logs)."""
        self.plot.getAxis("right").setLogMode(False)

    def hide(self) -> None:
        """No line, no right axis."""
        self.item.setData([], [])
        self._clear_errors()
        self.show_axis(False)

    def show_axis(self, shown: bool) -> None:
        """Show or hide the right axis, laid out at once (else the plot is painted, then laid out and painted again)."""
        if self.plot.getAxis("right").isVisible() != shown:
            self.plot.showAxis("right", shown)
            self.plot.layout.activate()

    def fit(self) -> None:
        """Follow the rate's range again (a constant rate: 0..twice it, the line in the middle; -1..1 for 0).

        Only y: x follows the main view box (a range of its own would turn the main view's following off)."""
        self.view.enableAutoRange(axis=pg.ViewBox.XAxis, enable=False)
        if self.constant is None:
            self.view.enableAutoRange(axis=pg.ViewBox.YAxis)
            return
        low, high = sorted((0.0, 2.0 * self.constant)) if self.constant != 0 else (-1.0, 1.0)
        self.view.setYRange(low, high, padding=0.0)
