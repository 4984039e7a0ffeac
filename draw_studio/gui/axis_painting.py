"""Axes that are painted as seldom as they can be: from a pixmap, and at a width that does not jump.

pyqtgraph keeps each axis' ticks, labels and grid lines as a QPicture and replays it whenever anything
under the axis is repainted (with a grid, that is anything in the plot: a step marker moving over it
repaints a strip of every axis). Replaying re-lays out and re-renders every label, about a millisecond
an axis. Cached as a pixmap in device coordinates (:func:`cache_axes`), such a repaint is a copy; the
pixmap is redrawn when the axis itself changes (its range, size, labels or grid: pyqtgraph calls
``update()`` then).

An axis lays out its ticks and labels in its first paint after a change; :func:`lay_out_axes` does it
beforehand (e.g. in the turn that gives a plot new data, so that the turn that paints it does less).

A y axis also sizes itself to its widest tick label after it has drawn them: new data whose labels
are a digit longer or shorter lay the plot out again and paint it all a second time.
:func:`steady_width` keeps room for ``ROOM_FOR`` and lets the axis grow past that, never shrink.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QFontMetrics, QPainter, QPicture
from PySide6.QtWidgets import QGraphicsItem

SIDES = ("left", "bottom", "right", "top")
ROOM_FOR = "0000"  # tick labels a y axis has room for from the start


def cache_axes(*plots: pg.PlotItem) -> None:
    """Paint every axis of ``plots`` (shown or hidden) from a pixmap cache."""
    for plot in plots:
        for side in SIDES:
            cache_axis(plot.getAxis(side))


def cache_axis(axis: pg.AxisItem) -> None:
    """Paint ``axis`` (e.g. a colour bar's) from a pixmap cache."""
    axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def steady_width(axis: pg.AxisItem, room_for: str = ROOM_FOR) -> None:
    """Give the y axis ``axis`` room for tick labels as wide as ``room_for``: it widens for wider ones, never
    narrows."""
    axis.textWidth = QFontMetrics(axis.style["tickFont"] or axis.font()).horizontalAdvance(room_for)
    axis.setStyle(autoReduceTextSpace=False)  # also lays the axis out at that width


def lay_out_axes(plot: pg.PlotItem) -> None:
    """Lay out the ticks and labels of every shown axis of ``plot`` that changed, now rather than in its next paint
    (an axis keeps them as a picture until its range, size or labels change)."""
    for side in SIDES:
        axis = plot.getAxis(side)
        if axis.isVisible() and axis.picture is None:
            picture = QPicture()
            painter = QPainter(picture)
            try:
                axis.paint(painter, None, None)  # builds axis.picture, then replays it here (thrown away)
            finally:
                painter.end()
