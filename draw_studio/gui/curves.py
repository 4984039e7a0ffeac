"""Live curves of the bound and its terms, training and validation.

Every point is kept (:class:`~draw_studio.gui.history.TrainingHistory`);
pyqtgraph only thins them for drawing (``peak`` downsampling, clipped to the
view). The smoothed curve (EMA) is drawn over the faint raw one. The view
follows new points until the user zooms or pans; "Fit" follows again.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from .history import TrainingHistory, exponential_moving_average

# curve name -> (history column, legend label, colour)
TRAIN_CURVES = {"bound": ("bound", "bound L (train)", "#4da6ff"),
                "nll_x": ("nll_x", "L_x (train)", "#ffb000"),
                "kl": ("kl", "L_z (train)", "#5ad17a")}
VALID_COLOUR = "#ff5ad0"


def _faint(colour: str) -> pg.QtGui.QColor:
    faint = pg.mkColor(colour)
    faint.setAlpha(70)
    return faint


class CurvesPlot(QWidget):
    """Plot of a :class:`TrainingHistory` with smoothing, log-y, x-axis choice and CSV export.

    Call :meth:`refresh` (from the window's redraw timer) to draw new points.
    """

    export_requested = Signal()

    def __init__(self, history: TrainingHistory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self._drawn_revision = -1
        self._smoothed: dict[str, np.ndarray] = {}
        self._smoothing_key: tuple = ()

        self.smoothing = QSlider(Qt.Orientation.Horizontal, objectName="smoothingSlider")
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(60)
        self.smoothing.setToolTip("exponential moving average weight (0 = raw)")
        self.smoothing_label = QLabel()
        self.log_y = QCheckBox("log y", objectName="logYCheck")
        self.x_axis = QComboBox(objectName="xAxisCombo")
        self.x_axis.addItems(["x: step", "x: wall time"])
        self.fit_button = QPushButton("Fit", objectName="fitButton")
        self.fit_button.setToolTip("follow the newest points again (undo zoom)")
        self.export_button = QPushButton("CSV…", objectName="exportCsvButton")
        self.export_button.setToolTip("export every point of every curve as CSV")

        self.smoothing.setMinimumWidth(40)
        for small in (self.fit_button, self.export_button, self.x_axis):
            small.setMinimumWidth(44)
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(QLabel("EMA"))
        controls.addWidget(self.smoothing, 1)
        controls.addWidget(self.smoothing_label)
        controls.addWidget(self.log_y)
        controls.addWidget(self.x_axis)
        controls.addWidget(self.fit_button)
        controls.addWidget(self.export_button)

        self.plot = pg.PlotWidget()
        self.plot.setObjectName("curvesPlot")
        self.plot.setMinimumHeight(140)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("left", "nats / image")
        self.plot.setLabel("bottom", "step")
        legend = self.plot.addLegend(offset=(-8, 8), labelTextSize="8pt")
        legend.setBrush(pg.mkBrush(30, 30, 30, 180))
        self.raw_items: dict[str, pg.PlotDataItem] = {}
        self.smooth_items: dict[str, pg.PlotDataItem] = {}
        for name, (_, label, colour) in TRAIN_CURVES.items():
            raw = self.plot.plot(pen=pg.mkPen(_faint(colour), width=1))
            smooth = self.plot.plot(pen=pg.mkPen(colour, width=2), name=label)
            for item in (raw, smooth):
                item.setDownsampling(auto=True, method="peak")
                item.setClipToView(True)
            self.raw_items[name], self.smooth_items[name] = raw, smooth
        self.empty_note = pg.TextItem("no curves yet: press Start, or open a training log", color="#9a9a9a",
                                      anchor=(0.5, 0.5))
        self.empty_note.setPos(0.5, 0.2)
        self.plot.addItem(self.empty_note, ignoreBounds=True)
        self.valid_item = self.plot.plot(pen=pg.mkPen(VALID_COLOUR, width=2), symbol="o", symbolSize=6,
                                         symbolBrush=VALID_COLOUR, symbolPen=None, name="bound L (validation)")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.plot, 1)

        self.smoothing.valueChanged.connect(self._on_options)
        self.log_y.toggled.connect(self._on_log)
        self.x_axis.currentIndexChanged.connect(self._on_options)
        self.fit_button.clicked.connect(self.fit)
        self.export_button.clicked.connect(self.export_requested)
        self._update_smoothing_label()

    # ------------------------------------------------------------------ options
    @property
    def smoothing_weight(self) -> float:
        return self.smoothing.value() / 100.0

    @property
    def x_column(self) -> str:
        return "step" if self.x_axis.currentIndex() == 0 else "wall_time"

    def _update_smoothing_label(self) -> None:
        self.smoothing_label.setText(f"{self.smoothing_weight:.2f}")

    def _on_options(self) -> None:
        self._update_smoothing_label()
        self.plot.setLabel("bottom", "step" if self.x_column == "step" else "wall time (s)")
        self._drawn_revision = -1
        self.refresh()
        self.fit()

    def _on_log(self, checked: bool) -> None:
        self.plot.setLogMode(y=checked)
        self.fit()

    def fit(self) -> None:
        """Show every point and follow new ones again."""
        self.plot.enableAutoRange()

    @property
    def user_zoomed(self) -> bool:
        """The user has zoomed or panned (the view no longer follows new points)."""
        state = self.plot.getViewBox().state["autoRange"]
        return not (state[0] and state[1])

    # ------------------------------------------------------------------ drawing
    def _smoothed_curve(self, name: str, values: np.ndarray) -> np.ndarray:
        weight = self.smoothing_weight
        previous = self._smoothed.get(name)
        start = len(previous) if previous is not None and len(previous) <= len(values) else 0
        curve = exponential_moving_average(values, weight, start, previous)
        self._smoothed[name] = curve
        return curve

    def refresh(self) -> None:
        """Redraw if the history changed since the last draw (pyqtgraph keeps the user's zoom)."""
        if self.history.revision == self._drawn_revision:
            return
        self._drawn_revision = self.history.revision
        key = (self.smoothing_weight, self.history.generation)
        if key != self._smoothing_key:
            self._smoothed.clear()
            self._smoothing_key = key
        train, valid = self.history.train, self.history.valid
        x = train.column(self.x_column)
        for name, (column, _, _) in TRAIN_CURVES.items():
            values = train.column(column)
            smooth = self._smoothed_curve(name, values)
            self.raw_items[name].setData(x, values)
            self.smooth_items[name].setData(x, smooth)
        self.valid_item.setData(valid.column(self.x_column), valid.column("bound"))
        self.empty_note.setVisible(train.size == 0 and valid.size == 0)

    def point_counts(self) -> dict[str, int]:
        """Points held per curve (training curves share one count)."""
        return {"train": self.history.train.size, "valid": self.history.valid.size}
