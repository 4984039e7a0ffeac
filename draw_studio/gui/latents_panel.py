"""Latents: the posterior mean mu and spread sigma of every step as T x Z heatmaps.

A click on a cell (t, k) of either heatmap emits :attr:`LatentsPanel.cell_clicked` (the Explore
dock's latent editor opens on it); the cell being edited is framed in white.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QWidget

from .document import Document
from .image_view import DIVERGING
from .panel import Panel


class LatentMap:
    """One T x Z heatmap in a plot, with a colour bar and a frame on the current step's row."""

    def __init__(self, plot: pg.PlotItem, colormap: pg.ColorMap) -> None:
        self.plot = plot
        plot.setMenuEnabled(False)
        plot.setLabel("bottom", "latent k")
        plot.setLabel("left", "step t")
        plot.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        plot.addItem(self.image)
        self.bar = pg.ColorBarItem(colorMap=colormap, interactive=False, width=10)
        self.bar.setImageItem(self.image, insert_in=plot)
        self.row = QGraphicsRectItem()
        pen = QPen(QColor("#ffd400"))
        pen.setCosmetic(True)
        pen.setWidthF(2.0)
        self.row.setPen(pen)
        self.row.setZValue(10)
        plot.addItem(self.row, ignoreBounds=True)  # moved at every step: never a reason to recompute the range
        self.cell = QGraphicsRectItem()  # the cell being edited (Explore dock)
        pen = QPen(QColor("#ffffff"))
        pen.setCosmetic(True)
        pen.setWidthF(2.0)
        self.cell.setPen(pen)
        self.cell.setZValue(11)
        self.cell.hide()
        plot.addItem(self.cell, ignoreBounds=True)
        self._shape = ()

    def cell_at(self, scene_pos) -> tuple[int, int] | None:
        """The (trace step s = t - 1, latent k) under a scene position, or None outside the heatmap."""
        if self.image.image is None or not self.plot.vb.sceneBoundingRect().contains(scene_pos):
            return None
        point = self.plot.vb.mapSceneToView(scene_pos)
        steps, size = self.image.image.shape[:2]
        t, k = int(round(point.y())), int(point.x() // 1)
        return (t - 1, k) if 1 <= t <= steps and 0 <= k < size else None

    def frame_cell(self, cell: tuple[int, int] | None) -> None:
        """Frame cell (s, k) (row t = s + 1); None: no frame."""
        self.cell.setVisible(cell is not None)
        if cell is not None:
            self.cell.setRect(QRectF(cell[1], cell[0] + 0.5, 1, 1))

    def show(self, values: np.ndarray, levels: tuple[float, float], title: str) -> None:
        """Show ``values`` (T, Z): row t-1 is step t."""
        steps, size = values.shape
        self.image.setImage(values.astype(np.float32), autoLevels=False, levels=levels)
        self.image.setRect(QRectF(0, 0.5, size, steps))  # row t-1 spans t-0.5..t+0.5
        self.bar.setLevels(levels)
        self.plot.setTitle(title, size="9pt")
        if values.shape != self._shape:
            self._shape = values.shape
            self.plot.setRange(xRange=(0, size), yRange=(0.5, steps + 0.5), padding=0)

    def highlight(self, step: int, size: int) -> None:
        """Frame the row of step ``step`` (1..T); hide at step 0."""
        self.row.setVisible(step >= 1)
        self.row.setRect(QRectF(0, step - 0.5, size, 1))

    def clear(self, title: str, shape: tuple[int, int] | None = None) -> None:
        """Show nothing, titled ``title``; the axes span ``shape`` (T, Z) of what is shown beside, else 0..1."""
        self.image.clear()
        self.row.hide()
        self.cell.hide()
        self.plot.setTitle(title, size="9pt")
        steps, size = shape if shape is not None else (1, 1)
        self._shape = ()  # the next image sets its own range
        self.plot.setRange(xRange=(0, size), yRange=(0.5, steps + 0.5), padding=0)


class LatentsPanel(Panel):
    """mu (diverging colours, symmetric levels) and sigma (0..max) of the selected image.

    Signals
    -------
    cell_clicked(int, int) : a left click on cell (s, k): trace step s = 0..T-1 (the paper's t = s + 1), latent k
    """

    title = "Latents"
    dock_name = "latentsDock"
    cell_clicked = Signal(int, int)

    def __init__(self, state: Document, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("latentPlots")
        self.mu_map = LatentMap(self.view.addPlot(row=0, col=0), DIVERGING)
        self.sigma_map = LatentMap(self.view.addPlot(row=0, col=1), pg.colormap.get("viridis"))
        self.sigma_map.plot.setLabel("left", "")
        for latent_map in (self.mu_map, self.sigma_map):
            latent_map.plot.getAxis("left").setWidth(44)
            latent_map.bar.getAxis("right").setWidth(36)
        self.message = self.message_above(self.view, "latentsMessage")
        self.selected_cell: tuple[int, int] | None = None
        self._cell_for = None  # (trace, image) the selected cell belongs to
        self._drawn: tuple = ()  # (trace, image, framed cell) the maps show, ("nothing",) when hidden
        self.view.scene().sigMouseClicked.connect(self._on_click)
        self.view.setToolTip("click a cell (t, k): edit z_t[k] in the Explore dock")

    def _on_click(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.state.trace is None:
            return
        for latent_map in (self.mu_map, self.sigma_map):
            cell = latent_map.cell_at(event.scenePos())
            if cell is not None:
                self.cell_clicked.emit(*cell)
                return

    def select_cell(self, step: int | None, latent: int | None = None) -> None:
        """Frame cell (step, latent) of the shown image in both maps (None: no frame)."""
        self.selected_cell = None if step is None else (int(step), int(latent))
        self._cell_for = (self.state.trace, self.state.image_index)
        self.mark_dirty()

    def redraw(self) -> None:
        trace, state = self.state.trace, self.state
        if trace is None:
            self._show_nothing()
            return
        i = state.image_index
        cell_for = self._cell_for
        same = cell_for is not None and cell_for[0] is trace and cell_for[1] == i
        cell = self.selected_cell if same else None
        if not (self._drawn and self._drawn[0] is trace and self._drawn[1:] == (i, cell)):
            self._drawn = (trace, i, cell)  # a step move alone only moves the frames of its row (below)
            self._draw_maps(trace, i, cell)
        self.view.show()
        self.mu_map.highlight(state.step, trace.z.shape[2])
        if trace.sigma is not None:
            self.sigma_map.highlight(state.step, trace.z.shape[2])

    def _show_nothing(self) -> None:
        """No trace: the message says why, and the plots are hidden (they would show empty axes)."""
        missing = self.state.lacks("trace")
        self.message.setText(missing)
        self.message.setVisible(bool(missing))
        self.view.hide()
        if self._drawn != ("nothing",):
            self._drawn = ("nothing",)
            self.mu_map.clear("mu")
            self.sigma_map.clear("sigma")

    def _draw_maps(self, trace, i: int, cell: tuple[int, int] | None) -> None:
        """Both heatmaps of image ``i`` of ``trace``, the edited ``cell`` framed."""
        if trace.mu is not None and trace.sigma is not None:
            self.message.hide()
            mu, sigma = trace.mu[i], trace.sigma[i]  # (T, Z) each
            top = max(float(np.abs(mu).max()), 1e-6)
            self.mu_map.show(mu, (-top, top), f"posterior mean mu, image {i}")
            self.sigma_map.show(sigma, (0.0, max(float(sigma.max()), 1.0)), "posterior std sigma")
        else:
            self.message.setText("generated from the prior: no posterior; showing the sampled z")
            self.message.show()
            z = trace.z[i]  # (T, Z)
            top = max(float(np.abs(z).max()), 1e-6)
            self.mu_map.show(z, (-top, top), f"sampled z, image {i}")
            self.sigma_map.clear("sigma: none (prior N(0, I))", z.shape)
        self.mu_map.frame_cell(cell)
        self.sigma_map.frame_cell(cell if trace.sigma is not None else None)
