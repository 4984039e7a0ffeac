"""Learning to draw: a training-step slider across the snapshots of the open source's training log.

The snapshots (``draw_studio.training_snapshots``) come from the document's training log (an opened
log, or the log beside an opened checkpoint or trace; a big one read off the window thread); or, for a training
run started in the window, from the log writer of the run itself, so that each new snapshot appears
as the run takes it. The slider shows the prior samples of one snapshot beside the validation images
and their reconstructions, laid out as the frames of ``draw-studio log-export --snapshots-gif``;
"Export GIF..." writes that GIF in the background (the core's ``export_snapshots_gif``).
A source without snapshots shows nothing here (:attr:`SnapshotSlider.available` is False).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from ..errors import DrawStudioError
from ..export import write_gif
from ..log_export import export_snapshots_gif, snapshot_frame
from ..training_snapshots import Snapshots, SnapshotSeries, read_snapshots
from .background import BackgroundWorker, WorkerThread
from .curve_files import LOG_INLINE_BYTES
from .document import TRAINING, Document
from .image_view import TileGrid
from .jobs import JobRunner

# the GIF written by "Export GIF...": the options of draw-studio log-export --snapshots-gif, given to the core
GIF_OPTIONS = {"fps": 4.0, "loop": 0, "scale": 2, "hold_last": 2.0}


def running_series(controller) -> SnapshotSeries | None:
    """The snapshots held by the log writer of the window's training run (running, or the last one), or None.

    ``controller`` is the window's :class:`~draw_studio.gui.training_controller.TrainingController`.
    """
    if controller is None:
        return None
    worker = controller.worker
    trainer = worker.trainer if worker is not None else controller.trainer
    taker = getattr(trainer, "snapshots", None) if trainer is not None else None
    return taker.log.snapshots if taker is not None else None


def copy_of(series: SnapshotSeries) -> Snapshots:
    """What ``series`` holds now, as :class:`Snapshots`; safe while the training thread appends to it.

    The series appends a snapshot's step, samples and reconstructions one after the other, so a copy
    taken meanwhile is cut to the snapshots it holds all three parts of.
    """
    try:
        held = series.snapshots()
    except ValueError:  # the first snapshot's step is held, its images not yet
        return Snapshots.empty()
    count = min(len(held.step), len(held.samples), len(held.reconstructions))
    if count == len(held.step) == len(held.samples) == len(held.reconstructions):
        return held
    if count == 0:
        return Snapshots.empty()
    return Snapshots(held.step[:count], held.samples[:count], held.reconstructions[:count], held.inputs, held.seed)


def _small(path: str) -> bool:
    """A log read in a few milliseconds (as the curves, ``curve_files.LOG_INLINE_BYTES``), or one that is missing."""
    try:
        return Path(path).stat().st_size <= LOG_INLINE_BYTES
    except OSError:
        return True  # let the reader say what is wrong


def _read(path: str) -> Snapshots | str:
    """The snapshots of the log ``path``, or why they cannot be read (one line)."""
    try:
        return read_snapshots(path)
    except DrawStudioError as exc:
        return str(exc)


class SnapshotSlider(QWidget):
    """The learning-to-draw view of the open source: a slider over its snapshots, two grids, Export GIF.

    Drawn from the document by :meth:`redraw` (the Gallery calls it from its own redraw).

    Signals
    -------
    changed() : something to draw arrived or the slider moved (the Gallery marks itself dirty)
    message(str) : a line for the status bar (a GIF written, or why not)
    """

    changed = Signal()
    message = Signal(str)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.controller: Any = None  # the window's TrainingController, once followed
        self.snapshots = Snapshots.empty()
        self.problem = ""  # why the log's snapshots cannot be shown ("" if they can, or there are none)
        self._generation = -1  # the document generation the snapshots are of
        self._drawn: tuple = ()  # (generation, index, count) last drawn
        self._readers: set[WorkerThread] = set()
        self.gif_jobs = JobRunner(self)
        self.last_gif_message = ""  # the last GIF written from this source, or why not
        self._gif_for = -1  # the document generation the GIF being written is of

        self.slider = QSlider(Qt.Orientation.Horizontal, objectName="snapshotSlider")
        self.slider.setToolTip("training step: the snapshots the training log holds")
        self.slider.setPageStep(1)
        self.step_label = QLabel(objectName="snapshotStepLabel")
        self.step_label.setMinimumWidth(120)
        self.export_button = QPushButton("Export GIF…", objectName="exportSnapshotsGifButton")
        self.export_button.setToolTip("write every snapshot as one frame of an animated GIF, as "
                                      "draw-studio log-export --snapshots-gif does")
        self.samples_grid = TileGrid("samples from the prior")
        self.samples_grid.setObjectName("snapshotSamplesGrid")
        self.reconstructions_grid = TileGrid("inputs (top), reconstructions")
        self.reconstructions_grid.setObjectName("snapshotReconstructionsGrid")
        self.reconstructions_grid.setToolTip("the first validation images (top rows) and the model's reconstructions "
                                             "of them at the step shown (bottom rows)")
        self.note = QLabel(objectName="snapshotNote")
        self.note.setStyleSheet("color: #9a9a9a;")
        self.note.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(QLabel("training step"))
        top.addWidget(self.slider, 1)
        top.addWidget(self.step_label)
        grids = QHBoxLayout()
        grids.addWidget(self.samples_grid, 1)
        grids.addWidget(self.reconstructions_grid, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.note, 1)
        bottom.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(grids, 1)
        layout.addLayout(bottom)

        self.slider.valueChanged.connect(lambda _: self.changed.emit())
        self.export_button.clicked.connect(self.ask_export)
        self.gif_jobs.done.connect(self._on_gif_done)
        self.gif_jobs.failed.connect(lambda text: self._on_gif_done(f"GIF not written: {text}"))
        self.gif_jobs.idle.connect(self.changed)

    # ------------------------------------------------------------------ where the snapshots come from
    def follow_training(self, controller) -> None:
        """Show the snapshots of ``controller``'s runs as they are taken (the window's training controller)."""
        self.controller = controller
        controller.reports.connect(self._check_running)
        controller.finished.connect(self._check_running)

    @property
    def available(self) -> bool:
        """The open source has snapshots to show."""
        return len(self.snapshots) > 0

    @property
    def index(self) -> int:
        """The snapshot shown (0 .. n - 1)."""
        return self.slider.value()

    @property
    def step(self) -> int | None:
        """The training step of the snapshot shown (None: none)."""
        return int(self.snapshots.step[self.index]) if self.available else None

    def _running_source(self) -> bool:
        return self.document.kind == TRAINING and self.controller is not None

    def _running_news(self) -> SnapshotSeries | None:
        """The window's run's snapshots when they differ from those shown (the source is that run), else None."""
        if not self._running_source():
            return None
        series = running_series(self.controller)
        shown = int(self.snapshots.step[-1]) if self.available else None
        return series if series is not None and series.last_step != shown else None

    def _check_running(self, *_) -> None:
        """A report of the window's run: a new snapshot to show?"""
        if self._running_news() is not None:
            self.changed.emit()

    def _sync(self) -> None:
        """Follow the document: a new source drops the old snapshots at once and fetches its own."""
        document = self.document
        if document.generation != self._generation:
            self._generation = document.generation
            self._set(Snapshots.empty(), "")
            self.last_gif_message = ""
            if not self._running_source() and document.log_path:
                if _small(document.log_path):
                    self._take_read(_read(document.log_path))  # a few milliseconds: at once
                else:
                    self._start_read(document.log_path, document.generation)
        series = self._running_news()
        if series is not None:
            self._set(copy_of(series), "")

    def _start_read(self, path: str, generation: int) -> None:
        def generator(control):
            return generation, _read(path)
            yield  # one piece: no progress to report

        worker = BackgroundWorker(generator)
        worker.returned.connect(self._on_read)
        worker.failed.connect(lambda text: self._on_read((generation, text)))
        thread = WorkerThread(worker, self, name="snapshotReader")
        thread.ended.connect(lambda: self._ended(thread))
        self._readers.add(thread)
        thread.start()

    def _ended(self, thread: WorkerThread) -> None:
        self._readers.discard(thread)
        thread.deleteLater()

    def _on_read(self, outcome) -> None:
        generation, value = outcome
        if generation != self.document.generation or self._running_source():
            return  # read for a source that is no longer open
        self._take_read(value)
        self.changed.emit()

    def _take_read(self, value: Snapshots | str) -> None:
        if isinstance(value, str):
            self._set(Snapshots.empty(), f"the training log's snapshots are not shown: {value}")
        else:
            self._set(value, "")

    def _set(self, snapshots: Snapshots, problem: str) -> None:
        """Hold ``snapshots``; the slider keeps its step, or follows the newest when it showed the last."""
        old_steps = self.snapshots.step
        at_end = not len(old_steps) or self.slider.value() >= len(old_steps) - 1
        old_step = int(old_steps[self.slider.value()]) if len(old_steps) else None
        self.snapshots, self.problem = snapshots, problem
        count = len(snapshots)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(count - 1, 0))
        if count:
            self.slider.setValue(count - 1 if at_end or old_step is None else snapshots.index_at(old_step))
        self.slider.blockSignals(False)

    # ------------------------------------------------------------------ drawing
    def redraw(self) -> None:
        """Draw the snapshot the slider is on (nothing changes when nothing did)."""
        self._sync()
        snapshots, index = self.snapshots, self.index
        key = (self._generation, index, len(snapshots), snapshots.step[-1] if len(snapshots) else -1)
        busy = self.gif_jobs.busy
        self.export_button.setEnabled(self.available and not busy)
        if not busy:
            self.note.setText(self.problem or self.last_gif_message)
        if key == self._drawn:
            return
        self._drawn = key
        if not self.available:
            self.step_label.setText("")
            for grid in (self.samples_grid, self.reconstructions_grid):
                grid.show_message(self.problem or "this source's training log holds no snapshots")
            return
        samples = snapshots.samples[index].astype(np.float32) / 255.0  # (S, C, H, W)
        inputs = snapshots.inputs.astype(np.float32) / 255.0  # (R, C, H, W)
        rebuilt = snapshots.reconstructions[index].astype(np.float32) / 255.0  # (R, C, H, W)
        self.samples_grid.show_tiles(samples, columns=self.sample_columns)
        self.reconstructions_grid.show_tiles(np.concatenate([inputs, rebuilt]), columns=self.input_columns)
        step = int(snapshots.step[index])
        self.step_label.setText(f"step {step:,} ({index + 1} of {len(snapshots)})")
        self.samples_grid.set_title("samples from the prior")
        self.reconstructions_grid.set_title("inputs (top), reconstructions")

    @property
    def sample_columns(self) -> int:
        """Columns of the samples' grid (near-square, as the GIF's frames)."""
        return max(1, math.ceil(math.sqrt(self.snapshots.samples.shape[1]))) if self.available else 1

    @property
    def input_columns(self) -> int:
        """Columns of the inputs' and reconstructions' grid: the images in two rows each (as the GIF's frames)."""
        return max(1, -(-len(self.snapshots.inputs) // 2)) if self.available else 1

    # ------------------------------------------------------------------ the GIF
    def ask_export(self) -> None:
        """Ask where to write the GIF, then write it in the background."""
        if not self.available:
            return
        start = Path(self.document.log_path or self.document.path or "learning-to-draw").name
        start = start.removesuffix(".log.h5").removesuffix(".ckpt") + "-learning.gif"
        path, _ = QFileDialog.getSaveFileName(self, "Export learning to draw as GIF", start, "GIF (*.gif)")
        if path:
            self.export_gif(path)

    def export_gif(self, path: str | Path) -> bool:
        """Write the snapshots of the open source as an animated GIF at ``path``, in the background.

        A log on disk is written by the core's ``export_snapshots_gif`` (what ``draw-studio log-export
        --snapshots-gif`` writes); a run training in the window, from the snapshots its log writer holds
        (its file may lag behind), with the same frames and options. False if a GIF is still being written
        or there is nothing to write.
        """
        if not self.available or self.gif_jobs.busy:
            return False
        out = str(path)
        if self._running_source():
            held = self.snapshots

            def write(progress) -> str:
                frames = [snapshot_frame(held, index, GIF_OPTIONS["scale"]) for index in range(len(held))]
                write_gif(frames, out, GIF_OPTIONS["fps"], GIF_OPTIONS["loop"], GIF_OPTIONS["hold_last"])
                return f"wrote {out} ({len(frames)} frames)"
        else:
            log = self.document.log_path

            def write(progress) -> str:
                return f"wrote {out} ({export_snapshots_gif(log, out, **GIF_OPTIONS)} frames)"

        self.last_gif_message, self._gif_for = "", self.document.generation
        self.note.setText(f"writing {Path(out).name}…")
        self.export_button.setEnabled(False)
        return self.gif_jobs.run(f"learning to draw → {out}", write)

    def _on_gif_done(self, text: str) -> None:
        if self._gif_for == self.document.generation:  # else the source it was written from is no longer open
            self.last_gif_message = text
        self.message.emit(text)
        self.changed.emit()

    def wait(self, timeout_ms: int = 60_000) -> None:
        """Block until the reads and the GIF being written have ended (closing, tests)."""
        for thread in list(self._readers):
            thread.wait(timeout_ms)
        self.gif_jobs.wait(timeout_ms)

    @property
    def reading(self) -> bool:
        """A log's snapshots are being read."""
        return bool(self._readers)
