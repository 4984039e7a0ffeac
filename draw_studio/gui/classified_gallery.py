"""The Gallery's page for an attention classifier: the images it classified, each with its true label and
the classifier's answer, the mistakes one click away ("mistakes only").

The images are those of the shown classification (:attr:`~draw_studio.gui.document.Document.classification`):
test images of the classifier's dataset for a checkpoint (more on request: first image, count, Classify),
or the images a classify trace file holds. A click on an image makes it the one every panel shows.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from .classifier_source import FIRST_COUNT
from .document import CLASSIFIER, Document
from .image_view import TileGrid

RIGHT_COLOUR = "#38e05a"
WRONG_COLOUR = "#ff4d4d"
CAPTION_FILL = (0, 0, 0, 230)  # nearly opaque: the clutter under a caption does not show through its digits
CAPTION_GROWTH_PT = 1.0  # captions are this much larger than the grid's title, and bold: read over a busy image
MAX_CLASSIFY = 1000  # images one Classify may ask for


def mistakes(labels: np.ndarray | None, predictions: np.ndarray) -> np.ndarray:
    """Indices of the images whose answer is not their label (none without labels), in order."""
    if labels is None:
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.asarray(labels) != np.asarray(predictions))


class ClassifiedGallery(QWidget):
    """The classified images as tiles captioned "label → answer" (green: right, red: wrong).

    Signals
    -------
    classify_requested(int first, int count) : classify these test images with the open classifier
    """

    classify_requested = Signal(int, int)

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.grid = TileGrid("classified images")
        self.grid.setObjectName("classifiedGrid")
        self.grid.setToolTip("label → answer after the last glimpse (green: right, red: wrong); click: show "
                             "this image in every panel")
        self.mistakes_only = QCheckBox("mistakes only", objectName="mistakesOnly")
        self.mistakes_only.setToolTip("show only the images the classifier got wrong")
        self.summary = QLabel(objectName="classifiedSummary")
        self.first_image = QSpinBox(objectName="firstClassifiedImage")
        self.first_image.setRange(0, 1_000_000)
        self.first_image.setPrefix("test image #")
        self.count = QSpinBox(objectName="classifiedCount")
        self.count.setRange(1, MAX_CLASSIFY)
        self.count.setValue(FIRST_COUNT)
        self.count.setPrefix("× ")
        self.classify = QPushButton("Classify", objectName="classifyButton")
        self.classify.setToolTip("classify these test images with the open classifier")
        top = QHBoxLayout()
        top.addWidget(self.mistakes_only)
        top.addWidget(self.summary, 1)
        actions = QHBoxLayout()
        actions.addWidget(self.first_image, 1)
        actions.addWidget(self.count)
        actions.addWidget(self.classify)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.grid, 1)
        layout.addLayout(actions)
        self.shown_indices = np.zeros(0, np.int64)  # the classification's images, in the order of the tiles
        self._captions: list[pg.TextItem] = []
        self._drawn: tuple = (None, False)  # (classification, mistakes only) the tiles show
        self.grid.tile_clicked.connect(self._on_tile)
        self.mistakes_only.toggled.connect(self.redraw)
        self.classify.clicked.connect(lambda: self.classify_requested.emit(self.first_image.value(),
                                                                           self.count.value()))

    def _on_tile(self, position: int) -> None:
        if 0 <= position < len(self.shown_indices):
            self.document.set_image(int(self.shown_indices[position]))

    def redraw(self) -> None:
        """Show the document's classification (all images, or its mistakes), the selected one framed."""
        document = self.document
        shown = document.classification
        can_classify = document.kind == CLASSIFIER and document.classifier is not None
        for widget in (self.first_image, self.count, self.classify):
            widget.setEnabled(can_classify)
        self.classify.setToolTip("classify these test images with the open classifier" if can_classify else
                                 "a classify trace holds its own images: open the classifier's checkpoint to "
                                 "classify others")
        if shown is None:
            self._show_nothing(document.lacks("classification"))
            return
        labels, predictions = shown.labels, shown.prediction
        wrong = mistakes(labels, predictions)
        self.mistakes_only.setEnabled(labels is not None)
        self.mistakes_only.setToolTip("show only the images the classifier got wrong" if labels is not None else
                                      "these images have no labels: no mistakes to show")
        only = self.mistakes_only.isChecked() and labels is not None
        indices = wrong if only else np.arange(shown.n)
        self.summary.setText(f"{len(wrong)} of {shown.n} wrong ({100.0 * len(wrong) / shown.n:.1f}%)"
                             if labels is not None else f"{shown.n} images, no labels")
        if self._drawn[0] is not shown or self._drawn[1] != only:
            self.shown_indices = indices
            if len(indices) == 0:
                self._show_nothing("no mistakes: every image here is classified right")
                self._drawn = (shown, only)
                return
            self._drawn = (shown, only)
            columns = min(8, len(indices))
            self.grid.show_tiles(shown.input[indices], columns=columns)
            self._caption(shown, indices, columns)
            where = shown.source or "images"
            self.grid.set_title(f"{'mistakes among ' if only else ''}{where}: label → answer (click: show)")
        if len(self.shown_indices):
            hits = np.flatnonzero(self.shown_indices == document.image_index)
            self.grid.set_highlight(int(hits[0]) if len(hits) else -1)

    def _show_nothing(self, text: str) -> None:
        self.grid.show_message(text)
        self.grid.count = 0
        self.shown_indices = np.zeros(0, np.int64)
        self._clear_captions()
        self._drawn = (None, False)
        if self.document.classification is None:
            self.summary.setText("")

    def _clear_captions(self) -> None:
        for item in self._captions:
            self.grid.view_box.removeItem(item)
        self._captions = []

    def caption_font(self) -> QFont:
        """The captions' font: the grid title's (the other galleries' captions), bold and a point larger."""
        font = QFont(self.grid.title.font())
        font.setPointSizeF(font.pointSizeF() + CAPTION_GROWTH_PT)
        font.setBold(True)
        return font

    def _caption(self, shown, indices: np.ndarray, columns: int) -> None:
        """"label → answer" over the top-left corner of every tile, green when right, red when wrong."""
        self._clear_captions()
        h, w = shown.input.shape[2:4]
        font = self.caption_font()
        for position, index in enumerate(indices):
            answer = int(shown.prediction[index])
            label = int(shown.labels[index]) if shown.labels is not None else None
            text = f"{label}→{answer}" if label is not None else f"→{answer}"
            colour = "#dddddd" if label is None else RIGHT_COLOUR if label == answer else WRONG_COLOUR
            item = pg.TextItem(text, color=colour, anchor=(0, 0), fill=pg.mkBrush(*CAPTION_FILL))
            item.textItem.document().setDocumentMargin(1)  # a bigger font, about the old width: within its tile
            item.setFont(font)
            item.setPos(1 + (position % columns) * (w + 1), 1 + (position // columns) * (h + 1))
            item.setZValue(12)
            self.grid.view_box.addItem(item)
            self._captions.append(item)

    def captions(self) -> list[str]:
        """The captions shown, in the order of the tiles (for tests and screen readers)."""
        return [item.textItem.toPlainText() for item in self._captions]
