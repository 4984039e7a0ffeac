"""Glimpses: what the read head saw at every step, of the image x and of the error image x_hat."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtWidgets import QHBoxLayout, QWidget

from .image_view import DIVERGING, TileGrid
from .panel import Panel
from .state import StudioState


def _largest(values: np.ndarray) -> float:
    """The top of a fixed colour scale: the largest value, or 1 if there is none."""
    top = float(values.max()) if values.size else 0.0
    return top if top > 0 and np.isfinite(top) else 1.0


class GlimpsesPanel(Panel):
    """Two grids of T glimpses (Nr x Nr each), step t at tile t-1, the current step framed.

    The glimpses are what the encoder receives, gamma times the filtered
    image, so they are not in [0, 1]: each grid uses one fixed scale for all
    the steps of the image, 0..max for x and -max..max (diverging colours)
    for x_hat = x - sigmoid(c_{t-1}). A click on a tile moves to that step.
    """

    title = "Glimpses"
    dock_name = "glimpsesDock"

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.x_grid = TileGrid("read from x")
        self.x_grid.setObjectName("glimpseGrid")
        self.x_grid.setToolTip("γ F_Y x F_Xᵀ, one scale for every step")
        self.error_grid = TileGrid("read from x_hat", levels=(-1.0, 1.0), colormap=DIVERGING)
        self.error_grid.setObjectName("errorGlimpseGrid")
        self.error_grid.setToolTip("γ F_Y x_hat F_Xᵀ with x_hat = x − σ(c_{t−1}): blue where the canvas has "
                                   "too much ink, red where it lacks ink")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.x_grid, 1)
        layout.addWidget(self.error_grid, 1)
        for grid in (self.x_grid, self.error_grid):
            grid.tile_clicked.connect(lambda index: self.state.set_step(index + 1))
        self._drawn_trace = None
        self._drawn_image = -1
        self._x_top = self._error_top = 1.0

    def redraw(self) -> None:
        trace, state = self.state.trace, self.state
        if trace is None or trace.read_glimpse is None:
            why = ("no trace" if trace is None else
                   "generated from the prior: nothing is read" if trace.mode == "generate" else
                   "this model reads the whole image (no read attention)")
            self.x_grid.show_message(why)
            self.error_grid.show_message("")
            self._drawn_trace = None
            return
        i = state.image_index
        if self._drawn_trace is not trace or self._drawn_image != i:  # identity: a Trace holds arrays
            self._drawn_trace, self._drawn_image = trace, i
            glimpses = trace.read_glimpse[i]  # (T, 2C, Nr, Nr)
            channels = glimpses.shape[1] // 2
            read_x, read_error = glimpses[:, :channels], glimpses[:, channels:]
            self._x_top = _largest(read_x)
            self._error_top = _largest(np.abs(read_error))
            columns = max(1, math.ceil(math.sqrt(trace.steps)))
            self.x_grid.show_tiles(np.ascontiguousarray(read_x), columns, levels=(0.0, self._x_top))
            self.error_grid.show_tiles(np.ascontiguousarray(read_error), columns,
                                       levels=(-self._error_top, self._error_top))
        self.x_grid.set_highlight(state.step - 1)
        self.error_grid.set_highlight(state.step - 1)
        step = f"t = {state.step}" if state.step else "t = 0: nothing read yet"
        self.x_grid.set_title(f"read from x (0..{self._x_top:.3g}), {step}")
        self.error_grid.set_title(f"from x_hat = x − σ(c) (±{self._error_top:.3g})")
