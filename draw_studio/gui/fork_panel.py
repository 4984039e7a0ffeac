"""Fork at step t: what is decided by step t.

For the shown image and the timeline's step t, :func:`draw_studio.explore.fork` keeps z_1..z_t and
draws the rest from the prior K times (seed shown); the K continuations are shown side by side at
the timeline's step, so playing the timeline plays them. The commitment curve
(:func:`draw_studio.explore.commitment`: for every t = 0..T, the mean pixel standard deviation of
the final image over K continuations forked at t) is computed in the background; a click on one
of its points shows the fork at that t (the same seed: the forks the curve was computed from).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget

from ..explore import commitment, fork
from ..explore.fork import half_step
from .document import Document
from .explore_common import LatestRun, ModelFinder, grey_label
from .image_view import TileGrid
from .panel import Panel

CURVE_COLOUR = "#4da6ff"
FORK_COLOUR = "#ffd400"


class ForkPanel(Panel):
    """K continuations of the shown image after step t, and the commitment curve.

    Attributes
    ----------
    forked : ExploreResult or None
        The fork shown (its ``intervention`` says image, ``at``, ``k``, ``seed``).
    curve : ndarray, shape (T+1,), or None
        The commitment curve of the image the last curve was computed for.
    """

    title = "Fork"
    dock_name = "forkPanel"

    def __init__(self, state: Document, finder: ModelFinder, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.finder = finder
        self.forked = None
        self.curve: np.ndarray | None = None
        self._base = None  # (trace, image) the fork and the curve were computed for
        self.k = QSpinBox(objectName="forkK", prefix="K = ")
        self.k.setRange(2, 64)
        self.k.setValue(16)
        self.seed = QSpinBox(objectName="forkSeed", prefix="seed ")
        self.seed.setRange(0, 2 ** 31 - 1)
        self.fork_button = QPushButton("Fork at step t", objectName="forkButton")
        self.fork_button.setToolTip("keep z_1..z_t of the shown image (t: the timeline's step), draw the rest "
                                    "from the prior K times")
        self.curve_button = QPushButton("Commitment curve", objectName="commitmentButton")
        self.curve_button.setToolTip("for every t = 0..T: how much of the final image is still open after step t")
        self.show_button = QPushButton("Show in every panel", objectName="forkToDocument")
        self.show_button.setToolTip("make the K continuations the samples every panel shows")
        self.progress = QProgressBar(objectName="commitmentProgress")
        self.progress.setRange(0, 1)  # then 0..T: the steps of the curve's growing batch done
        self.progress.setMaximumHeight(12)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.grid = TileGrid("continuations")
        self.grid.setObjectName("forkGrid")
        self.plot = pg.PlotWidget(objectName="commitmentPlot")
        self.plot.setMenuEnabled(False)
        self.plot.setMinimumHeight(130)
        item = self.plot.getPlotItem()
        item.setTitle("commitment: mean pixel std of the final image over K forks at t", size="8pt")
        item.setLabel("bottom", "fork point t (latents kept)")
        item.showGrid(x=True, y=True, alpha=0.2)
        self.line = self.plot.plot(pen=pg.mkPen(CURVE_COLOUR, width=1.5))
        self.points = pg.ScatterPlotItem(size=7, brush=pg.mkBrush(CURVE_COLOUR), pen=None, hoverable=True,
                                         tip="t = {x:.0f}: {y:.4f}".format)
        self.points.sigClicked.connect(self._on_point_clicked)
        self.plot.addItem(self.points)
        self.fork_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(FORK_COLOUR, width=1))
        self.fork_line.hide()
        self.plot.addItem(self.fork_line)
        self.message = grey_label(object_name="forkMessage")
        self.curve_note = grey_label(object_name="commitmentNote")

        controls = QHBoxLayout()
        for widget in (self.k, self.seed, self.fork_button, self.curve_button, self.show_button):
            controls.addWidget(widget)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(controls)
        layout.addWidget(self.message)
        layout.addWidget(self.grid, 3)
        layout.addWidget(self.progress)
        layout.addWidget(self.plot, 2)
        layout.addWidget(self.curve_note)

        self.fork_runs = LatestRun(self)
        self.fork_runs.done.connect(self._on_forked)
        self.fork_runs.failed.connect(lambda text: self._say(f"fork failed: {text}"))
        self.curve_runs = LatestRun(self)
        self.curve_runs.busy.connect(lambda _: (self.progress.setValue(0), self.progress.show()))
        self.curve_runs.progress.connect(self._on_curve_progress)
        self.curve_runs.idle.connect(self.progress.hide)
        self.curve_runs.done.connect(self._on_curve)
        self.curve_runs.failed.connect(lambda text: self.curve_note.setText(f"commitment curve failed: {text}"))
        self.fork_button.clicked.connect(lambda: self.fork_at(self.document.step))
        self.curve_button.clicked.connect(self.compute_curve)
        self.show_button.clicked.connect(self.show_in_document)
        state.source_changed.connect(self._on_source_changed)

    def _say(self, text: str) -> None:
        self.message.setText(text)

    def _target(self):
        """(model, trace, image) to fork, or None (said in the panel)."""
        trace = self.document.trace
        loaded, why = self.finder.for_trace(trace)
        if loaded is None:
            self._say(why)
            return None
        return loaded.model, trace, self.document.image_index

    # ------------------------------------------------------------------ fork
    def fork_at(self, at: int) -> bool:
        """Fork the shown image at ``at`` (0..T) with the panel's K and seed, in the background."""
        target = self._target()
        if target is None:
            return False
        model, trace, image = target
        k, seed = self.k.value(), self.seed.value()
        self._say(f"forking image {image} at t = {at} (K = {k}, seed {seed})…")
        tag = (self.document.generation, trace, image)
        self.fork_runs.submit("fork", lambda: fork(model, trace, image, at, k, seed), tag=tag)
        return True

    def _on_forked(self, tag, result) -> None:
        if tag[0] != self.document.generation:
            return
        self.forked, self._base = result, tag[1:]
        info = result.intervention
        took = self.fork_runs.last_seconds * 1000
        self._say(f"image {info['image']} keeps z_1..z_{info['at']} (trace steps {info['kept_steps']}); the later z's "
                  f"are drawn from the prior: K = {info['k']}, seed {info['seed']} ({took:.0f} ms)")
        self.fork_line.setValue(info["at"])
        self.fork_line.show()
        self.mark_dirty()

    def show_in_document(self) -> None:
        """Make the fork the document's samples and the shown trace (every panel shows it)."""
        if self.forked is not None:
            self.document.add_trace(self.forked.trace, show=True, image_index=0)

    # ------------------------------------------------------------------ commitment
    def compute_curve(self) -> bool:
        """Compute the commitment curve of the shown image in the background."""
        target = self._target()
        if target is None:
            return False
        model, trace, image = target
        k, seed = self.k.value(), self.seed.value()
        self.curve_note.setText(f"computing the commitment curve of image {image}: {trace.steps + 1} fork points × "
                                f"K = {k} continuations…")
        tag = (self.document.generation, trace, image, k, seed)
        report = self.curve_runs.report
        self.curve_runs.submit("commitment", lambda: commitment(model, trace, image, k, seed, progress=report),
                               tag=tag)
        return True

    def _on_curve_progress(self, done: int, total: int) -> None:
        """The curve's run is ``done`` of ``total`` steps along (the later steps carry more forks)."""
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _on_curve(self, tag, result) -> None:
        if tag[0] != self.document.generation:
            return
        self.curve = np.asarray(result.intervention["curve"], dtype=np.float64)
        self._base = tag[1:3]
        t = np.arange(len(self.curve))
        self.line.setData(t, self.curve)
        self.points.setData(t, self.curve)
        half = half_step(self.curve)
        self.curve_note.setText(
            f"image {tag[2]}, K = {tag[3]}, seed {tag[4]} ({self.curve_runs.last_seconds:.1f} s): spread "
            f"{self.curve[0]:.3f} at t = 0" + (f"; below half of it from t = {half} on: the image is mostly decided "
                                               f"after {half} of {len(self.curve) - 1} steps" if half is not None
                                               else "") + ". Click a point to see that fork.")

    def _on_point_clicked(self, _item, points, *_) -> None:
        if len(points):
            self.fork_at(int(round(points[0].pos().x())))

    # ------------------------------------------------------------------ drawing
    def _on_source_changed(self) -> None:
        self.forked, self.curve, self._base = None, None, None
        self.line.setData([], [])
        self.points.setData([], [])
        self.fork_line.hide()
        self.curve_note.setText("")
        self._say("")

    def redraw(self) -> None:
        loaded, why = self.finder.for_trace(self.document.trace)
        for button in (self.fork_button, self.curve_button):
            button.setEnabled(loaded is not None)
        self.show_button.setEnabled(self.forked is not None)
        if self.forked is None:
            text = why or (f"press Fork to keep z_1..z_{self.document.step} of image {self.document.image_index} "
                           "and draw the rest K times")
            self.grid.show_message(text)
            return
        trace = self.forked.trace
        step = min(self.document.step, trace.steps)
        at = self.forked.intervention["at"]
        self.grid.show_tiles(trace.mean_images(step), columns=int(np.ceil(np.sqrt(trace.n))))
        state = "all the same: before the fork point" if step <= at else f"{step - at} steps after the fork"
        self.grid.set_title(f"{trace.n} continuations forked at t = {at}: canvas sigmoid(c_{step}) ({state})")
