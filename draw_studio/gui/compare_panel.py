"""Compare: two models on the same test images, with one step slider.

Model A is the open source's model (a checkpoint); model B is opened here (a file dialog, or the
shipped model one click away: the no-attention one beside a model with attention, and the other way
round). Both reconstruct the same first test images, as ``draw-studio explore compare`` does
(:func:`draw_studio.explore.compare.compare_models`, in the background on the generic worker through
:class:`~draw_studio.gui.explore_common.LatestRun`). Shown for the selected image at the slider's
step: the input, both canvases with their read (red) and write (green) windows, both models' KL per
step in one plot, and the two bounds and their difference; a scatter of every image's bounds selects
an image with a click.

Its step slider runs 0..the larger T (a model with fewer steps stays on its last) and is the window's
step: moving it moves every panel's step, and the window's step (the Timeline, the step keys, play)
moves it. It has its own selected image, and redraws only while it is in view.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..errors import DrawStudioError
from ..explore.compare import Comparison, check_comparable, compare_models, shipped_counterpart, split_inputs
from .attention_overlay import WindowOverlay
from .compare_plots import COLOUR_A, COLOUR_B, Y_BOUND_B, Y_DIFFERENCE, BoundScatter, KlBars
from .document import Document
from .explore_common import LatestRun, grey_label, sha_of
from .image_view import ImagePane
from .in_view_panel import InViewPanel
from .loading import CHECKPOINT, LoadedModel, file_kind, load_checkpoint
from .model_service import window_wording
from .timeline_panel import READ_COLOUR, WRITE_COLOUR

DEFAULT_IMAGES = 64  # test images compared (both models: ~1 s of one core each for the shipped models)
NO_B = "open a second model (model B) to compare with the open one on the same test images"


def model_name(loaded: LoadedModel) -> str:
    """A model's short name: its checkpoint file's name, else its description."""
    return Path(loaded.path).name if loaded.path else loaded.description


class ComparePanel(InViewPanel):
    """Two models side by side on the same images (see the module docstring).

    Attributes
    ----------
    comparison : Comparison or None
        The latest comparison of the open model (A) and model B.
    image, step : int
        The selected image of the comparison and the step shown (0..the larger T).
    path_b : str or None
        Model B's checkpoint.
    last_failure : str
        Why the last comparison failed ("" when it did not).

    Signals
    -------
    model_b_changed(str) : another model B was chosen (its checkpoint)
    """

    title = "Two models"
    dock_name = "compareModels"
    model_b_changed = Signal(str)

    def __init__(self, state: Document, service, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        for signal in (state.traces_changed, state.trace_changed, state.image_changed, state.step_changed):
            signal.disconnect(self.mark_dirty)  # this view has its own image, and follows the step below
        state.step_changed.connect(self._follow_window_step)
        self._moving_window_step = False
        self.service = service
        self.comparison: Comparison | None = None
        self.image = self.step = 0
        self.path_b: str | None = None
        self.last_failure = ""
        self._loaded_b: LoadedModel | None = None
        self._drawn: tuple = ()
        self.runs = LatestRun(self)
        self.runs.busy.connect(self._say)
        self.runs.done.connect(self._on_done)
        self.runs.failed.connect(self._on_failed)
        state.source_changed.connect(self._on_source_changed)

        self.name_a = QLabel(objectName="compareModelA")
        self.name_b = QLabel(objectName="compareModelB")
        for label, colour in ((self.name_a, COLOUR_A), (self.name_b, COLOUR_B)):
            label.setStyleSheet(f"color: {colour}; font-weight: bold;")
            label.setMinimumWidth(20)
        self.open_button = QPushButton("Open model B…", objectName="compareOpenButton")
        self.open_button.clicked.connect(self.ask_model_b)
        self.shipped_button = QPushButton(objectName="compareShippedButton")
        self.shipped_button.clicked.connect(self._open_shipped)
        self.count = QSpinBox(objectName="compareImages", prefix="first ", suffix=" test images")
        self.count.setRange(1, 10_000)
        self.count.setValue(DEFAULT_IMAGES)
        self.count.setKeyboardTracking(False)
        self.count.valueChanged.connect(lambda _: self.request())
        self.message = grey_label(NO_B, "compareMessage")

        self.slider = QSlider(Qt.Orientation.Horizontal, objectName="compareStepSlider")
        self.slider.setRange(0, 0)
        self.slider.setToolTip("step t of both models (Left/Right, Home/End)")
        self.slider.valueChanged.connect(self.set_step)
        self.step_label = QLabel("t = 0 / 0", objectName="compareStepLabel")
        self.step_label.setMinimumWidth(90)

        self.input_pane = ImagePane("input x (both)")
        self.input_pane.setObjectName("compareInput")
        self.canvas_a = ImagePane("A: canvas")
        self.canvas_a.setObjectName("compareCanvasA")
        self.canvas_b = ImagePane("B: canvas")
        self.canvas_b.setObjectName("compareCanvasB")
        self.windows = {}
        for side, pane, colour in (("A", self.canvas_a, COLOUR_A), ("B", self.canvas_b, COLOUR_B)):
            pane.title.setStyleSheet(f"color: {colour};")
            pane.view_box.setXLink(self.input_pane.view_box)
            pane.view_box.setYLink(self.input_pane.view_box)
            self.windows[side] = (WindowOverlay(pane.view_box, READ_COLOUR, "read"),
                                  WindowOverlay(pane.view_box, WRITE_COLOUR, "write"))
        self.bounds_label = QLabel(objectName="compareBounds")
        self.bounds_label.setTextFormat(Qt.TextFormat.RichText)
        self.bounds_label.setWordWrap(True)
        self.bounds_label.setMinimumWidth(20)
        self.kl_plot = KlBars()
        self.scatter = BoundScatter()
        self.scatter.image_clicked.connect(self.set_image)
        self.y_axis = QComboBox(objectName="compareScatterY")
        self.y_axis.addItems([Y_BOUND_B, Y_DIFFERENCE])
        self.y_axis.setToolTip("the scatter's y axis: each image's bound under B, or B − A")
        self.y_axis.currentTextChanged.connect(lambda _: self._changed())
        self._lay_out()

    def _lay_out(self) -> None:
        models = QHBoxLayout()
        models.addWidget(QLabel("A:"))
        models.addWidget(self.name_a, 1)
        models.addWidget(QLabel("B:"))
        models.addWidget(self.name_b, 1)
        buttons = QHBoxLayout()
        for widget in (self.open_button, self.shipped_button, self.count):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        steps = QHBoxLayout()
        steps.addWidget(self.slider, 1)
        steps.addWidget(self.step_label)
        images = QHBoxLayout()
        images.setSpacing(4)
        for pane in (self.input_pane, self.canvas_a, self.canvas_b):
            images.addWidget(pane, 1)
        self.images_row = QWidget()
        self.images_row.setLayout(images)
        images.setContentsMargins(0, 0, 0, 0)
        scatter_box = QVBoxLayout()
        scatter_box.setContentsMargins(0, 0, 0, 0)
        y_row = QHBoxLayout()
        y_row.addWidget(QLabel("every image, y:"))
        y_row.addWidget(self.y_axis)
        y_row.addStretch(1)
        scatter_box.addLayout(y_row)
        scatter_box.addWidget(self.scatter, 1)
        plots = QHBoxLayout()
        plots.addWidget(self.kl_plot, 3)
        plots.addLayout(scatter_box, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(models)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        layout.addLayout(steps)
        layout.addWidget(self.images_row, 3)
        layout.addWidget(self.bounds_label)
        layout.addLayout(plots, 3)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Keep the three image panes about square: extra height goes to the plots."""
        super().resizeEvent(event)
        pane_width = (self.width() - 16) / 3
        self.images_row.setMaximumHeight(int(pane_width + self.canvas_a.title.sizeHint().height() + 8))

    # ------------------------------------------------------------------ model B
    def ask_model_b(self) -> None:
        """Choose model B with a file dialog."""
        folder = str(Path(self.path_b).parent) if self.path_b else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open model B", folder, "Checkpoints (*.ckpt);;All files (*)")
        if path:
            self.open_model_b(path)

    def _open_shipped(self) -> None:
        loaded = self.document.model
        path = shipped_counterpart(loaded.model.config) if loaded is not None else None
        if path is not None:
            self.open_model_b(path)

    def open_model_b(self, path: str | Path) -> None:
        """Compare the open model with the checkpoint ``path`` (in the background)."""
        self.path_b = str(path)
        self._loaded_b = None
        self.comparison = None  # never the previous B's figures under the new B's name
        self._changed()
        self.model_b_changed.emit(self.path_b)
        self.request()

    def request(self) -> None:
        """Compare A (the open model) and B on the first test images, in the background."""
        loaded_a, path_b = self.document.model, self.path_b
        self.last_failure = ""
        if path_b is None:
            return self._say(NO_B)
        if loaded_a is None:
            return self._say("model A is the open checkpoint's model: open a checkpoint (File ▸ Open) to compare "
                             f"it with {Path(path_b).name}")
        try:
            images = self.service.test_images(loaded_a.train_config)
            count = min(self.count.value(), len(images))
            inputs, binarization = split_inputs(images, loaded_a.model.config, count,
                                                f"{loaded_a.train_config.dataset}/test")
        except DrawStudioError as exc:
            return self._fail(f"no test images to compare on: {exc}")
        model_a, name_a, sha_a = loaded_a.model, model_name(loaded_a), sha_of(loaded_a)
        cached = self._loaded_b if self._loaded_b is not None and self._loaded_b.path == path_b else None

        def run():
            loaded_b = cached or _load_model_b(path_b)
            check_comparable(model_a.config, loaded_b.model.config, f"A ({name_a})", f"B ({model_name(loaded_b)})")
            return loaded_b, compare_models(model_a, loaded_b.model, inputs, name_a, model_name(loaded_b), sha_a,
                                            loaded_b.sha256, binarization)

        self.runs.submit(f"comparing {name_a} and {Path(path_b).name} on {count} test images…", run,
                         tag=(self.document.generation, path_b))

    def _on_done(self, tag, value) -> None:
        generation, path_b = tag
        if generation != self.document.generation or path_b != self.path_b:
            return  # another model A or B was chosen meanwhile
        self._loaded_b, comparison = value
        first = self.comparison is None
        self.comparison = comparison
        self.image = min(self.image, comparison.n - 1)
        steps = max(comparison.trace_a.steps, comparison.trace_b.steps)
        self.slider.blockSignals(True)
        self.slider.setRange(0, steps)
        self.slider.blockSignals(False)
        self.set_step(steps if first else min(self.step, steps))
        self._say(f"{comparison.n} {comparison.source} images (binarisation {comparison.binarization}) in "
                  f"{self.runs.last_seconds:.1f} s; click a point of the scatter to show that image")
        self._changed()

    def _on_failed(self, text: str) -> None:
        self._fail(f"could not compare: {text}")

    def _fail(self, text: str) -> None:
        self.last_failure = window_wording(text)
        self._say(self.last_failure)

    def _say(self, text: str) -> None:
        self.message.setText(text)

    def _on_source_changed(self) -> None:
        """Another source: its model is model A now (compared again with B, when B is chosen)."""
        self.comparison = None
        self._changed()
        if self.path_b is not None and self.document.model is not None:
            self.request()
        elif self.path_b is not None:
            self._say(f"model A is the open checkpoint's model: {self.document.lacks('samples') or 'open one'}")

    def wait(self, timeout_s: float = 600.0) -> str:
        """Process events until no comparison runs or waits and its result has arrived (the screenshot,
        tests); returns :attr:`last_failure` ("" when it succeeded)."""
        deadline = time.monotonic() + timeout_s
        while self.runs.pending and time.monotonic() < deadline:
            self.runs.wait(50)
            QApplication.processEvents()
        QApplication.processEvents()
        return self.last_failure

    # ------------------------------------------------------------------ selection
    def set_step(self, step: int) -> None:
        """Show step ``step`` (clamped to 0..the larger T) of both models."""
        step = min(max(int(step), 0), self.slider.maximum())
        if self.slider.value() != step:
            self.slider.blockSignals(True)
            self.slider.setValue(step)
            self.slider.blockSignals(False)
        if step != self.step:
            self.step = step
            self._changed()
            self._moving_window_step = True  # the window's step follows (clamped to its own trace's T)
            try:
                self.document.set_step(step)
            finally:
                self._moving_window_step = False

    def _follow_window_step(self, step: int) -> None:
        if not self._moving_window_step and self.comparison is not None:
            self.set_step(step)

    def set_image(self, index: int) -> None:
        """Select image ``index`` of the comparison."""
        if self.comparison is not None and 0 <= index < self.comparison.n and index != self.image:
            self.image = int(index)
            self._changed()

    def _changed(self) -> None:
        self._dirty = True

    # ------------------------------------------------------------------ drawing
    def redraw(self) -> None:
        loaded = self.document.model
        self.name_a.setText(loaded.description if loaded is not None else "(no model open)")
        self.name_b.setText(Path(self.path_b).name if self.path_b else "(none)")
        shipped = shipped_counterpart(loaded.model.config) if loaded is not None else None
        offer = shipped is not None and shipped.name != Path(loaded.path or "").name
        self.shipped_button.setVisible(offer)
        if offer:
            kind = "no-attention" if "noattention" in shipped.name else "attention"
            self.shipped_button.setText(f"B = shipped {kind} model")
            self.shipped_button.setToolTip(str(shipped))
        comparison = self.comparison
        if comparison is None:
            for pane in (self.input_pane, self.canvas_a, self.canvas_b):
                pane.show_message("nothing compared yet")
            for overlays in self.windows.values():
                for overlay in overlays:
                    overlay.place(None, 1, 1, 1)
            self.bounds_label.setText("")
            self.kl_plot.show_kl(None, None)
            self.scatter.show_bounds(np.zeros(0), np.zeros(0), self.y_axis.currentText(), -1)
            self.step_label.setText("t = 0 / 0")
            self._drawn = ()
            return
        i, s = self.image, self.step
        key = (id(comparison), i, self.y_axis.currentText())
        if key != self._drawn:
            self._drawn = key
            self._draw_image_figures(comparison, i)
        self.step_label.setText(f"t = {s} / {self.slider.maximum()}")
        self.input_pane.show_image(comparison.trace_a.input[i])
        for side, pane, trace in (("A", self.canvas_a, comparison.trace_a), ("B", self.canvas_b, comparison.trace_b)):
            shown = min(s, trace.steps)
            pane.show_image(trace.mean_images(shown)[i])
            pane.set_title(f"{side}: sigmoid(c_{shown})" + ("" if shown == s else f" (its last step, T = {shown})"))
            cfg = trace.model_config
            read_box, write_box = self.windows[side]
            index = shown - 1
            read = trace.read_params[i, index] if trace.read_params is not None and index >= 0 else None
            write = trace.write_params[i, index] if trace.write_params is not None and index >= 0 else None
            read_box.place(read, cfg.read_n, cfg.height, cfg.width)
            write_box.place(write, cfg.write_n, cfg.height, cfg.width)
        self.kl_plot.set_step(s)

    def _draw_image_figures(self, comparison: Comparison, i: int) -> None:
        """What depends on the image only: the bounds line, the KL bars, the scatter's selection."""
        names = (f"A {comparison.name_a}", f"B {comparison.name_b}")
        self.kl_plot.show_kl(comparison.kl_a[i], comparison.kl_b[i], names)
        self.scatter.show_bounds(comparison.bounds_a, comparison.bounds_b, self.y_axis.currentText(), i)
        trace = comparison.trace_a
        label = f" (a {int(trace.labels[i])})" if trace.labels is not None else ""
        index = int(trace.source_index[i]) if trace.source_index is not None else i
        a, b, d = comparison.bounds_a[i], comparison.bounds_b[i], comparison.difference[i]
        self.bounds_label.setText(
            f"test image {index}{label}: <span style='color:{COLOUR_A}'>A <b>{a:.2f}</b></span> · "
            f"<span style='color:{COLOUR_B}'>B <b>{b:.2f}</b></span> · B − A <b>{d:+.2f}</b> nats"
            f"<br><span style='color:#9a9a9a'>mean over {comparison.n} images: A {comparison.mean_bound_a:.2f} · "
            f"B {comparison.mean_bound_b:.2f} · B − A {comparison.mean_difference:+.2f} nats</span>")


def _load_model_b(path: str) -> LoadedModel:
    """Model B's checkpoint (worker thread); another kind of file is one line."""
    kind = file_kind(path)
    if kind != CHECKPOINT:
        raise DrawStudioError(f"{Path(path).name} is a {kind} file, not a checkpoint: model B must be a checkpoint")
    return load_checkpoint(path)
