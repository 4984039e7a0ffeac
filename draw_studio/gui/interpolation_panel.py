"""Interpolate: two images' posterior means mu_1..mu_T, interpolated, decoded as generation.

Each end is an image of the test set (by index) or of the shown reconstruction trace (e.g. your
drawing). :func:`draw_studio.explore.interpolate` runs in the background; the strip shows the
interpolations at the timeline's step (so playing the timeline plays them). "Show in every
panel" makes the strip the document's samples; "Export GIF…" writes it with the exporter's own
code (:func:`draw_studio.export.export_gif`) as a background job.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from .. import export
from ..errors import DrawStudioError
from ..explore import interpolate
from ..explore.interpolate import METHODS
from .document import Document
from .explore_common import LatestRun, ModelFinder, grey_label, sha_of, test_pixels
from .export_dialog import default_scale
from .image_view import TileGrid
from .jobs import JobRunner
from .panel import Panel

TEST, SHOWN = "test image #", "shown trace, image #"


class InterpolationPanel(Panel):
    """Two ends, a method and a count; the decoded interpolations as a strip.

    Attributes
    ----------
    result : ExploreResult or None
        The last interpolation (a generated trace of ``count`` samples).
    """

    title = "Interpolate"
    dock_name = "interpolation"

    def __init__(self, state: Document, service, finder: ModelFinder, parent=None) -> None:
        super().__init__(state, parent)
        self.service, self.finder = service, finder
        self.result = None
        self.ends = []
        grid = QGridLayout()
        for row, (name, default) in enumerate((("from", 3), ("to", 2))):
            kind = QComboBox(objectName=f"{name}Kind")
            kind.addItems([TEST, SHOWN])
            index = QSpinBox(objectName=f"{name}Index")
            index.setRange(0, 1_000_000)
            index.setValue(default)
            grid.addWidget(QLabel(name), row, 0)
            grid.addWidget(kind, row, 1)
            grid.addWidget(index, row, 2)
            self.ends.append((kind, index))
        self.method = QComboBox(objectName="interpolationMethod")
        self.method.addItems(list(METHODS))
        self.count = QSpinBox(objectName="interpolationCount", suffix=" steps")
        self.count.setRange(2, 32)
        self.count.setValue(9)
        self.go = QPushButton("Interpolate", objectName="interpolateButton")
        self.show_button = QPushButton("Show in every panel", objectName="interpolationToDocument")
        self.gif_button = QPushButton("Export GIF…", objectName="interpolationGif")
        controls = QHBoxLayout()
        for widget in (self.method, self.count, self.go, self.show_button, self.gif_button):
            controls.addWidget(widget)
        controls.addStretch(1)
        self.strip = TileGrid("interpolation")
        self.strip.setObjectName("interpolationStrip")
        self.message = grey_label(object_name="interpolationMessage")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(grid)
        layout.addLayout(controls)
        layout.addWidget(self.message)
        layout.addWidget(self.strip, 1)

        self.runs = LatestRun(self)
        self.runs.busy.connect(lambda _: self.message.setText("interpolating…"))
        self.runs.done.connect(self._on_done)
        self.runs.failed.connect(lambda text: self.message.setText(f"could not interpolate: {text}"))
        self.jobs = JobRunner(self)
        self.jobs.done.connect(self.message.setText)
        self.jobs.failed.connect(lambda text: self.message.setText(f"GIF export failed: {text}"))
        self.go.clicked.connect(self.run)
        self.show_button.clicked.connect(self.show_in_document)
        self.gif_button.clicked.connect(self._ask_gif)
        state.source_changed.connect(self._forget)

    def _forget(self) -> None:
        self.result = None
        self.message.setText("")

    def set_ends(self, first: tuple[str, int], second: tuple[str, int]) -> None:
        """Choose the ends: (``"test"`` or ``"shown"``, index) each."""
        for (kind, index), (which, number) in zip(self.ends, (first, second)):
            kind.setCurrentText(TEST if which == "test" else SHOWN)
            index.setValue(int(number))

    def _image(self, loaded, kind: str, index: int):
        """One end: the image (C, H, W) as the model sees it, and where it came from."""
        if kind == TEST:
            pixels, labels, source = test_pixels(self.service, loaded)
            if not 0 <= index < len(pixels):
                raise DrawStudioError(f"test image #{index} does not exist: {source} holds 0..{len(pixels) - 1}")
            info = {"kind": "index", "index": index, "source": source}
            if labels is not None:
                info["label"] = int(labels[index])
            return pixels[index], info
        trace = self.document.trace
        if trace is None or trace.input is None:
            raise DrawStudioError("the shown trace has no input images (generated from the prior): pick test images, "
                                  "or show reconstructions (Gallery) or a drawing first")
        if not 0 <= index < trace.n:
            raise DrawStudioError(f"the shown trace holds images 0..{trace.n - 1}, not #{index}")
        return trace.input[index], {"kind": "trace", "index": index, "source": trace.source or "trace"}

    def run(self) -> bool:
        """Interpolate between the two ends in the background."""
        loaded, why = self.finder.loaded()
        if loaded is None:
            self.message.setText(why)
            return False
        try:
            (first, first_info), (second, second_info) = (self._image(loaded, kind.currentText(), index.value())
                                                          for kind, index in self.ends)
        except DrawStudioError as exc:
            self.message.setText(str(exc))
            return False
        model, count, method, sha = loaded.model, self.count.value(), self.method.currentText(), sha_of(loaded)
        self.runs.submit("interpolate", lambda: interpolate(model, first, second, count, (method,), first_info,
                                                            second_info, sha), tag=self.document.generation)
        return True

    def _on_done(self, generation, result) -> None:
        if generation != self.document.generation:
            return
        self.result = result
        info = result.intervention
        ends = [f"{end['source']} #{end['index']}" + (f" (a {end['label']})" if "label" in end else "")
                for end in (info["from"], info["to"])]
        self.message.setText(f"{info['count']} {info['methods'][0]} steps from {ends[0]} to {ends[1]}, decoded from "
                             f"their posterior means ({self.runs.last_seconds:.2f} s)")
        self.mark_dirty()

    def show_in_document(self) -> None:
        if self.result is not None:
            self.document.add_trace(self.result.trace, show=True, image_index=0)

    def _ask_gif(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the interpolation as GIF", "interpolation.gif",
                                              "GIF (*.gif)")
        if path:
            self.export_gif(path)

    def export_gif(self, path: str | Path, fps: float = 8.0) -> bool:
        """Write the interpolation as an animated GIF (the images side by side, step by step), in the background."""
        if self.result is None:
            self.message.setText("nothing to export yet: press Interpolate")
            return False
        trace, path = self.result.trace, str(path)
        options = {"scale": default_scale(trace), "windows": trace.write_params is not None, "columns": trace.n}

        def write(progress) -> str:
            export.export_gif(trace, path, fps=fps, progress=progress, **options)
            return f"wrote {path}"

        return self.jobs.run("exporting the interpolation as GIF…", write)

    def redraw(self) -> None:
        loaded, why = self.finder.loaded()
        self.go.setEnabled(loaded is not None)
        self.show_button.setEnabled(self.result is not None)
        self.gif_button.setEnabled(self.result is not None)
        if self.result is None:
            self.strip.show_message(why or "choose two images and press Interpolate")
            return
        trace = self.result.trace
        step = min(self.document.step, trace.steps) if self.document.trace is not None else trace.steps
        self.strip.show_tiles(trace.mean_images(step), columns=trace.n)
        self.strip.set_title(f"{trace.n} interpolations, canvas sigmoid(c_{step}) (the timeline's step)")
