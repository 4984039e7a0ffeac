"""Results: the open model's test bound and importance-weighted bounds beside the published rows.

The numbers are those of ``draw-studio results`` (the core's :func:`~draw_studio.results.checkpoint_results`,
run on the open checkpoint in the background, its progress driving the bar; Cancel stops it between two
forward passes). The table holds our rows, then the published ones
(:func:`~draw_studio.results.published_rows`), each with its binarisation, with exactly the cells of the
Markdown that "Export Markdown..." writes (:func:`~draw_studio.results.results_markdown`). Another source
clears the table and stops a computation still running: nothing of an earlier model stays on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..errors import DrawStudioError
from ..results import (
    DEFAULT_KS,
    ResultRow,
    checkpoint_results,
    published_rows,
    results_markdown,
    write_results_markdown,
)
from .background import BackgroundWorker, WorkerThread
from .document import CHECKPOINT, LOG_FILE, NOTHING, OPEN_SOMETHING, TRACE_FILE, TRAINING, Document
from .panel import Panel

COLUMNS = ("model", "measure", "nats per image", "images", "binarisation")
DEFAULT_IMAGES = 1000
PROGRESS_STEPS = 1000  # resolution of the progress bar
PROGRESS_INTERVAL_S = 0.1  # at most ~10 progress signals a second
MODEL_COLUMN_WIDTH = 170  # pixels


def markdown_cells(text: str) -> list[list[str]]:
    """The cells of the body rows of a Markdown table written by :func:`~draw_studio.results.results_markdown`."""
    rows = []
    for line in text.splitlines()[2:]:
        cells = line.strip().removeprefix("| ").removesuffix(" |").split(" | ")
        rows.append([cell.replace("\\|", "|") for cell in cells])
    return rows


class ResultsPanel(Panel):
    """Test images, K choices, Compute / Cancel with progress, the results table, Export Markdown.

    Parameters
    ----------
    state : Document
    data_dir : callable
        Returns the data folder to read the test images from ("" or None: the default places), as the
        Training panel names it.
    """

    title = "Results"
    dock_name = "resultsDock"
    follows_step = False  # the bounds are the model's: the timeline's step changes nothing here

    def __init__(self, state: Document, data_dir: Callable[[], str | None] = lambda: None,
                 parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.data_dir = data_dir
        self.rows: list[ResultRow] = []  # our rows: the computation's (so far, or all once finished)
        self.finished = False
        self.problem = ""  # why the last computation failed
        self._generation = -1  # the document generation shown
        self._thread: WorkerThread | None = None
        self._running_for = -1  # the document generation the running computation is of

        self.images = QSpinBox(objectName="resultsImages")
        self.images.setRange(0, 1_000_000)
        self.images.setSingleStep(100)
        self.images.setValue(DEFAULT_IMAGES)
        self.images.setSpecialValueText("all")
        self.images.setSuffix(" test images")
        self.images.setToolTip("the first N images of the test split (0: all of them)")
        self.k_boxes = {}
        for k in DEFAULT_KS:
            box = QCheckBox(f"K={k}", objectName=f"resultsK{k}")
            box.setChecked(True)
            box.setToolTip(f"the importance-weighted bound with {k} samples per image")
            self.k_boxes[k] = box
        self.compute = QPushButton("Compute", objectName="resultsComputeButton")
        self.cancel = QPushButton("Cancel", objectName="resultsCancelButton")
        self.progress = QProgressBar(objectName="resultsProgress")
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setValue(0)
        self.status = QLabel(objectName="resultsStatus")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #9a9a9a;")
        self.table = QTableWidget(0, len(COLUMNS), objectName="resultsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)  # long names: cut, whole in the tooltip
        header.resizeSection(0, MODEL_COLUMN_WIDTH)
        header.moveSection(2, 1)  # the number beside the model's name (the Markdown keeps its column order)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setWordWrap(False)
        self.export = QPushButton("Export Markdown…", objectName="resultsExportButton")

        choices = QHBoxLayout()
        choices.addWidget(self.images)
        for box in self.k_boxes.values():
            choices.addWidget(box)
        choices.addStretch(1)
        actions = QHBoxLayout()
        actions.addWidget(self.compute)
        actions.addWidget(self.cancel)
        actions.addWidget(self.progress, 1)
        actions.addWidget(self.export)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(choices)
        layout.addLayout(actions)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)

        self.compute.clicked.connect(self.start)
        self.cancel.clicked.connect(self.stop)
        self.export.clicked.connect(self.ask_export)

    # ------------------------------------------------------------------ what can be computed
    def checkpoint(self) -> tuple[str | None, str]:
        """The open model's checkpoint file, or None and why there is none to compute on."""
        document = self.document
        kind, model = document.kind, document.model
        if kind == NOTHING:
            return None, OPEN_SOMETHING
        if kind == LOG_FILE:
            return None, "a training log has no model: open its checkpoint to compute its results"
        if kind == TRACE_FILE:
            return None, "a trace file has no model: open its checkpoint to compute its results"
        if document.is_classifier:
            return None, "these are DRAW's bounds; an attention classifier's test error: draw-studio eval C.ckpt"
        if kind == TRAINING and document.live:
            return None, "the model is being trained: compute its results once training has stopped"
        path = model.path if model is not None else None
        if path is None or not Path(path).is_file():
            return None, ("this model has no checkpoint file to evaluate: save it (Training panel) and open "
                          "the checkpoint")
        return path, ""

    @property
    def chosen_ks(self) -> list[int]:
        return [k for k, box in self.k_boxes.items() if box.isChecked()]

    @property
    def running(self) -> bool:
        """A computation is running (or stopping)."""
        return self._thread is not None

    def table_rows(self) -> list[ResultRow]:
        """Our rows, then the published ones for the model's dataset."""
        model = self.document.model
        dataset = model.train_config.dataset if model is not None and self.document.kind in (CHECKPOINT, TRAINING) \
            else ""
        return list(self.rows) + (published_rows(dataset) if dataset else [])

    def markdown(self) -> str:
        """The table as :func:`~draw_studio.results.results_markdown` writes it."""
        return results_markdown(self.table_rows())

    # ------------------------------------------------------------------ computing
    def start(self) -> bool:
        """Compute the results of the open checkpoint in the background; False if it cannot start."""
        path, why = self.checkpoint()
        ks = self.chosen_ks
        if self.running or path is None or not ks:
            self.status.setText(why or ("" if ks else "tick at least one K"))
            return False
        images, folder = self.images.value(), self.data_dir() or None

        def generator(control):
            return (yield from checkpoint_results(path, images, ks, data_dir=folder, download=False))

        worker = BackgroundWorker(generator, coalesce_s=PROGRESS_INTERVAL_S,
                                  urgent=lambda progress: progress.finished)
        worker.yielded.connect(self._on_progress)
        worker.failed.connect(self._on_failed)
        worker.stopped.connect(self._on_stopped)
        thread = WorkerThread(worker, self, name="resultsThread")
        thread.ended.connect(self._on_ended)
        self._thread, self._running_for = thread, self.document.generation
        self.rows, self.finished, self.problem = [], False, ""
        self.progress.setValue(0)
        self.compute.setEnabled(False)
        self.cancel.setEnabled(True)
        self.status.setText(f"computing on {'all' if not images else f'the first {images:,}'} test images…")
        self.mark_dirty()
        thread.start()
        return True

    def stop(self) -> None:
        """Stop the computation after its current forward pass."""
        if self._thread is not None:
            self._thread.worker.stop()

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the computation (if any) has ended (closing, tests)."""
        return self._thread is None or self._thread.wait(timeout_ms)

    def _current(self) -> bool:
        return self._running_for == self.document.generation

    def _on_progress(self, items: list) -> None:
        if not self._current():
            return
        progress = items[-1]
        self.rows, self.finished = list(progress.rows), progress.finished
        self.progress.setValue(round(progress.fraction * PROGRESS_STEPS))
        self.status.setText("done" if progress.finished else
                            f"{progress.stage}: {progress.images_done:,} / {progress.images_total:,} images "
                            f"({progress.fraction:.0%})")
        self.mark_dirty()

    def _on_failed(self, text: str) -> None:
        if self._current():
            self.problem = text
            self.status.setText(f"not computed: {text}")
            self.mark_dirty()

    def _on_stopped(self) -> None:
        if self._current():
            self.status.setText("cancelled: the rows finished before are kept")
            self.mark_dirty()

    def _on_ended(self) -> None:
        if self._thread is not None:
            self._thread.deleteLater()
            self._thread = None
        self.mark_dirty()

    # ------------------------------------------------------------------ export
    def ask_export(self) -> None:
        """Ask for a file and write the table as Markdown."""
        path, _ = QFileDialog.getSaveFileName(self, "Export results as Markdown", "results.md",
                                              "Markdown (*.md);;All files (*)")
        if path:
            self.export_markdown(path)

    def export_markdown(self, path: str | Path) -> bool:
        """Write the table (:meth:`markdown`) to ``path``, atomically; False (and a status line) on failure."""
        try:
            write_results_markdown(path, self.table_rows())
        except DrawStudioError as exc:
            self.status.setText(f"not written: {exc}")
            return False
        self.status.setText(f"wrote {path}")
        return True

    # ------------------------------------------------------------------ drawing
    def redraw(self) -> None:
        document = self.document
        if document.generation != self._generation:  # another source: nothing of the earlier model stays
            self._generation = document.generation
            self.stop()
            self.rows, self.finished, self.problem = [], False, ""
            self.progress.setValue(0)
            self.status.setText("")
        path, why = self.checkpoint()
        running = self.running
        self.compute.setEnabled(path is not None and not running)
        self.compute.setToolTip(why)
        self.cancel.setEnabled(running and self._current())
        self.export.setEnabled(bool(self.rows) and not running)
        if not self.status.text() or (path is None and not running):
            self.status.setText(why or "choose the test images and K, then Compute")
        cells = markdown_cells(self.markdown())
        self.table.setRowCount(len(cells))
        for row, values in enumerate(cells):
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                if column == 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
