"""Glimpses: what the read head saw at every step, of the image x and of the error image x_hat (DRAW), or of
the image only (an attention classifier)."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtWidgets import QCheckBox, QGridLayout, QWidget

from .document import NOT_CLASSIFIED
from .image_view import DIVERGING, ImagePane, TileGrid
from .panel import Panel
from .state import StudioState

TINY = 1e-9  # a glimpse no brighter than this read nothing: it is shown black, not stretched to full scale
NO_ERROR_IMAGE = "an attention classifier reads the image only: no error image x_hat"


def _largest(values: np.ndarray) -> float:
    """The top of a colour scale: the largest value, or 1 if there is none (or it is not above :data:`TINY`)."""
    top = float(values.max()) if values.size else 0.0
    return top if top > TINY and np.isfinite(top) else 1.0


def per_tile(tiles: np.ndarray, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each tile of ``tiles`` (T, C, h, w) divided by its own top, so that its largest value shows at full scale.

    The top of a tile is its maximum (``symmetric``: its largest absolute
    value); a tile whose top is not above :data:`TINY` is left as it is. Returns the scaled
    tiles and the tops (T,).
    """
    flat = tiles.reshape(len(tiles), -1)
    tops = (np.abs(flat) if symmetric else flat).max(axis=1) if flat.size else np.ones(len(tiles))
    tops = np.where(np.isfinite(tops) & (tops > TINY), tops, 1.0).astype(np.float32)  # (T,)
    return tiles / tops[:, None, None, None], tops


class GlimpsesPanel(Panel):
    """Two grids of T glimpses (Nr x Nr each), step t at tile t-1, the current step framed and shown large.

    The glimpses are what the encoder receives, gamma times the filtered
    image, so they are not in [0, 1]. By default each tile is scaled on its
    own (0..its max for x, ±its largest |value| for x_hat = x - sigmoid(c_{t-1})
    in diverging colours), so every step's glimpse is legible; "one scale for
    all steps" uses one scale for every step of the image instead, which
    compares the steps' intensities. Under the grids, the current step's two
    glimpses are shown large, each with its value range. A click on a tile
    moves to that step.
    """

    title = "Glimpses"
    dock_name = "glimpsesDock"

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.x_grid = TileGrid("read from x")
        self.x_grid.setObjectName("glimpseGrid")
        self.x_grid.setToolTip("γ F_Y x F_Xᵀ at every step (click: go to that step); own scales: every tile "
                               "from 0 to its own max")
        self.error_grid = TileGrid("read from x_hat", levels=(-1.0, 1.0), colormap=DIVERGING)
        self.error_grid.setObjectName("errorGlimpseGrid")
        self.error_grid.setToolTip("γ F_Y x_hat F_Xᵀ with x_hat = x − σ(c_{t−1}): blue where the canvas has "
                                   "too much ink, red where it lacks ink; own scales: every tile ±its own max")
        self.x_large = ImagePane("step t, read from x")
        self.x_large.setToolTip("the current step's glimpse of x, with its smallest and largest value")
        self.x_large.setObjectName("glimpseLarge")
        self.error_large = ImagePane("step t, read from x_hat", levels=(-1.0, 1.0), colormap=DIVERGING)
        self.error_large.setObjectName("errorGlimpseLarge")
        self.global_scale = QCheckBox("one scale for all steps", objectName="glimpseGlobalScale")
        self.global_scale.setToolTip("off: every tile scaled to its own range (default); on: one scale for all "
                                     "the steps of the image, to compare their intensities")
        self.global_scale.toggled.connect(self._on_scale_mode)
        layout = QGridLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.global_scale, 0, 0, 1, 2)
        layout.addWidget(self.x_grid, 1, 0)
        layout.addWidget(self.error_grid, 1, 1)
        layout.addWidget(self.x_large, 2, 0)
        layout.addWidget(self.error_large, 2, 1)
        layout.setRowStretch(1, 3)
        layout.setRowStretch(2, 2)
        layout.setColumnStretch(0, 1)
        layout.setColumnStretch(1, 1)
        for grid in (self.x_grid, self.error_grid):
            grid.tile_clicked.connect(lambda index: self.state.set_step(index + 1))
        self._drawn_trace = None
        self._drawn_image = -1
        self._read_x = self._read_error = np.zeros((0, 1, 1, 1), np.float32)
        self._x_top = self._error_top = 1.0

    def _on_scale_mode(self) -> None:
        self._drawn_trace = None  # tiles are drawn again in the new scale
        self.mark_dirty()

    def redraw(self) -> None:
        trace, state = self.state.trace, self.state
        if trace is None and state.classification is not None:
            self._redraw_classification()
            return
        if trace is None or trace.read_glimpse is None:
            why = (NOT_CLASSIFIED if trace is None and state.is_classifier else
                   "no trace" if trace is None else
                   "generated from the prior: nothing is read" if trace.mode == "generate" else
                   "this model reads the whole image (no read attention)")
            for view, text in ((self.x_grid, why), (self.error_grid, ""), (self.x_large, ""),
                               (self.error_large, "")):
                view.show_message(text)
            self._drawn_trace = None
            return
        i = state.image_index
        if self._drawn_trace is not trace or self._drawn_image != i:  # identity: a Trace holds arrays
            self._drawn_trace, self._drawn_image = trace, i
            glimpses = trace.read_glimpse[i]  # (T, 2C, Nr, Nr)
            channels = glimpses.shape[1] // 2
            self._read_x, self._read_error = glimpses[:, :channels], glimpses[:, channels:]
            self._draw_grids(trace.steps)
        self.x_grid.set_highlight(state.step - 1)
        self.error_grid.set_highlight(state.step - 1)
        self._draw_current(state.step)

    def _redraw_classification(self) -> None:
        """An attention classifier's T glimpses of the selected image (of the image only: no error image)."""
        state = self.state
        shown, i = state.classification, state.image_index
        if self._drawn_trace is not shown or self._drawn_image != i:
            self._drawn_trace, self._drawn_image = shown, i
            self._read_x = shown.read_glimpse[i]  # (T, C, N, N)
            self._read_error = None
            self._draw_grids(shown.steps)
        self.x_grid.set_highlight(state.step - 1)
        self._draw_current(state.step)

    def _draw_grids(self, steps: int) -> None:
        columns = max(1, math.ceil(math.sqrt(steps)))
        self._x_top = _largest(self._read_x)
        if self._read_error is None:  # an attention classifier: the image only
            self.error_grid.show_message(NO_ERROR_IMAGE)
            if self.global_scale.isChecked():
                self.x_grid.show_tiles(np.ascontiguousarray(self._read_x), columns, levels=(0.0, self._x_top))
                self.x_grid.set_title(f"glimpses of x (0..{self._x_top:.3g})")
            else:
                x_tiles, _ = per_tile(self._read_x, symmetric=False)
                self.x_grid.show_tiles(np.ascontiguousarray(x_tiles), columns, levels=(0.0, 1.0))
                self.x_grid.set_title("glimpses of x (own scales)")
            return
        self._error_top = _largest(np.abs(self._read_error))
        if self.global_scale.isChecked():
            self.x_grid.show_tiles(np.ascontiguousarray(self._read_x), columns, levels=(0.0, self._x_top))
            self.error_grid.show_tiles(np.ascontiguousarray(self._read_error), columns,
                                       levels=(-self._error_top, self._error_top))
            self.x_grid.set_title(f"read from x (0..{self._x_top:.3g})")
            self.error_grid.set_title(f"from x_hat (±{self._error_top:.3g})")
        else:
            x_tiles, _ = per_tile(self._read_x, symmetric=False)
            error_tiles, _ = per_tile(self._read_error, symmetric=True)
            self.x_grid.show_tiles(np.ascontiguousarray(x_tiles), columns, levels=(0.0, 1.0))
            self.error_grid.show_tiles(np.ascontiguousarray(error_tiles), columns, levels=(-1.0, 1.0))
            self.x_grid.set_title("read from x (own scales)")
            self.error_grid.set_title("from x_hat (own scales)")

    def _draw_current(self, step: int) -> None:
        """The glimpses of ``step`` large, each with its range, in the grids' scale mode."""
        if step < 1:
            self.x_large.show_message("t = 0: nothing read yet")
            self.error_large.show_message("")
            return
        x = self._read_x[step - 1]  # (C, Nr, Nr)
        if self._read_error is None:  # an attention classifier: the image only
            self.x_large.show_image(x, levels=(0.0, self._x_top if self.global_scale.isChecked() else _largest(x)))
            self.x_large.set_title(f"t = {step}: x {x.min():.3g}..{x.max():.3g}")
            self.error_large.show_message("")
            return
        error = self._read_error[step - 1]  # (C, Nr, Nr)
        if self.global_scale.isChecked():
            x_levels, error_levels = (0.0, self._x_top), (-self._error_top, self._error_top)
        else:
            x_levels, error_levels = (0.0, _largest(x)), (-_largest(np.abs(error)), _largest(np.abs(error)))
        self.x_large.show_image(x, levels=x_levels)
        self.error_large.show_image(error, levels=error_levels)
        self.x_large.set_title(f"t = {step}: x {x.min():.3g}..{x.max():.3g}")
        self.error_large.set_title(f"t = {step}: x_hat {error.min():+.3g}..{error.max():+.3g}")
