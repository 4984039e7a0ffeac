"""The training curves' hover read-out: a dotted line at the training row under the mouse, and one line of text
with its step, its wall time and every value drawn there (the last validation before it too)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from ..curve_meaning import CLASSIFIER
from ..formatting import duration
from .curve_data import CurveSet


class CurveHover:
    """Follows the mouse over ``curves`` (a :class:`~draw_studio.gui.curves.CurvesPlot`) and emits its
    ``hover_text`` ("" when the mouse leaves the plot or nothing is drawn in detail).

    Parameters
    ----------
    curves : CurvesPlot
    labels : dict
        Kind of the points drawn (``draw``, ``classifier``: :mod:`draw_studio.curve_meaning`) -> training curve
        name -> its name in the read-out (e.g. ``"bound" -> "bound L"``).
    """

    def __init__(self, curves, labels: dict[str, str]) -> None:
        self.curves = curves
        self.labels = labels
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#808080", width=1, style=Qt.PenStyle.DotLine))
        self.cursor.setVisible(False)
        curves.plot.addItem(self.cursor, ignoreBounds=True)
        self._at: tuple = ()  # (curve set, row) under the mouse
        curves.plot.scene().sigMouseMoved.connect(self._on_mouse)

    def _on_mouse(self, position) -> None:
        curves = self.curves
        view = curves.plot.getViewBox()
        shown = curves.shown
        if curves.overlay.active or shown is None or shown.rows == 0 or not view.sceneBoundingRect().contains(position):
            if self._at:
                self._at = ()
                self.cursor.setVisible(False)
                curves.hover_text.emit("")
            return
        row = shown.row_near(view.mapSceneToView(position).x())
        if not self._at or self._at[0] is not shown or self._at[1] != row:
            self._at = (shown, row)
            self.cursor.setPos(shown.x[row])
            self.cursor.setVisible(True)
            curves.hover_text.emit(describe_row(shown, row, self.labels[shown.kind]))


def describe_row(curves: CurveSet, row: int, labels: dict[str, str]) -> str:
    """One line: the step of training row ``row``, its wall time and every value drawn there (raw and EMA of the
    curves named in ``labels``, the learning rate when recorded, the last validation before it: a bound, or an
    attention classifier's error in percent)."""
    train, step = curves.train, int(curves.train["step"][row])
    parts = [f"step {step:,}", f"time {duration(train['wall_time'][row])}"]
    for name, label in labels.items():
        parts.append(f"{label} {train[name][row]:.2f} (EMA {curves.smooth[name][row]:.2f})")
    if np.isfinite(train["lr"][row]):
        parts.append(f"lr {train['lr'][row]:.3g}")
    before = int(np.searchsorted(curves.valid["step"], step, side="right"))
    if before:
        value = curves.valid["bound"][before - 1]
        figure = f"validation error {value:.2f}%" if curves.kind == CLASSIFIER else f"validation {value:.2f}"
        parts.append(f"{figure} at step {int(curves.valid['step'][before - 1]):,}")
    return "  ·  ".join(parts)
