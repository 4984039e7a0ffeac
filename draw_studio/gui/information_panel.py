"""Information per step: the KL of each step, for the selected image, on average, and over training."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from .panel import Panel
from .state import StudioState

SELECTED_COLOUR = "#4da6ff"
MEAN_COLOUR = "#ffb000"


class InformationPanel(Panel):
    """KL(Q(z_t|x) || N(0, I)) per step t: bars for the selected image, a line for the mean over the
    trace's images, and a heatmap (training step x t) of the mean KL of every live trace recorded while
    training."""

    title = "Information per step"
    dock_name = "informationDock"

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.kl_over_training: list[tuple[int, np.ndarray]] = []  # (training step, mean KL per step (T,))
        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("informationPlots")
        self.kl_plot = self.view.addPlot(row=0, col=0)
        self.kl_plot.setTitle("KL per step (nats)", size="9pt")
        self.kl_plot.setLabel("bottom", "step t")
        self.kl_plot.showGrid(y=True, alpha=0.2)
        self.kl_plot.setMenuEnabled(False)
        legend = self.kl_plot.addLegend(offset=(-6, 6), labelTextSize="8pt")
        legend.setBrush(pg.mkBrush(30, 30, 30, 180))
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=SELECTED_COLOUR, name="selected image")
        self.kl_plot.addItem(self.bars)
        self.mean_curve = self.kl_plot.plot(pen=pg.mkPen(MEAN_COLOUR, width=2), name="mean over images")
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ffd400", width=1))
        self.kl_plot.addItem(self.cursor)

        self.heat_plot = self.view.addPlot(row=1, col=0)
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
        self.view.ci.layout.setRowStretchFactor(0, 3)
        self.view.ci.layout.setRowStretchFactor(1, 2)
        self.heat_note = pg.TextItem("fills in while training runs", color="#9a9a9a", anchor=(0.5, 0.5))
        self.heat_plot.addItem(self.heat_note)
        self.message = self.message_above(self.view, "informationMessage")
        self._drawn_history = -1
        self._drawn_steps = -1

    def clear_training(self) -> None:
        """Forget the KL history (a new run starts)."""
        self.kl_over_training.clear()
        self.mark_dirty()

    def add_training_trace(self, trace, training_step: int) -> None:
        """Keep the mean KL per step of a live trace recorded at ``training_step``."""
        if trace.kl is None:
            return
        row = trace.kl.mean(axis=0)  # (T,)
        if self.kl_over_training and len(self.kl_over_training[0][1]) != len(row):
            self.kl_over_training.clear()
        self.kl_over_training.append((int(training_step), row))
        self.mark_dirty()

    def heat_rows(self) -> np.ndarray:
        """The heatmap's data, (traces recorded, T)."""
        if not self.kl_over_training:
            return np.zeros((0, 0), np.float32)
        return np.stack([row for _, row in self.kl_over_training]).astype(np.float32)

    def redraw(self) -> None:
        trace, state = self.state.trace, self.state
        if trace is not None and trace.steps != self._drawn_steps:
            self._drawn_steps = trace.steps
            self._drawn_history = -1  # the empty heatmap's range follows T
        if trace is None or trace.kl is None:
            self.message.setText("this trace has no KL: a generated trace has no encoder; "
                                 "reconstruct images (Gallery) to see it" if trace is not None else "")
            self.message.setVisible(trace is not None)
            self.bars.setOpts(x=[], height=[])
            self.mean_curve.setData([], [])
        else:
            self.message.setVisible(False)
            t = np.arange(1, trace.steps + 1)
            selected = trace.kl[state.image_index]  # (T,)
            self.bars.setOpts(x=t, height=selected, width=0.8)
            self.mean_curve.setData(t, trace.kl.mean(axis=0))
            self.kl_plot.setTitle(f"KL per step (nats): image {state.image_index} total "
                                  f"{selected.sum():.1f}, mean total {trace.kl.sum(axis=1).mean():.1f}", size="9pt")
        self.cursor.setValue(state.step)
        self._draw_heatmap()

    def _draw_heatmap(self) -> None:
        if len(self.kl_over_training) == self._drawn_history:
            return
        self._drawn_history = len(self.kl_over_training)
        rows = self.heat_rows()
        self.heat_note.setVisible(len(rows) == 0)
        self.heat_bar.setVisible(len(rows) > 0)
        if len(rows) == 0:
            self.heatmap.clear()
            steps = self.state.steps or 1
            self.heat_plot.setRange(xRange=(0.5, steps + 0.5), yRange=(0, 1), padding=0)
            self.heat_plot.getAxis("left").setTicks([[]])
            self.heat_note.setPos((steps + 1) / 2, 0.5)
            return
        steps = [step for step, _ in self.kl_over_training]
        top = float(np.nanmax(rows)) if np.isfinite(rows).any() else 1.0
        self.heatmap.setImage(rows, autoLevels=False, levels=(0.0, max(top, 1e-6)))
        self.heat_bar.setLevels((0.0, max(top, 1e-6)))
        self.heatmap.setRect(0.5, 0, rows.shape[1], len(rows))
        ticks = [(i + 0.5, f"{steps[i]:,}") for i in np.linspace(0, len(steps) - 1, min(len(steps), 5)).astype(int)]
        self.heat_plot.getAxis("left").setTicks([ticks])
        self.heat_plot.invertY(True)
