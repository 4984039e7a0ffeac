"""Class probabilities: what an attention classifier would answer after each glimpse.

Bars: the probability of every class after glimpse t (the timeline's step) of the selected image; the
most probable class after that glimpse is filled orange, the true label framed in green (the title says
both). Beside the bars, p(label) (green dots) and p(final answer) (orange dashes) against the glimpse t. Every number
is the shown classification's (:attr:`~draw_studio.gui.document.Document.classification`); a source
that is not a classifier says so.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from .document import Document
from .panel import Panel

BAR_COLOUR = "#4da6ff"
PREDICTED_COLOUR = "#ff9f1a"
LABEL_COLOUR = "#38e05a"
FINAL_COLOUR = "#ff9f1a"


class ClassProbabilitiesPanel(Panel):
    """p(class | glimpses 1..t) as bars for the selected image, and p(label), p(answer) over t = 1..T."""

    title = "Class probabilities"
    dock_name = "classProbabilitiesDock"

    def __init__(self, state: Document, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setObjectName("classProbabilityPlots")
        self.bar_plot = self.view.addPlot(row=0, col=0)
        self.bar_plot.setMenuEnabled(False)
        self.bar_plot.setMouseEnabled(x=False, y=False)
        self.bar_plot.setLabel("bottom", "class")
        self.bar_plot.setLabel("left", "probability")
        self.bar_plot.showGrid(y=True, alpha=0.2)
        self.bar_plot.setYRange(0, 1, padding=0.02)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=BAR_COLOUR)
        self.bar_plot.addItem(self.bars)
        self.label_frame = pg.BarGraphItem(x=[], height=[], width=0.92, brush=None,
                                           pen=pg.mkPen(LABEL_COLOUR, width=2.5))
        self.bar_plot.addItem(self.label_frame)

        self.curve_plot = self.view.addPlot(row=0, col=1)
        self.curve_plot.setMenuEnabled(False)
        self.curve_plot.setMouseEnabled(x=False, y=False)
        self.curve_plot.setLabel("bottom", "glimpse t")
        self.curve_plot.showGrid(y=True, alpha=0.2)
        self.curve_plot.setYRange(0, 1, padding=0.02)
        self.label_curve = self.curve_plot.plot(pen=pg.mkPen(LABEL_COLOUR, width=2), symbol="o", symbolSize=5,
                                                symbolBrush=LABEL_COLOUR)
        self.final_curve = self.curve_plot.plot(pen=pg.mkPen(FINAL_COLOUR, width=2, style=Qt.PenStyle.DashLine))
        self.cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ffd400", width=1))
        self.curve_plot.addItem(self.cursor)
        self.view.ci.layout.setColumnStretchFactor(0, 3)
        self.view.ci.layout.setColumnStretchFactor(1, 2)
        self.message = self.message_above(self.view, "classProbabilitiesMessage")
        self.shown: np.ndarray = np.zeros(0, np.float32)  # the probabilities the bars show now, (classes,)

    def redraw(self) -> None:
        document = self.document
        shown = document.classification
        if shown is None:
            self.message.setText(document.lacks("classification"))
            self.message.show()
            self._clear()
            self.view.hide()  # no empty axes (their ranges would be pyqtgraph's defaults, e.g. -400..400)
            return
        self.view.show()
        i, s, T = document.image_index, document.step, shown.steps
        probabilities = shown.class_probabilities[i]  # (T, classes)
        now = probabilities[max(s, 1) - 1]  # (classes,)
        classes = np.arange(len(now))
        predicted = int(now.argmax())
        label = int(shown.labels[i]) if shown.labels is not None else None
        brushes = [pg.mkBrush(PREDICTED_COLOUR if k == predicted else BAR_COLOUR) for k in classes]
        self.bars.setOpts(x=classes, height=now, width=0.8, brushes=brushes)
        self.shown = now.copy()
        if label is not None and 0 <= label < len(now):
            self.label_frame.setOpts(x=[label], height=[max(float(now[label]), 0.02)], width=0.92)
        else:
            self.label_frame.setOpts(x=[], height=[])
        self.bar_plot.setXRange(-0.6, len(now) - 0.4, padding=0)
        self.bar_plot.getAxis("bottom").setTicks([[(int(k), str(int(k))) for k in classes]])
        final = int(shown.prediction[i])
        t = np.arange(1, T + 1)
        self.final_curve.setData(t, probabilities[:, final])
        if label is not None:
            self.label_curve.setData(t, probabilities[:, label])
        else:
            self.label_curve.setData([], [])
        self.curve_plot.setXRange(0.5, T + 0.5, padding=0)
        self.cursor.setValue(s)
        self.bar_plot.setTitle(self.headline(predicted, float(now[predicted]), label, s, T), size="9pt")
        self.curve_plot.getAxis("bottom").setTicks([[(int(k), str(int(k))) for k in t]])
        self.curve_plot.setTitle(  # short: a long title would widen the plot past a narrow dock
            (f"<span style='color:{LABEL_COLOUR}'>● p({label})</span> " if label is not None else "")
            + f"<span style='color:{FINAL_COLOUR}'>┅ p({final})</span> after glimpse t", size="8pt")
        self.message.setText(f"image {i}" + (f" (test image #{int(shown.source_index[i])})"
                                             if shown.source_index is not None else "")
                             + f": answer after {T} glimpses {final}"
                             + (f", label {label}: {'right' if final == label else 'wrong'}" if label is not None
                                else ", no label"))
        self.message.show()

    @staticmethod
    def headline(predicted: int, probability: float, label: int | None, step: int, steps: int) -> str:
        """The bar plot's title: what the classifier says after glimpse ``step``, and the label."""
        said = f"after glimpse {step}/{steps}: <span style='color:{PREDICTED_COLOUR}'>▮ {predicted}</span> " \
               f"p = {probability:.2f}"
        if label is None:
            return said + ", label unknown"
        mark = "right" if predicted == label else "wrong"
        return said + f", <span style='color:{LABEL_COLOUR}'>▯ label {label}</span> ({mark})"

    def _clear(self) -> None:
        self.bars.setOpts(x=[], height=[], brushes=None, brush=BAR_COLOUR)
        self.label_frame.setOpts(x=[], height=[])
        self.label_curve.setData([], [])
        self.final_curve.setData([], [])
        self.shown = np.zeros(0, np.float32)
        self.bar_plot.setTitle("class probabilities after glimpse t", size="9pt")
        self.curve_plot.setTitle("")
