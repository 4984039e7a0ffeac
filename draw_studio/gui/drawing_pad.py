"""Draw your own: a drawing pad whose strokes the model reconstructs when the mouse is released.

The drawing is converted as ``draw-studio explore reconstruct-image`` converts a picture
(:func:`draw_studio.explore.drawing.prepare_picture`: centred by mass and sized like an MNIST
digit, binarised at 0.5 for a Bernoulli model) and reconstructed by
:func:`draw_studio.explore.reconstruct_pixels` in the background. The reconstruction becomes the
document's reconstructions and the shown trace, so every panel (timeline, glimpses, latents,
information) shows it. Its bound is compared with the test set's per-image bounds (the core's
cache; computed once per model in the background when missing).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import DrawStudioError
from ..explore import SplitBounds, reconstruct_pixels
from ..explore.drawing import load_drawing, prepare_picture
from ..explore.reconstruct import cached_split_bounds, split_bounds
from .document import Document
from .drawing_canvas import DrawingCanvas
from .explore_common import LatestRun, ModelFinder, grey_label, sha_of, test_pixels
from .image_view import ImagePane
from .panel import Panel


class DrawingPadPanel(Panel):
    """The drawing pad, its tools, what the model sees, and how surprising the drawing is to the model.

    Attributes
    ----------
    result : ExploreResult or None
        The last reconstruction of the drawing (its ``intervention`` holds the bound).
    pixels : ndarray, shape (1, C, H, W), or None
        What the model read for it.
    test : SplitBounds or None
        The test set's per-image bounds of the model, when known.
    """

    title = "Draw"
    dock_name = "drawingPad"

    def __init__(self, state: Document, service, finder: ModelFinder, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.service, self.finder = service, finder
        self.result = self.pixels = None
        self.test: SplitBounds | None = None
        self._test_for = ""  # the checkpoint SHA-256 whose test bounds were looked for
        self._note = ""
        self.pad = DrawingCanvas()
        self.pad.setObjectName("drawingCanvas")
        self.brush = QDoubleSpinBox(objectName="brushSize", prefix="brush ", suffix=" px", decimals=1)
        self.brush.setRange(0.5, 8.0)
        self.brush.setSingleStep(0.5)
        self.brush.setValue(self.pad.diameter)
        self.eraser = QToolButton(objectName="eraserButton", text="Eraser", checkable=True)
        self.clear_button = QPushButton("Clear", objectName="clearDrawing")
        self.invert_button = QPushButton("Invert", objectName="invertDrawing")
        self.load_button = QPushButton("Load image…", objectName="loadDrawing")
        self.centre = QCheckBox("centre and size it like an MNIST digit", objectName="centreDrawing", checked=True)
        self.seen = ImagePane("what the model reads")
        self.seen.setObjectName("drawingSeen")
        self.seen.setMaximumWidth(220)
        self.bound_label = QLabel(objectName="drawingBound")
        self.bound_label.setWordWrap(True)
        self.bound_label.setStyleSheet("font-size: 13pt;")
        self.test_label = grey_label(object_name="drawingTest")
        self.pixels_note = QLabel(objectName="drawingPixelsNote")
        self.pixels_note.setWordWrap(True)
        self.pixels_note.setStyleSheet("color: #ffb347;")
        self.message = grey_label(object_name="drawingMessage")

        tools = QHBoxLayout()
        for widget in (self.brush, self.eraser, self.clear_button, self.invert_button, self.load_button):
            tools.addWidget(widget)
        tools.addStretch(1)
        side = QVBoxLayout()
        side.addWidget(self.seen, 1)
        side.addWidget(self.pixels_note)
        body = QGridLayout()
        body.addWidget(self.pad, 0, 0)
        body.addLayout(side, 0, 1)
        body.setColumnStretch(0, 3)
        body.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(tools)
        layout.addWidget(self.centre)
        layout.addLayout(body, 1)
        layout.addWidget(self.bound_label)
        layout.addWidget(self.test_label)
        layout.addWidget(self.message)

        self.runs = LatestRun(self)
        self.runs.busy.connect(lambda text: self._say(text))
        self.runs.done.connect(self._on_reconstructed)
        self.runs.failed.connect(lambda text: self._say(f"could not reconstruct the drawing: {text}"))
        self.test_runs = LatestRun(self)
        self.test_runs.done.connect(self._on_test_bounds)
        self.test_runs.failed.connect(lambda text: self._set_test_text(f"no test-set comparison: {text}"))
        self.pad.stroke_finished.connect(self.reconstruct)
        self.brush.valueChanged.connect(lambda value: setattr(self.pad, "diameter", float(value)))
        self.eraser.toggled.connect(lambda on: setattr(self.pad, "erasing", bool(on)))
        self.clear_button.clicked.connect(self.pad.clear)
        self.invert_button.clicked.connect(self._invert)
        self.load_button.clicked.connect(self._ask_picture)
        state.source_changed.connect(self._on_source_changed)

    # ------------------------------------------------------------------ actions
    def _say(self, text: str) -> None:
        self._note = text
        self.message.setText(text)

    def _invert(self) -> None:
        self.pad.invert()
        self.reconstruct()

    def _ask_picture(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a picture", "", "Pictures (*.png *.jpg *.jpeg *.bmp "
                                              "*.gif *.webp);;All files (*)")
        if path:
            self.load_picture(path)

    def _model(self):
        loaded, why = self.finder.loaded()
        if loaded is None:
            self._say(f"cannot reconstruct: {why}")
        return loaded

    def reconstruct(self) -> bool:
        """Convert the pad's drawing as the model sees an image and reconstruct it in the background."""
        loaded = self._model()
        if loaded is None:
            return False
        try:
            pixels, info = prepare_picture(self.pad.ink, loaded.model.config, self.centre.isChecked(), invert=False)
        except DrawStudioError as exc:
            self._say(str(exc))
            return False
        self._start(loaded, pixels, {"drawing": "drawn in the window", **info})
        return True

    def load_picture(self, path: str | Path) -> bool:
        """Load a picture file (any size; converted like ``explore reconstruct-image``) and reconstruct it."""
        loaded = self._model()
        if loaded is None:
            return False
        try:
            pixels, info = load_drawing(path, loaded.model.config, self.centre.isChecked())
        except DrawStudioError as exc:
            self._say(str(exc))
            return False
        self.pad.set_ink(pixels[0].mean(axis=0))  # the pad shows what the model will read
        self._start(loaded, pixels, info)
        return True

    def _start(self, loaded, pixels: np.ndarray, info: dict) -> None:
        self.pixels = pixels
        self.seen.show_image(pixels[0])
        self._look_for_test_bounds(loaded)
        model, test, sha, generation = loaded.model, self.test, sha_of(loaded), self.document.generation
        self.runs.submit("reconstructing your drawing…",
                         lambda: reconstruct_pixels(model, pixels, info, 0, test, sha), tag=generation)

    def _on_reconstructed(self, generation, result) -> None:
        if generation != self.document.generation:
            return  # another source was opened meanwhile
        self.result = result
        info = result.intervention
        self._say(f"reconstructed in {self.runs.last_seconds * 1000:.0f} ms; every panel shows your drawing "
                  f"(image 0 of the reconstructions)")
        self.document.add_trace(result.trace, show=True, image_index=0)
        self._show_bound(info["bound"], info["nll_x"], info["kl"])

    # ------------------------------------------------------------------ the test set
    def _look_for_test_bounds(self, loaded) -> None:
        """The model's test bounds: cached, else computed once in the background (needs the test images)."""
        sha = sha_of(loaded)
        if sha == self._test_for:
            return
        self._test_for, self.test = sha, None
        source = f"{loaded.train_config.dataset}/test"
        self.test = cached_split_bounds(sha, source) if sha else None
        if self.test is not None:
            return
        try:
            pixels, _, source = test_pixels(self.service, loaded)
        except DrawStudioError as exc:
            self._set_test_text(f"no test-set comparison: {exc}")
            return
        model = loaded.model
        self._set_test_text(f"computing the bounds of the {len(pixels):,} test images for the comparison (once per "
                            "model, kept in the cache)…")
        self.test_runs.submit("test bounds", lambda: split_bounds(model, pixels, source, sha), tag=sha)

    def _on_test_bounds(self, sha, test) -> None:
        if sha != self._test_for:
            return
        self.test = test
        if self.result is not None:
            info = self.result.intervention
            self._show_bound(info["bound"], info["nll_x"], info["kl"])
        else:
            self._set_test_text(f"test set {test.source}: mean {test.mean:.2f} nats over {len(test.bounds):,} images")

    def _set_test_text(self, text: str) -> None:
        self.test_label.setText(text)

    def _show_bound(self, bound: float, nll_x: float, kl: float) -> None:
        self.bound_label.setText(f"How surprising your drawing is to this model: <b>{bound:.2f} nats</b> "
                                 f"(L<sub>x</sub> {nll_x:.2f} + L<sub>z</sub> {kl:.2f})")
        test = self.test
        if test is not None:
            share = test.percentile(bound)
            self._set_test_text(f"test set {test.source} ({len(test.bounds):,} images): mean {test.mean:.2f} nats; "
                                f"percentile {share:.1f}: {share:.1f} % of the test images are as surprising or less")

    # ------------------------------------------------------------------ drawing
    def _on_source_changed(self) -> None:
        self.result = self.pixels = None
        self.bound_label.setText("")
        self._say("")

    def redraw(self) -> None:
        loaded, why = self.finder.loaded()
        for widget in (self.pad, self.load_button, self.invert_button):
            widget.setEnabled(loaded is not None)
        if loaded is None:
            self.pixels_note.setText("")
            self.message.setText(why)
            self.seen.show_message("no model")
            return
        self.message.setText(self._note)
        cfg = loaded.model.config
        self.pad.set_size(cfg.height, cfg.width)
        if cfg.likelihood == "bernoulli":
            self.pixels_note.setText("This model is binary (Bernoulli): it sees your drawing binarised at 0.5, "
                                     "as shown above.")
        else:
            self.pixels_note.setText("This model sees your drawing in 256 grey levels, as shown above.")
        if self.pixels is None:
            self.seen.show_message("draw on the pad:\nthe model reconstructs\nyour drawing when\nyou let go")
        if not self.bound_label.text():
            self.bound_label.setText(f"Draw a {cfg.height} × {cfg.width} picture (bright ink on black, like MNIST), "
                                     "or load one.")
