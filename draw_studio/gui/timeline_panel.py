"""Timeline: the step slider every panel follows, the canvas, the increment and the attention.

The canvas pane shows sigmoid(c_s) with the read window (red) and the write
window (green) of step s drawn on it: a rectangle over the grid's extent
gx ± delta (N-1)/2, gy ± delta (N-1)/2 whose border is as wide as the filter
(sqrt(sigma2) pixels).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QKeySequence, QPen, QShortcut
from PySide6.QtWidgets import (
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..attention import PARAM_COLUMNS, window_extent
from ..trace_checks import finite_window
from .image_view import DIVERGING, ImagePane
from .panel import Panel
from .state import StudioState
from .trace_view import increment_scale, model_sizes

READ_COLOUR = "#ff3b3b"
WRITE_COLOUR = "#38e05a"
PARAM_TITLES = {"gx": "centre gx", "gy": "centre gy", "delta": "stride δ", "sigma2": "variance σ²",
                "gamma": "intensity γ"}


class AttentionBox:
    """One attention window drawn on an image: its grid extent, border width = filter width."""

    def __init__(self, view_box: pg.ViewBox, colour: str) -> None:
        self.item = QGraphicsRectItem()
        self.colour = QColor(colour)
        self.colour.setAlpha(200)
        self.item.setZValue(5)
        self.item.hide()
        view_box.addItem(self.item)

    def place(self, params: np.ndarray | None, n: int) -> None:
        """Show the window of ``params`` (5,) for an N x N grid, or hide it (None, or not all finite)."""
        if params is None or not finite_window(params):
            self.item.hide()
            return
        x0, x1, y0, y1 = window_extent(params, n)
        pen = QPen(self.colour)
        pen.setCosmetic(False)  # width in image pixels: the filter width sqrt(sigma2)
        pen.setWidthF(max(float(np.sqrt(max(float(params[3]), 0.0))), 0.1))
        self.item.setPen(pen)
        self.item.setRect(QRectF(x0 - 0.5, y0 - 0.5, x1 - x0, y1 - y0))  # image-item pixel i spans [i, i+1)
        self.item.show()

    def rect(self) -> QRectF:
        return self.item.rect()


class TimelinePanel(Panel):
    """The shared step slider with play controls, the images of the step and the attention parameters."""

    title = "Timeline"
    dock_name = "timelineDock"

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.input_pane = ImagePane("input x")
        self.input_pane.setObjectName("inputPane")
        self.canvas_pane = ImagePane("canvas sigmoid(c_t)")
        self.canvas_pane.setObjectName("canvasPane")
        self.increment_pane = ImagePane("written by step t", colormap=DIVERGING)
        self.increment_pane.setObjectName("incrementPane")
        self.read_box = AttentionBox(self.canvas_pane.view_box, READ_COLOUR)
        self.write_box = AttentionBox(self.canvas_pane.view_box, WRITE_COLOUR)
        self.input_read_box = AttentionBox(self.input_pane.view_box, READ_COLOUR)
        self.images_row = QWidget()
        images = QHBoxLayout(self.images_row)
        images.setContentsMargins(0, 0, 0, 0)
        images.setSpacing(4)
        for pane in (self.input_pane, self.canvas_pane, self.increment_pane):
            images.addWidget(pane, 1)

        self.params_view = pg.GraphicsLayoutWidget()
        self.params_view.setObjectName("attentionPlots")
        self.params_view.setMinimumHeight(150)
        self.param_plots: dict[str, pg.PlotItem] = {}
        self.read_curves: dict[str, pg.PlotDataItem] = {}
        self.write_curves: dict[str, pg.PlotDataItem] = {}
        self.cursors: list[pg.InfiniteLine] = []
        for i, name in enumerate(PARAM_COLUMNS):
            plot = self.params_view.addPlot(row=i // 3, col=i % 3, title=PARAM_TITLES[name])
            plot.titleLabel.setText(PARAM_TITLES[name], size="8pt")
            plot.setMenuEnabled(False)
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot.getAxis("left").setWidth(34)
            self.read_curves[name] = plot.plot(pen=pg.mkPen(READ_COLOUR, width=1.5))
            self.write_curves[name] = plot.plot(pen=pg.mkPen(WRITE_COLOUR, width=1.5))
            cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ffd400", width=1))
            plot.addItem(cursor)
            self.cursors.append(cursor)
            if self.param_plots:
                plot.setXLink(next(iter(self.param_plots.values())))
            self.param_plots[name] = plot
        legend = self.params_view.addLabel(
            f"<span style='color:{READ_COLOUR}'>━ read</span><br>"
            f"<span style='color:{WRITE_COLOUR}'>━ write</span><br>"
            "<span style='color:#ffd400'>│ step t</span><br>x axis: step t", row=1, col=2)
        legend.setMaximumWidth(120)

        self.play_button = QToolButton(objectName="playButton")
        self.play_button.setText("▶")
        self.play_button.setToolTip("play / pause (Space)")
        self.slider = QSlider(Qt.Orientation.Horizontal, objectName="stepSlider")
        self.slider.setRange(0, 0)
        self.slider.setToolTip("step t (Left/Right, Home/End)")
        self.step_label = QLabel("t = 0 / 0", objectName="stepLabel")
        self.step_label.setMinimumWidth(90)
        self.speed = QSpinBox(objectName="playSpeed")
        self.speed.setRange(1, 60)
        self.speed.setValue(8)
        self.speed.setSuffix(" steps/s")
        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.step_label)
        controls.addWidget(self.speed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.images_row, 3)
        layout.addWidget(self.params_view, 2)

        self.play_timer = QTimer(self)
        self.play_timer.timeout.connect(self._advance)
        self.slider.valueChanged.connect(self.state.set_step)
        self.state.trace_changed.connect(self._sync_slider)
        self.state.step_changed.connect(self._sync_slider)
        self.play_button.clicked.connect(self.toggle_play)
        self.speed.valueChanged.connect(self._on_speed)
        self._on_speed()
        self._increment_scale = 1.0
        self._drawn_trace = None
        self._drawn_image = -1

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Keep the image panes about square: extra height goes to the attention plots."""
        super().resizeEvent(event)
        pane_width = (self.width() - 16) / 3
        self.images_row.setMaximumHeight(int(pane_width + self.canvas_pane.title.sizeHint().height() + 8))

    # ------------------------------------------------------------------ keyboard and play
    def install_shortcuts(self, window: QWidget) -> None:
        """Left/Right, Home/End and Space act on the step wherever focus is (text fields keep their keys)."""
        keys = {Qt.Key.Key_Left: lambda: self.state.set_step(self.state.step - 1),
                Qt.Key.Key_Right: lambda: self.state.set_step(self.state.step + 1),
                Qt.Key.Key_Home: lambda: self.state.set_step(0),
                Qt.Key.Key_End: lambda: self.state.set_step(self.state.steps),
                Qt.Key.Key_Space: self.toggle_play}
        self.shortcuts = []
        for key, action in keys.items():
            shortcut = QShortcut(QKeySequence(key), window)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(action)
            self.shortcuts.append(shortcut)

    @property
    def playing(self) -> bool:
        return self.play_timer.isActive()

    def toggle_play(self) -> None:
        """Play from the current step (from 0 when at the end), or pause."""
        if self.playing:
            self.play_timer.stop()
        elif self.state.steps > 0:
            if self.state.step >= self.state.steps:
                self.state.set_step(0)
            self.play_timer.start()
        self.play_button.setText("❚❚" if self.playing else "▶")

    def _on_speed(self) -> None:
        self.play_timer.setInterval(int(1000 / self.speed.value()))

    def _advance(self) -> None:
        if self.state.step >= self.state.steps:
            self.toggle_play()
        else:
            self.state.set_step(self.state.step + 1)

    # ------------------------------------------------------------------ drawing
    def _sync_slider(self, *_) -> None:
        """Keep the slider's range and position on the state's (at once: it is the input)."""
        steps, step = self.state.steps, self.state.step
        self.slider.blockSignals(True)
        if self.slider.maximum() != steps:
            self.slider.setRange(0, steps)
        if self.slider.value() != step:
            self.slider.setValue(step)
        self.slider.blockSignals(False)

    def redraw(self) -> None:
        trace, state = self.state.trace, self.state
        if trace is None:
            for pane in (self.input_pane, self.canvas_pane, self.increment_pane):
                pane.show_message("open a checkpoint, a trace or start training")
            return
        i, s, T = state.image_index, state.step, trace.steps
        self._sync_slider()
        self.step_label.setText(f"t = {s} / {T}")
        read_n, write_n = model_sizes(trace)
        new_image = trace is not self._drawn_trace or i != self._drawn_image
        if new_image:
            self._drawn_trace, self._drawn_image = trace, i
            self._increment_scale = increment_scale(trace, i)
            self._draw_param_curves(trace, i)
        if trace.input is not None:
            self.input_pane.show_image(trace.input[i])
        else:
            self.input_pane.show_message("generated from the prior:\nno input image")
        self.canvas_pane.show_image(trace.mean_images(s)[i])
        self.canvas_pane.set_title(f"canvas sigmoid(c_{s})")
        written = trace.increment(s)[i] if s >= 1 else None
        if written is None:
            self.increment_pane.show_message("t = 0: nothing written yet\n(c_0 is the initial canvas)")
        else:
            top = self._increment_scale
            self.increment_pane.show_image(written, levels=(-top, top))
            self.increment_pane.set_title(f"c_{s} − c_{s - 1}  (±{top:.2g})")
        index = s - 1
        read = trace.read_params[i, index] if trace.read_params is not None and index >= 0 else None
        write = trace.write_params[i, index] if trace.write_params is not None and index >= 0 else None
        self.read_box.place(read, read_n)
        self.input_read_box.place(read, read_n)
        self.write_box.place(write, write_n)
        for cursor in self.cursors:
            cursor.setValue(s)

    def _draw_param_curves(self, trace, image: int) -> None:
        t = np.arange(1, trace.steps + 1)
        for column, name in enumerate(PARAM_COLUMNS):
            for params, curves in ((trace.read_params, self.read_curves), (trace.write_params, self.write_curves)):
                if params is None:
                    curves[name].setData([], [])
                else:
                    curves[name].setData(t, params[image, :, column])
        self.param_plots["gx"].setXRange(0, trace.steps, padding=0.02)
