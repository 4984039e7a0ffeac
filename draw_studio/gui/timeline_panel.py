"""Timeline: the step slider every panel follows, the canvas, the increment and the attention.

The canvas pane shows sigmoid(c_s) with the read window (red) and the write
window (green) of step s drawn on it, the input pane the read window. A
window is the extent of its filter grid, gx ± delta (N-1)/2 by
gy ± delta (N-1)/2, drawn as the exporter draws it (:mod:`draw_studio.window_style`):
by default outlined, with the filter width sqrt(sigma2) a translucent band
outside, so the image under it stays visible; the paper's thick border is an
option. Windows past the image are clipped and marked at its edge. Read and
write can be hidden and their opacity changed (keys R, W, [ and ], B for the
style).

The image panes zoom with the wheel and pan with a drag (together), and the
value under the cursor is sent as text by :attr:`TimelinePanel.hover_text`.
The step keys work anywhere in the window unless a text field is being
edited (see :mod:`draw_studio.gui.keys`).

For an attention classifier the steps are its glimpses 1..T: the input pane
shows the read window of glimpse t on the input, the middle pane the glimpse
itself (N x N, scaled to its own range), and the canvas pane says that a
classifier has none.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .attention_overlay import WindowControls, WindowOverlay
from .attention_plots import AttentionPlots
from .document import NOT_CLASSIFIED
from .image_view import DIVERGING, ImagePane
from .keys import WindowKeys
from .panel import Panel
from .state import StudioState
from .trace_view import increment_scale, model_sizes

READ_COLOUR = "#ff3b3b"
WRITE_COLOUR = "#38e05a"
PAGE = 8  # steps moved by Page Up / Page Down
NO_CANVAS = "no canvas: an attention classifier only reads, it never writes"
NO_WRITE_WINDOW = "no write window: an attention classifier only reads (its read window is red)"
OPACITY_STEP = 0.1  # opacity change of [ and ]


def _values(value: np.ndarray, sign: bool = False) -> str:
    """One pixel's value(s): ``0.832`` for grey, ``(0.1, 0.5, 0.9)`` for colour."""
    form = "{:+.3f}" if sign else "{:.3f}"
    flat = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    texts = [form.format(v) for v in flat]
    return texts[0] if len(texts) == 1 else f"({', '.join(texts)})"


class TimelinePanel(Panel):
    """The shared step slider with play controls, the images of the step and the attention parameters.

    Signals
    -------
    hover_text(str) : the value of the pixel under the cursor (and the canvas logit), "" when none
    """

    title = "Timeline"
    dock_name = "timelineDock"
    hover_text = Signal(str)

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.input_pane = ImagePane("input x")
        self.input_pane.setObjectName("inputPane")
        self.canvas_pane = ImagePane("canvas sigmoid(c_t)")
        self.canvas_pane.setObjectName("canvasPane")
        self.increment_pane = ImagePane("written by step t", colormap=DIVERGING)
        self.increment_pane.setObjectName("incrementPane")
        self.glimpse_pane = ImagePane("glimpse t")  # an attention classifier's, in the increment's place
        self.glimpse_pane.setObjectName("classifierGlimpsePane")
        self.glimpse_pane.setToolTip("what glimpse t read: γ F_Y x F_Xᵀ, from 0 to its own largest value")
        self.glimpse_pane.hide()
        self._classifier_layout = False
        self.read_box = WindowOverlay(self.canvas_pane.view_box, READ_COLOUR, "read")
        self.write_box = WindowOverlay(self.canvas_pane.view_box, WRITE_COLOUR, "write")
        self.input_read_box = WindowOverlay(self.input_pane.view_box, READ_COLOUR, "read")
        self.window_controls = WindowControls(READ_COLOUR, WRITE_COLOUR)
        self.window_controls.changed.connect(self._on_window_style)
        for pane in (self.input_pane, self.increment_pane):  # zoom and pan the three images together
            pane.view_box.setXLink(self.canvas_pane.view_box)
            pane.view_box.setYLink(self.canvas_pane.view_box)
        for pane in (self.input_pane, self.canvas_pane, self.increment_pane, self.glimpse_pane):
            pane.hovered.connect(lambda x, y, pane=pane: self._on_hover(pane, x, y))
        self._hover: tuple[ImagePane | None, int, int] = (None, -1, -1)
        self.window_note = QLabel(objectName="windowNote")  # e.g. "write window extends past the image (right)"
        self.window_note.setStyleSheet("color: #ffb347;")
        self.window_note.setWordWrap(True)
        self.window_note.setMinimumWidth(20)
        self.window_note.setFixedHeight(2 * self.window_note.fontMetrics().lineSpacing() + 2)  # no jump as it changes
        self.images_row = QWidget()
        images = QHBoxLayout(self.images_row)
        images.setContentsMargins(0, 0, 0, 0)
        images.setSpacing(4)
        for pane in (self.input_pane, self.canvas_pane, self.increment_pane, self.glimpse_pane):
            images.addWidget(pane, 1)

        self.params_view = AttentionPlots(READ_COLOUR, WRITE_COLOUR)

        self.play_button = QToolButton(objectName="playButton")
        self.play_button.setText("▶")
        self.play_button.setToolTip("play / pause (Space)")
        self.slider = QSlider(Qt.Orientation.Horizontal, objectName="stepSlider")
        self.slider.setRange(0, 0)
        self.slider.setToolTip(f"step t (Left/Right, Home/End, Page Up/Down: ±{PAGE})")
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
        layout.addWidget(self.window_controls)
        layout.addWidget(self.images_row, 3)
        layout.addWidget(self.window_note)
        params_area = QWidget()  # keeps its share of the height while the plots are hidden
        QVBoxLayout(params_area).addWidget(self.params_view)
        params_area.layout().setContentsMargins(0, 0, 0, 0)
        layout.addWidget(params_area, 2)

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
        """Keys of the timeline anywhere in ``window`` unless a text field is being edited.

        Left/Right: one step, Home/End: first/last, Page Up/Page Down: ±8
        steps, Space: play/pause; R and W show/hide the read and write
        windows, [ and ] change their opacity, B switches their style.
        """
        controls = self.window_controls
        keys = {Qt.Key.Key_Left: lambda: self.state.set_step(self.state.step - 1),
                Qt.Key.Key_Right: lambda: self.state.set_step(self.state.step + 1),
                Qt.Key.Key_Home: lambda: self.state.set_step(0),
                Qt.Key.Key_End: lambda: self.state.set_step(self.state.steps),
                Qt.Key.Key_PageUp: lambda: self.state.set_step(self.state.step + PAGE),
                Qt.Key.Key_PageDown: lambda: self.state.set_step(self.state.step - PAGE),
                Qt.Key.Key_Space: self.toggle_play,
                Qt.Key.Key_R: controls.read_toggle.toggle,
                Qt.Key.Key_W: controls.write_toggle.click,  # click: nothing while it is disabled
                Qt.Key.Key_BracketLeft: lambda: controls.set_opacity(controls.opacity - OPACITY_STEP),
                Qt.Key.Key_BracketRight: lambda: controls.set_opacity(controls.opacity + OPACITY_STEP),
                Qt.Key.Key_B: controls.next_style}
        self.keys = WindowKeys(window, keys, parent=self)

    def focus_timeline(self) -> None:
        """Put the keyboard focus on the step slider (e.g. after a file was opened): the keys act on the step."""
        self.slider.setFocus(Qt.FocusReason.OtherFocusReason)
        if getattr(self, "keys", None) is not None:
            self.keys.stop_editing()

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
        steps, step, first = self.state.steps, self.state.step, self.state.first_step
        self.slider.blockSignals(True)
        if self.slider.maximum() != steps or self.slider.minimum() != first:
            self.slider.setRange(first, steps)
        if self.slider.value() != step:
            self.slider.setValue(step)
        self.slider.blockSignals(False)

    def redraw(self) -> None:
        trace, state = self.state.trace, self.state
        self._use_classifier_layout(trace is None and state.is_classifier)
        if trace is None and state.classification is not None:
            self.params_view.show()
            self._redraw_classification()
            return
        self.params_view.setVisible(trace is not None)  # nothing to plot: no empty axes
        if trace is None:
            for pane in (self.input_pane, self.canvas_pane, self.increment_pane):
                pane.show_message("open a checkpoint, a trace or start training")
            for box in (self.read_box, self.write_box, self.input_read_box):
                box.place(None, 1, 1, 1)
            self.step_label.setText("t = 0 / 0")
            if state.is_classifier:  # a classifier checkpoint without test images (the Gallery says why)
                self.input_pane.show_message(NOT_CLASSIFIED)
                self.glimpse_pane.show_message("")
                self.canvas_pane.show_message(NO_CANVAS)
            self.params_view.clear_curves()
            self._drawn_trace = None
            self._show_notes()
            return
        i, s, T = state.image_index, state.step, trace.steps
        self._sync_slider()
        self.step_label.setText(f"t = {s} / {T}")
        read_n, write_n = model_sizes(trace)
        new_image = trace is not self._drawn_trace or i != self._drawn_image
        if new_image:
            self._drawn_trace, self._drawn_image = trace, i
            self._increment_scale = increment_scale(trace, i)
            self.params_view.show_params(trace, i)
            if trace.input is not None:  # the same at every step
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
        cfg = trace.model_config
        self.read_box.place(read, read_n, cfg.height, cfg.width)
        self.input_read_box.place(read, read_n, cfg.height, cfg.width)
        self.write_box.place(write, write_n, cfg.height, cfg.width)
        self._show_notes()
        self.params_view.set_step(s)
        self._emit_hover()

    def _use_classifier_layout(self, classifier: bool) -> None:
        """An attention classifier: the glimpse pane in the increment's place, the panes zoomed each on its
        own (a glimpse is not the input's size); a DRAW source: the three panes zoomed and panned together."""
        if classifier == self._classifier_layout:
            return
        self._classifier_layout = classifier
        self.window_controls.set_write_window(not classifier, NO_WRITE_WINDOW)
        self.increment_pane.setVisible(not classifier)
        self.glimpse_pane.setVisible(classifier)
        for pane in (self.input_pane, self.increment_pane):
            pane.view_box.setXLink(None if classifier else self.canvas_pane.view_box)
            pane.view_box.setYLink(None if classifier else self.canvas_pane.view_box)
        self.input_pane.fit_view()
        self._drawn_trace = None

    def _redraw_classification(self) -> None:
        """Glimpse s of the selected image: its read window on the input, the glimpse, the attention curves."""
        state = self.state
        shown = state.classification
        i, s, T = state.image_index, state.step, shown.steps
        cfg = shown.model_config
        self._sync_slider()
        self.step_label.setText(f"glimpse t = {s} / {T}")
        if shown is not self._drawn_trace or i != self._drawn_image:
            self._drawn_trace, self._drawn_image = shown, i
            self.params_view.show_params(shown, i)
        self.input_pane.show_image(shown.input[i])
        self.canvas_pane.show_message(NO_CANVAS)
        read = shown.read_params[i, s - 1] if s >= 1 else None
        self.read_box.place(None, 1, 1, 1)
        self.write_box.place(None, 1, 1, 1)
        self.input_read_box.place(read, cfg.read_n, cfg.height, cfg.width)
        if s >= 1:
            glimpse = shown.read_glimpse[i, s - 1]  # (C, N, N)
            top = float(glimpse.max())
            self.glimpse_pane.show_image(glimpse, levels=(0.0, top if top > 1e-9 else 1.0))
            self.glimpse_pane.set_title(f"glimpse {s} ({cfg.read_n}×{cfg.read_n}): 0..{top:.3g}")
        else:
            self.glimpse_pane.show_message("nothing read yet")
        self._show_notes()
        self.params_view.set_step(s)
        self._emit_hover()

    # ------------------------------------------------------------------ attention windows and read-outs
    def _on_window_style(self) -> None:
        controls = self.window_controls
        for box, toggle in ((self.read_box, controls.read_toggle), (self.input_read_box, controls.read_toggle),
                            (self.write_box, controls.write_toggle)):
            box.set_style(toggle.isChecked(), controls.opacity, controls.style)
        self._show_notes()

    def _show_notes(self) -> None:
        """Say under the images which of the windows drawn go past the image (the arrows mark where)."""
        notes = dict.fromkeys(n for n in (self.read_box.note(), self.input_read_box.note(), self.write_box.note())
                              if n)
        self.window_note.setText("; ".join(notes))

    def _on_hover(self, pane: ImagePane, x: int, y: int) -> None:
        self._hover = (pane, x, y) if x >= 0 else (None, -1, -1)
        self._emit_hover()

    def _emit_hover(self) -> None:
        pane, x, y = self._hover
        self.hover_text.emit(self.describe_pixel(pane, x, y) if pane is not None else "")

    def describe_pixel(self, pane: ImagePane, x: int, y: int) -> str:
        """What pane ``pane`` shows at pixel (x, y) of the current image and step ("" if nothing)."""
        trace, s = self.state.trace, self.state.step
        value = pane.value_at(x, y)
        shown = trace if trace is not None else self.state.classification
        if shown is None or value is None or not pane.showing_image():
            return ""
        where = f"(x {x}, y {y})"
        if pane is self.glimpse_pane:
            return f"glimpse {s} {where} = {_values(value)}"
        if trace is None:
            return f"input x {where} = {_values(value)}"
        if pane is self.canvas_pane:
            logit = trace.canvas[self.state.image_index, s, :, y, x]  # (C,)
            return f"canvas {where}: sigmoid(c_{s}) = {_values(value)}, logit c_{s} = {_values(logit)}"
        if pane is self.increment_pane:
            return f"c_{s} − c_{s - 1} {where} = {_values(value, sign=True)}"
        return f"input x {where} = {_values(value)}"
