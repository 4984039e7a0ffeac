"""Information per step: the KL of each step, for the selected image, on average, and over training."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from .axis_painting import cache_axes
from .document import Document
from .panel import Panel

SELECTED_COLOUR = "#4da6ff"
MEAN_COLOUR = "#ffb000"
KL_TITLE = "KL per step (nats)"


class InformationPanel(Panel):
    """KL(Q(z_t|x) || N(0, I)) per step t: bars for the selected image, a line for the mean over the
    trace's images, and a heatmap (training step x t) of the mean KL of every live trace recorded while
    training.

    Every number comes from the open document: the totals from the shown trace, the heatmap's rows
    from the training run (all of them, as they come), its x range from the source's T.
    """

    title = "Information per step"
    dock_name = "informationDock"

    def __init__(self, state: Document, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.view = pg.GraphicsLayoutWidget()  # the KL per step: shown only when the source has it
        self.view.setObjectName("informationPlots")
        self.kl_plot = self.view.addPlot(row=0, col=0)
        self.kl_plot.setTitle(KL_TITLE, size="9pt")
        self.kl_plot.setLabel("bottom", "step t")
        self.kl_plot.showGrid(y=True, alpha=0.2)
        self.kl_plot.setMenuEnabled(False)
        # the title says which is which (a legend inside the plot would sit on the bars in a small dock)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=SELECTED_COLOUR, name="selected image")
        self.kl_plot.addItem(self.bars)
        self.mean_curve = self.kl_plot.plot(pen=pg.mkPen(MEAN_COLOUR, width=2), name="mean over images")
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ffd400", width=1))
        self.kl_plot.addItem(self.cursor, ignoreBounds=True)  # a move never makes the view recompute its range

        self.heat_view = pg.GraphicsLayoutWidget()  # over training: shown with the KL per step or with its rows
        self.heat_view.setObjectName("informationHeatmap")
        self.heat_plot = self.heat_view.addPlot(row=0, col=0)
        self.heat_plot.setTitle("mean KL per step over training", size="9pt")
        self.heat_plot.setLabel("bottom", "step t")
        self.heat_plot.setLabel("left", "training step")
        self.heat_plot.setMenuEnabled(False)
        self.heatmap = pg.ImageItem(axisOrder="row-major")
        self.heatmap.setColorMap(pg.colormap.get("inferno"))
        self.heat_plot.addItem(self.heatmap)
        self.heat_bar = pg.ColorBarItem(colorMap=pg.colormap.get("inferno"), interactive=False, width=12,
                                        label="nats")
        self.heat_bar.setImageItem(self.heatmap, insert_in=self.heat_plot)
        self.heat_note = pg.TextItem("fills in while training runs", color="#9a9a9a", anchor=(0.5, 0.5))
        self.heat_plot.addItem(self.heat_note)
        cache_axes(self.kl_plot, self.heat_plot)
        plots = QWidget()
        layout = QVBoxLayout(plots)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        for view, stretch in ((self.view, 1), (self.heat_view, 1)):  # the heat map has more axes and titles
            view.setMinimumHeight(34)  # the two together: the dock's smallest height of one view
            layout.addWidget(view, stretch)
        self.message = self.message_above(plots, "informationMessage")
        self._drawn_heat: tuple = ()
        self._drawn_kl: tuple = ()  # (trace, image, why there is no KL, T of the x axis) the KL plot shows

    @property
    def kl_over_training(self) -> list[tuple[int, np.ndarray]]:
        """(training step, mean KL per step (T,)) of each live trace of the open training run."""
        return self.document.kl_history

    def heat_rows(self) -> np.ndarray:
        """The heatmap's data, (traces recorded, T)."""
        if not self.kl_over_training:
            return np.zeros((0, 0), np.float32)
        return np.stack([row for _, row in self.kl_over_training]).astype(np.float32)

    def heat_steps(self) -> int:
        """T of the heatmap's x axis: the open source's model (1 when unknown)."""
        return int(self.document.model_steps or self.document.steps or 1)

    def redraw(self) -> None:
        trace, document = self.document.trace, self.document
        missing = document.lacks("kl")
        self.message.setText(missing)
        self.message.setVisible(bool(missing))
        if not (self._drawn_kl and self._drawn_kl[0] is trace
                and self._drawn_kl[1:] == (document.image_index, missing, self.heat_steps())):
            self._drawn_kl = (trace, document.image_index, missing, self.heat_steps())
            self._draw_kl(trace, missing)  # a step move alone only moves the cursor (below)
        self.cursor.setValue(document.step)
        self._draw_heatmap()
        self.view.setVisible(not missing)  # no KL: no empty plot (its axes said nothing but cluttered ticks)
        self.heat_view.setVisible(not missing or len(self.kl_over_training) > 0)

    def _draw_kl(self, trace, missing: str) -> None:
        """The bars of the selected image and the mean over the trace's images ("missing": none, and why)."""
        document = self.document
        if missing:
            self.bars.setOpts(x=[], height=[])
            self.mean_curve.setData([], [])
            self.kl_plot.setTitle(KL_TITLE, size="9pt")
        else:
            t = np.arange(1, trace.steps + 1)
            selected = trace.kl[document.image_index]  # (T,)
            mean = trace.kl.mean(axis=0)  # (T,)
            self.bars.setOpts(x=t, height=selected, width=0.8)
            self.mean_curve.setData(t, mean)
            top = np.nanmax(np.concatenate([selected, mean, [0.0]]))  # set once: a moving cursor never refits it
            self.kl_plot.setYRange(0.0, float(top) if np.isfinite(top) and top > 0 else 1.0, padding=0.05)
            self.kl_plot.setTitle(  # short: a long title would widen the plot past a narrow dock
                f"KL per step, total: <span style='color:{SELECTED_COLOUR}'>▮ image {document.image_index}: "
                f"{selected.sum():.1f}</span> <span style='color:{MEAN_COLOUR}'>━ mean: "
                f"{trace.kl.sum(axis=1).mean():.1f}</span> nats", size="9pt")
        self.kl_plot.setXRange(0.5, max(trace.steps if trace is not None else self.heat_steps(), 1) + 0.5,
                               padding=0.02)

    def _draw_heatmap(self) -> None:
        """Every row recorded so far, in view (the range follows the rows), x over 1..T of the source."""
        steps = self.heat_steps()
        key = (self.document.generation, len(self.kl_over_training), steps)
        if key == self._drawn_heat:
            return
        self._drawn_heat = key
        rows = self.heat_rows()
        self.heat_note.setVisible(len(rows) == 0)
        self.heat_bar.setVisible(len(rows) > 0)
        if len(rows) == 0:
            self.heatmap.clear()
            self.heat_note.setText(self.document.lacks("heatmap"))
            self.heat_plot.setRange(xRange=(0.5, steps + 0.5), yRange=(0, 1), padding=0)
            self.heat_plot.getAxis("left").setTicks([[]])
            self.heat_note.setPos((steps + 1) / 2, 0.5)
            return
        training_steps = [step for step, _ in self.kl_over_training]
        top = float(np.nanmax(rows)) if np.isfinite(rows).any() else 1.0
        self.heatmap.setImage(rows, autoLevels=False, levels=(0.0, max(top, 1e-6)))
        self.heat_bar.setLevels((0.0, max(top, 1e-6)))
        self.heatmap.setRect(0.5, 0, rows.shape[1], len(rows))
        self.heat_plot.setRange(xRange=(0.5, rows.shape[1] + 0.5), yRange=(0, len(rows)), padding=0)
        ticks = [(i + 0.5, f"{training_steps[i]:,}")
                 for i in np.linspace(0, len(training_steps) - 1, min(len(training_steps), 5)).astype(int)]
        self.heat_plot.getAxis("left").setTicks([ticks])
        self.heat_plot.invertY(True)
