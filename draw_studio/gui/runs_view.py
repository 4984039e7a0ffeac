"""The runs view: the runs open in the Training dock, as a table, their curves overlaid in its plot.

Runs come from training logs the user adds (several files, a folder scanned for ``*.log.h5``, or the
shipped runs in ``models/``), read and summarised off the window thread when big
(:func:`draw_studio.runs.summarize_run`). The open source's run (the log opened or found beside a
checkpoint, or the run the window trains) is a row too, in bold, its points those of the Training
panel's :class:`~draw_studio.gui.history.TrainingHistory`; a live run's row and curves keep growing.
When another source replaces it, its row stays (unticked), so earlier runs remain at hand.

Ticking a run other than the open source's overlays the ticked runs' curves in the one plot
(:class:`~draw_studio.gui.runs_overlay.RunOverlay`), each run in its colour (the table's swatch);
otherwise the plot shows the open source's run in detail, as it always did. Selecting a row
highlights its curves; the mouse over a curve tints its row; a click on a curve selects its row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QEventLoop, Signal
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..checkpoint import SHIPPED_MODELS
from ..errors import DrawStudioError
from ..runs import LOG_PATTERN, differing_settings, find_logs, summarize_run
from .background import one_line
from .curve_files import LOG_INLINE_BYTES, read_run
from .curve_tasks import BackgroundLane
from .history import TrainingHistory
from .run_colours import RunColours
from .run_rows import RunRow, log_key, row_from_summary, run_name, unique_names
from .runs_overlay import SERIES, OverlayRun
from .runs_table import RunsTable


@dataclass(eq=False)
class OpenRun:
    """A run of the runs view other than the open source's: its row and its points."""

    row: RunRow
    history: TrainingHistory


class RunsView(QWidget):
    """The runs table with its buttons; draws the ticked runs into ``curves`` (see the module documentation).

    Parameters
    ----------
    history : TrainingHistory
        The open source's run's points (the Training panel's).
    curves : CurvesPlot
        The plot the runs are drawn in.

    Signals
    -------
    message(str) : a line for the status bar
    """

    message = Signal(str)

    def __init__(self, history: TrainingHistory, curves, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history, self.curves = history, curves
        self.colours = RunColours()
        self.others: dict[str, OpenRun] = {}  # key -> a run added to the view (or kept from an earlier source)
        self.current: RunRow | None = None  # the open source's run
        self.ticks: dict[str, bool] = {}
        self._reading: dict[str, bool] = {}  # key -> ticked once read: logs being read in the background
        self._reader = BackgroundLane("runs", self)
        self._summary = BackgroundLane("run summary", self)
        self._summarizing: dict[str, tuple] = {}  # key -> (path, log as read): summaries being made
        self._overlay_shown: tuple | None = ()  # what the plot was last given (None: the detail view)

        self.open_button = QPushButton("Open logs…", objectName="openRunsButton")
        self.open_button.setToolTip("add training logs (X.log.h5) to the runs")
        self.folder_button = QPushButton("Folder…", objectName="openRunsFolderButton")
        self.folder_button.setToolTip(f"add every training log ({LOG_PATTERN}) of a folder")
        self.shipped_button = QPushButton("Shipped runs", objectName="shippedRunsButton")
        self.shipped_button.setToolTip(f"add the training logs of the shipped models ({SHIPPED_MODELS})")
        self.remove_button = QPushButton("Remove", objectName="removeRunButton")
        self.remove_button.setToolTip("take the selected run out of the view (its files stay)")
        self.series = QComboBox(objectName="runSeriesCombo")
        self.series.addItems([f"curve: {label}" for label in SERIES.values()])
        self.series.setToolTip("the training curve drawn for each run when several are overlaid")
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for widget in (self.open_button, self.folder_button, self.shipped_button, self.remove_button):
            widget.setMinimumWidth(widget.fontMetrics().horizontalAdvance(widget.text()) + 16)
            buttons.addWidget(widget)
        buttons.addWidget(self.series, 1)
        self.table = RunsTable()
        self.note = QLabel(objectName="runsNote")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #808080;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)

        self.open_button.clicked.connect(self.ask_logs)
        self.folder_button.clicked.connect(self.ask_folder)
        self.shipped_button.clicked.connect(self.add_shipped)
        self.remove_button.clicked.connect(lambda: self.remove(self.table.selected_key))
        self.series.currentIndexChanged.connect(lambda index: self.curves.overlay.set_series(list(SERIES)[index]))
        self.table.tick_changed.connect(self._on_tick)
        self.table.selected.connect(self._on_selected)
        self.curves.overlay.run_hovered.connect(self.table.set_hovered)
        self.curves.overlay.run_clicked.connect(self.table.select_key)
        self.update_view()

    # ------------------------------------------------------------------ adding runs
    def add_logs(self, paths, ticked: bool = True) -> int:
        """Add the training logs among ``paths`` (files, and folders scanned for ``*.log.h5``); returns how many
        are new. Small logs are read at once, the others off the window thread (added when read). A log that
        cannot be read is a status message; the others are added."""
        try:
            found = find_logs(paths)
        except DrawStudioError as exc:
            self.message.emit(f"no runs added: {exc}")
            return 0
        new = [path for path in found if log_key(path) not in self.others and log_key(path) not in self._reading]
        if not found:
            self.message.emit(f"no training logs ({LOG_PATTERN}) in {', '.join(map(str, paths))}")
        if not new:
            return 0
        if sum(_size(path) for path in new) <= LOG_INLINE_BYTES:
            self._adopt([_read(path) for path in new], ticked)
            return len(new)
        for path in new:
            self._reading[log_key(path)] = ticked
        self.message.emit(f"reading {len(new)} training log{'s' * (len(new) > 1)}…")
        waiting = [Path(key) for key in self._reading]
        ticks = dict(self._reading)
        self._reader.submit(lambda _progress, cancelled: _read_all(waiting, cancelled),
                            lambda results: self._read_done(results, ticks),
                            lambda text: self._read_done([(path, text) for path in waiting], ticks))
        self.update_view()
        return len(new)

    def add_folder(self, folder: str | Path) -> int:
        """Add every training log of ``folder``."""
        return self.add_logs([folder])

    def add_shipped(self) -> int:
        """Add the shipped models' training logs (``models/*.log.h5``)."""
        if not SHIPPED_MODELS.is_dir():
            self.message.emit(f"no shipped runs: {SHIPPED_MODELS} does not exist")
            return 0
        return self.add_logs([SHIPPED_MODELS])

    def ask_logs(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add training logs", "", "Training logs (*.log.h5);;"
                                                "HDF5 (*.h5);;All files (*)")
        if paths:
            self.add_logs(paths)

    def ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add the training logs of a folder")
        if folder:
            self.add_folder(folder)

    def _read_done(self, results, ticks: dict[str, bool]) -> None:
        for key in ticks:
            self._reading.pop(key, None)
        self._adopt(results or [], None, ticks)

    def _adopt(self, results, ticked: bool | None, ticks: dict[str, bool] | None = None) -> None:
        failures = []
        for path, result in results:
            if isinstance(result, str):
                failures.append(f"{Path(path).name}: {result}")
                continue
            summary, history = result
            key = log_key(path)
            self.others[key] = OpenRun(row_from_summary(summary), history)
            self.ticks.setdefault(key, ticked if ticked is not None else (ticks or {}).get(key, True))
            if self.current is not None and self.current.key == key and not self.current.settings:
                self._summarized(summary)
        added = len(results) - len(failures)
        if added:
            self.message.emit(f"{added} run{'s' * (added > 1)} added to the runs view"
                              + (f"; not added: {'; '.join(failures)}" if failures else ""))
        elif failures:
            self.message.emit(f"not added: {'; '.join(failures)}")
        self.update_view()

    def remove(self, key: str | None) -> None:
        """Take run ``key`` out of the view (the open source's run stays while it is open)."""
        if key is None or key not in self.others:
            if key is not None:
                self.message.emit("the open source's run stays in the view while it is open; untick it to hide it")
            return
        del self.others[key]
        if self.current is None or self.current.key != key:
            self.ticks.pop(key, None)
            self.colours.release(key)
        self.update_view()

    # ------------------------------------------------------------------ the open source's run
    def set_current_log(self, path: str | Path) -> None:
        """The open source's run is now the log ``path`` (its points come into the panel's history after this
        call); the previous one keeps its row, unticked."""
        key = log_key(path)
        self._replace_current(key)
        known = self.others.get(key)
        self.current = replace(known.row, current=True) if known is not None else RunRow(
            key=key, name=run_name(path), path=str(path), current=True)
        self.ticks[key] = True  # opened: shown, also when it was a row left unticked by an earlier source
        self.update_view()

    def log_read(self, path: str | Path, log) -> None:
        """The open source's log was read (``log``): its row is summarised (off the window thread, with those of
        earlier sources not summarised yet)."""
        key = log_key(path)
        if self.current is None or self.current.key != key or self.current.settings:
            return
        self._summarizing[key] = (Path(path), log)
        waiting = dict(self._summarizing)
        self._summary.submit(lambda _progress, cancelled: [summarize_run(path, log=log) for path, log in
                                                           waiting.values() if not cancelled()],
                             lambda summaries: [self._summarized(summary) for summary in summaries],
                             lambda _message: self._summarizing.clear())  # the table shows what it has

    def _summarized(self, summary) -> None:
        """A summary arrived: the row of its run (the open source's, or one kept from an earlier source) gets it."""
        key = log_key(summary.path)
        self._summarizing.pop(key, None)
        if self.current is not None and self.current.key == key and not self.current.live:
            self.current = row_from_summary(summary, current=True)
            if summary.steps_per_epoch:
                self.history.set_scales(summary.steps_per_epoch, summary.settings.get("batch_size"))
        elif key in self.others and not self.others[key].row.settings:
            run = self.others[key]
            run.row = row_from_summary(summary)
            run.history.set_scales(summary.steps_per_epoch, summary.settings.get("batch_size"))
        self.update_view()

    def set_current_live(self, log: Path | None) -> None:
        """The open source's run is now the run the window trains, writing the training log ``log`` (None:
        none); a run continued keeps its row."""
        key = log_key(log) if log is not None else "live"
        self._replace_current(key)
        if self.current is None or self.current.key != key:
            self.current = RunRow(key=key, name=run_name(log) if log is not None else "live run",
                                  path=str(log or ""), current=True)
        self.current = replace(self.current, live=True, state="running")
        self.ticks[key] = True  # the run being trained is shown
        self.update_view()

    def update_live(self, row: RunRow) -> None:
        """New facts of the live run (:func:`~draw_studio.gui.run_rows.live_row`)."""
        if self.current is not None and self.current.live and self.current.key == row.key:
            self.current = replace(row, path=self.current.path, current=True, live=True)
            self.update_view()

    def clear_current(self) -> None:
        """No run is the open source's any more (its row stays, unticked)."""
        self._replace_current(None)
        self.update_view()

    def _replace_current(self, key: str | None) -> None:
        """Before the open source's run becomes ``key``: keep the one it was as a row of its own."""
        old = self.current
        if old is None or old.key == key:
            return
        self.current = None
        if old.key in self.others or old.key in self._reading:
            return  # a run added to the view: it stays as it was
        reading = self.curves.files.reading
        if old.path and reading is not None and log_key(reading) == old.key:  # its points are not all in yet
            self.ticks[old.key] = False
            self.add_logs([old.path], ticked=False)
        elif old.path and self.history.train.size:
            self.ticks[old.key] = False
            self.others[old.key] = OpenRun(replace(old, current=False, live=False, ticked=False),
                                           self.history.frozen())
        else:
            self.ticks.pop(old.key, None)
            self.colours.release(old.key)

    # ------------------------------------------------------------------ showing
    def rows(self) -> list[RunRow]:
        """The table's rows: the open source's run first, then the others in the order they came."""
        rows = [self.current] if self.current is not None else []
        rows += [run.row for key, run in self.others.items() if self.current is None or key != self.current.key]
        return unique_names([replace(row, colour=self.colours.colour(row.key), ticked=self.ticks.get(row.key, True))
                             for row in rows])

    def update_view(self) -> None:
        """Show the rows in the table, and the ticked runs in the plot."""
        rows = self.rows()
        differing = differing_settings(rows) if len(rows) > 1 else []
        self.table.show_rows(rows, differing)
        self.remove_button.setEnabled(bool(self.others))
        others_ticked = any(row.ticked and not row.current for row in rows)
        detail = not others_ticked and (self.current is None or self.ticks.get(self.current.key, True))
        drawn = None if detail else [(row.key, row.name, row.colour) for row in rows if row.ticked]
        if drawn != self._overlay_shown:
            self._overlay_shown = drawn
            self.curves.set_overlay(None if drawn is None else [
                OverlayRun(key, name, colour, self.history if self.current is not None and key == self.current.key
                           else self.others[key].history, self.current is not None and key == self.current.key)
                for key, name, colour in drawn])
        self._legend(rows, differing)

    def _legend(self, rows: list[RunRow] | None = None, differing: list[str] | None = None) -> None:
        rows = self.rows() if rows is None else rows
        differing = (differing_settings(rows) if len(rows) > 1 else []) if differing is None else differing
        reading = f"; reading {len(self._reading)}…" if self._reading else ""
        if len(rows) < 2:
            text = "add runs (logs or a folder) to compare them; tick runs to overlay their curves" + reading
        else:
            text = (f"{len(rows)} runs; " + (f"they differ in {', '.join(differing)}" if differing
                                              else "same settings") + reading)
        self.note.setText(text)

    def _on_tick(self, key: str, ticked: bool) -> None:
        self.ticks[key] = ticked
        self.update_view()

    def _on_selected(self, key) -> None:
        self.curves.overlay.set_highlight(key)

    @property
    def busy(self) -> bool:
        """Logs are being read or summarised, or curves computed, off the window thread."""
        return self._reader.busy or self._summary.busy or self.curves.busy

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Run the event loop until every log is read and every curve drawn (e.g. before a screenshot);
        False if ``timeout_s`` passed first."""
        deadline = time.monotonic() + timeout_s
        while self.busy and time.monotonic() < deadline:
            QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)
        QApplication.processEvents()
        return not self.busy


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read(path: Path):
    """(path, (summary, history)) or (path, one-line failure)."""
    try:
        return path, read_run(path)
    except Exception as exc:  # noqa: BLE001 - a log that cannot be read is a message, never a crash
        return path, one_line(exc)


def _read_all(paths: list[Path], cancelled) -> list | None:
    results = []
    for path in paths:
        if cancelled():
            return None
        results.append(_read(path))
    return results
