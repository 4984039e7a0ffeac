"""The runs table: one row per open run, the hyper-parameters that differ between them as columns.

Columns: the run (a tick box, the run's colour swatch and its name), preset, the settings that
differ between the open runs (:func:`draw_studio.runs.differing_settings`), steps, epochs, wall
time, best validation figure and its step, state. The best validation figure is a DRAW run's lowest
validation bound (nats per image) or an attention classifier's lowest validation error (shown with
%). Ticking a row overlays its curves; selecting a row highlights them; the row of a hovered curve is
tinted (:meth:`RunsTable.set_hovered`). The open source's run is in bold.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from .run_colours import swatch
from .run_rows import RunRow, headers

HEADER_TIPS = {"best valid": "lowest validation bound, nats per image (an attention classifier: its lowest "
                             "validation error, shown with %)",
               "at step": "the step of the best validation figure"}

KEY_ROLE = Qt.ItemDataRole.UserRole
HOVER_TINT = QColor(255, 200, 60, 90)


class RunsTable(QTableWidget):
    """The table of :class:`~draw_studio.gui.run_rows.RunRow`; see the module documentation.

    Signals
    -------
    tick_changed(str, bool) : the user ticked (True) or unticked a run (its key)
    selected(object) : the key of the selected run, or None
    """

    tick_changed = Signal(str, bool)
    selected = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(headers([])), parent)
        self.setObjectName("runsTable")
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.setHorizontalHeaderLabels(headers([]))
        self._tip_headers(headers([]))
        self.differing: list[str] = []
        self.keys: list[str] = []  # the run of each row
        self.hovered_key: str | None = None
        self.itemChanged.connect(self._on_item_changed)
        self.itemSelectionChanged.connect(lambda: self.selected.emit(self.selected_key))

    # ------------------------------------------------------------------ contents
    def show_rows(self, rows: list[RunRow], differing: list[str]) -> None:
        """Show ``rows`` with the ``differing`` settings as columns (cells updated in place when the runs and
        columns are those shown; the selection is kept)."""
        self.blockSignals(True)
        try:
            if [row.key for row in rows] != self.keys or differing != self.differing:
                selected = self.selected_key
                self.clearContents()
                self.differing, self.keys = list(differing), [row.key for row in rows]
                titles = headers(self.differing)
                self.setColumnCount(len(titles))
                self.setHorizontalHeaderLabels(titles)
                self._tip_headers(titles)
                self.setRowCount(len(rows))
                for index in range(len(rows)):
                    for column in range(len(titles)):
                        self.setItem(index, column, QTableWidgetItem())
                    self.item(index, 0).setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                                                 | Qt.ItemFlag.ItemIsUserCheckable)
                if selected in self.keys:
                    self.selectRow(self.keys.index(selected))
            for index, row in enumerate(rows):
                self._fill(index, row)
        finally:
            self.blockSignals(False)
        self.set_hovered(self.hovered_key if self.hovered_key in self.keys else None)

    def _tip_headers(self, titles: list[str]) -> None:
        for column, title in enumerate(titles):
            item = self.horizontalHeaderItem(column)
            if item is not None and title in HEADER_TIPS:
                item.setToolTip(HEADER_TIPS[title])

    def _fill(self, index: int, row: RunRow) -> None:
        first = self.item(index, 0)
        first.setText(row.name)
        first.setData(KEY_ROLE, row.key)
        first.setIcon(swatch(row.colour))
        first.setCheckState(Qt.CheckState.Checked if row.ticked else Qt.CheckState.Unchecked)
        first.setToolTip(f"{row.path or 'the run being trained'}" + (" (the open source)" if row.current else ""))
        first.setData(Qt.ItemDataRole.UserRole + 1, row.colour)
        font = QFont(self.font())
        font.setBold(row.current)
        for column, text in enumerate([row.name, *row.cells(self.differing)]):
            item = self.item(index, column)
            if column:
                item.setText(text)
            item.setFont(font)

    # ------------------------------------------------------------------ reading
    def row_of(self, key: str | None) -> int:
        """The row of run ``key`` (-1: none)."""
        return self.keys.index(key) if key in self.keys else -1

    @property
    def selected_key(self) -> str | None:
        rows = self.selectionModel().selectedRows() if self.selectionModel() is not None else []
        return self.keys[rows[0].row()] if rows and rows[0].row() < len(self.keys) else None

    def is_ticked(self, key: str) -> bool:
        row = self.row_of(key)
        return row >= 0 and self.item(row, 0).checkState() == Qt.CheckState.Checked

    def colour_of(self, key: str) -> str | None:
        """The colour of the swatch of run ``key``."""
        row = self.row_of(key)
        return self.item(row, 0).data(Qt.ItemDataRole.UserRole + 1) if row >= 0 else None

    # ------------------------------------------------------------------ changes
    def select_key(self, key: str | None) -> None:
        """Select the row of run ``key`` (None: no row)."""
        row = self.row_of(key)
        if row < 0:
            self.clearSelection()
        else:
            self.selectRow(row)

    def set_ticked(self, key: str, ticked: bool) -> None:
        """Tick (or untick) run ``key`` as the user would."""
        row = self.row_of(key)
        if row >= 0:
            self.item(row, 0).setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)

    def set_hovered(self, key: str | None) -> None:
        """Tint the row of run ``key`` (the run whose curve is under the mouse; None: no row)."""
        self.hovered_key = key
        self.blockSignals(True)
        try:
            for index, row_key in enumerate(self.keys):
                brush = QBrush(HOVER_TINT) if row_key == key else QBrush()
                for column in range(self.columnCount()):
                    item = self.item(index, column)
                    if item is not None:
                        item.setBackground(brush)
        finally:
            self.blockSignals(False)
        self.viewport().update()

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() == 0 and item.row() < len(self.keys):
            self.tick_changed.emit(self.keys[item.row()], item.checkState() == Qt.CheckState.Checked)
