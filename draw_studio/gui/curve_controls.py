"""The row of controls above the curves: smoothing, log y, the x axis, Fit and CSV export."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from .curve_data import X_AXES

X_AXIS_ITEMS = ("step", "wall_time", "epoch", "images")  # the x axis combo's entries, in order


class CurveControls(QHBoxLayout):
    """The curves' controls in one row; the plot connects to their signals.

    Attributes
    ----------
    smoothing : QSlider
        The EMA weight in hundredths (0 = raw).
    smoothing_label : QLabel
        Says the weight (``EMA 0.60``).
    log_y : QCheckBox
    x_axis : QComboBox
        One entry per key of :data:`X_AXIS_ITEMS`.
    fit_button, export_button : QPushButton
    """

    def __init__(self, parent: QWidget) -> None:
        super().__init__()
        self.smoothing = QSlider(Qt.Orientation.Horizontal, parent, objectName="smoothingSlider")
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(60)
        self.smoothing.setToolTip("smoothing: exponential moving average weight (0 = raw)")
        self.smoothing.setMinimumWidth(40)
        self.smoothing_label = QLabel(parent)
        self.log_y = QCheckBox("log y", parent, objectName="logYCheck")
        self.x_axis = QComboBox(parent, objectName="xAxisCombo")
        self.x_axis.addItems([f"x: {X_AXES[key][1].replace(' (s)', '')}" for key in X_AXIS_ITEMS])
        self.x_axis.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.x_axis.setMinimumWidth(self.x_axis.sizeHint().width())  # never clipped ("x: images seen")
        self.fit_button = QPushButton("Fit", parent, objectName="fitButton")
        self.fit_button.setToolTip("follow the newest points again (undo zoom)")
        self.export_button = QPushButton("CSV…", parent, objectName="exportCsvButton")
        self.export_button.setToolTip("export every point of every curve as CSV")
        for small in (self.fit_button, self.export_button):
            small.setMinimumWidth(small.fontMetrics().horizontalAdvance(small.text()) + 16)

        self.setContentsMargins(0, 0, 0, 0)
        self.setSpacing(4)
        self.addWidget(self.smoothing, 1)
        for widget in (self.smoothing_label, self.log_y, self.x_axis, self.fit_button, self.export_button):
            self.addWidget(widget)
        self.smoothing.valueChanged.connect(self._update_smoothing_label)
        self._update_smoothing_label()

    @property
    def smoothing_weight(self) -> float:
        """The EMA weight, 0 to 0.99."""
        return self.smoothing.value() / 100.0

    @property
    def x_axis_key(self) -> str:
        """The x axis: ``step``, ``wall_time``, ``epoch`` or ``images`` (a key of ``X_AXES``)."""
        return X_AXIS_ITEMS[max(self.x_axis.currentIndex(), 0)]

    def set_x_axis(self, key: str) -> None:
        """Choose the x axis (a key of ``X_AXES``), as the combo box does."""
        self.x_axis.setCurrentIndex(X_AXIS_ITEMS.index(key))

    def _update_smoothing_label(self) -> None:
        self.smoothing_label.setText(f"EMA {self.smoothing_weight:.2f}")
