"""Gallery: samples from the prior and reconstructions of chosen test images, of the open source; and,
when the source's training log holds snapshots, how the model learned to draw.

Clicking an image makes it the one every panel shows (its trace becomes
the current trace). A source without one of them (a trace file, a training
log) says so in the grid's place. The "Learning to draw" tab
(:mod:`~draw_studio.gui.snapshot_slider`) is there only when the source's log has snapshots.
For an attention classifier the Model tab shows the images it classified instead, with their labels and
its answers (:mod:`~draw_studio.gui.classified_gallery`).
"""

from __future__ import annotations

import random

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..trace import Trace
from .classified_gallery import ClassifiedGallery
from .document import LOG_FILE, Document
from .image_view import TileGrid
from .panel import Panel
from .snapshot_slider import SnapshotSlider

MODEL_TAB, LEARNING_TAB = 0, 1


class GalleryPanel(Panel):
    """Two grids of final images; a click selects an image for every panel. A second tab, "Learning to
    draw", shows the snapshots of the source's training log (:attr:`learning`) when it has some.

    Signals
    -------
    samples_requested(int seed, int count)
    reconstructions_requested(int first, int count)
    classify_requested(int first, int count) : an attention classifier's test images to classify
    """

    title = "Gallery"
    dock_name = "galleryDock"
    samples_requested = Signal(int, int)
    reconstructions_requested = Signal(int, int)
    classify_requested = Signal(int, int)

    def __init__(self, state: Document, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.sample_seed = 0
        self.sample_count = 16

        self.samples_grid = TileGrid("samples from the prior")
        self.samples_grid.setObjectName("samplesGrid")
        self.new_samples = QPushButton("New samples", objectName="newSamplesButton")
        self.new_samples.setToolTip("draw new samples with a new seed")
        self.seed_label = QLabel("", objectName="sampleSeedLabel")

        self.reconstructions_grid = TileGrid("reconstructions (click: show in every panel)")
        self.reconstructions_grid.setObjectName("reconstructionsGrid")
        self.first_image = QSpinBox(objectName="firstTestImage")
        self.first_image.setRange(0, 1_000_000)
        self.first_image.setPrefix("test image #")
        self.count = QSpinBox(objectName="reconstructionCount")
        self.count.setRange(1, 64)
        self.count.setValue(8)
        self.count.setPrefix("× ")
        self.reconstruct = QPushButton("Reconstruct", objectName="reconstructButton")
        self.first_image.setMinimumWidth(70)
        self.count.setMinimumWidth(50)

        sample_row = QHBoxLayout()
        sample_row.addWidget(self.new_samples)
        sample_row.addWidget(self.seed_label, 1)
        recon_row = QHBoxLayout()
        recon_row.addWidget(self.first_image, 1)
        recon_row.addWidget(self.count)
        recon_row.addWidget(self.reconstruct)
        model_page = QWidget()
        layout = QVBoxLayout(model_page)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.samples_grid, 1)
        layout.addLayout(sample_row)
        layout.addWidget(self.reconstructions_grid, 1)
        layout.addLayout(recon_row)
        self.classified = ClassifiedGallery(state)  # an attention classifier's images, in the DRAW page's place
        self.classified.classify_requested.connect(self.classify_requested)
        self.model_pages = QStackedWidget(objectName="galleryModelPages")
        self.model_pages.addWidget(model_page)
        self.model_pages.addWidget(self.classified)
        self.learning = SnapshotSlider(state)
        self.tabs = QTabWidget(objectName="galleryTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.model_pages, "Model")
        self.tabs.addTab(self.learning, "Learning to draw")
        self.tabs.setTabVisible(LEARNING_TAB, False)
        self._learning_for = -1  # the document generation whose snapshots were last shown
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(self.tabs)

        self.new_samples.clicked.connect(self.ask_new_samples)
        self.reconstruct.clicked.connect(
            lambda: self.reconstructions_requested.emit(self.first_image.value(), self.count.value()))
        self.samples_grid.tile_clicked.connect(lambda i: self.select(self.samples, i))
        self.reconstructions_grid.tile_clicked.connect(lambda i: self.select(self.reconstructions, i))
        self.learning.changed.connect(self.mark_dirty)

    def follow_training(self, controller) -> None:
        """Show the snapshots of the window's training runs as they are taken (``controller``: its
        :class:`~draw_studio.gui.training_controller.TrainingController`)."""
        self.learning.follow_training(controller)

    def ask_new_samples(self) -> None:
        """Ask for samples with a fresh seed."""
        self.sample_seed = random.randrange(1, 2 ** 31 - 1)
        self.samples_requested.emit(self.sample_seed, self.sample_count)

    @property
    def samples(self) -> Trace | None:
        """The open source's samples (None: it has none)."""
        return self.document.samples

    @property
    def reconstructions(self) -> Trace | None:
        """The open source's reconstructions (None: it has none)."""
        return self.document.reconstructions

    def show_trace(self, trace: Trace) -> None:
        """Keep ``trace`` in the document as the source's samples or reconstructions (by its mode)."""
        self.document.add_trace(trace, show=False)

    def select(self, trace: Trace | None, index: int) -> None:
        """Make image ``index`` of ``trace`` the image every panel shows."""
        if trace is None:
            return
        if self.state.trace is trace:
            self.state.set_image(index)
        else:
            self.state.set_trace(trace, image_index=index)
        self.mark_dirty()

    def redraw(self) -> None:
        self._redraw_learning()
        document = self.document
        self.model_pages.setCurrentWidget(self.classified if document.is_classifier else self.model_pages.widget(0))
        self.classified.redraw()
        self.tabs.setTabText(MODEL_TAB, "Classified" if document.is_classifier else "Model")
        current = document.trace
        can_run = document.can_run_model
        for button in (self.new_samples, self.reconstruct):
            button.setEnabled(can_run)
            button.setToolTip("" if can_run else document.lacks("samples"))
        for trace, grid, what in ((self.samples, self.samples_grid, "samples"),
                                  (self.reconstructions, self.reconstructions_grid, "reconstructions")):
            if trace is None:
                grid.show_message(document.lacks(what))
                grid.count = 0
                grid.shown_trace = None
                grid.set_highlight(-1)
                continue
            highlight = document.image_index if trace is current else -1
            if grid.count != trace.n or getattr(grid, "shown_trace", None) is not trace:
                grid.show_tiles(trace.mean_images(trace.steps), columns=min(8, trace.n), highlight=highlight)
                grid.shown_trace = trace
            else:
                grid.set_highlight(highlight)
        samples, reconstructions = self.samples, self.reconstructions
        self.seed_label.setText(f"seed {samples.seed}" if samples is not None and samples.seed is not None else "")
        self.samples_grid.set_title("samples from the prior" + (f" ({samples.n})" if samples is not None else ""))
        self.reconstructions_grid.set_title(
            f"reconstructions of {reconstructions.source or 'images'} (click: show everywhere)"
            if reconstructions is not None else "reconstructions")

    def _redraw_learning(self) -> None:
        """The "Learning to draw" tab: shown while the source has snapshots (or says why they cannot be
        shown); a training log, which has no model for the first tab, opens on it."""
        self.learning.redraw()
        shown = self.learning.available or bool(self.learning.problem)
        self.tabs.setTabVisible(LEARNING_TAB, shown)
        generation = self.document.generation
        if shown and self._learning_for != generation:
            self._learning_for = generation
            if self.document.kind == LOG_FILE:
                self.tabs.setCurrentIndex(LEARNING_TAB)
        if not shown and self.tabs.currentIndex() == LEARNING_TAB:
            self.tabs.setCurrentIndex(MODEL_TAB)
