"""Reading training logs into the curves and writing them as CSV, off the window thread when big.

A small log (up to ``LOG_INLINE_BYTES``) or a short CSV (up to ``CSV_INLINE_ROWS`` rows) takes a
few milliseconds and is done at once, so that its errors reach the caller as exceptions; bigger
ones run on a :class:`~draw_studio.gui.curve_tasks.BackgroundLane` and report through the
signals of :class:`~draw_studio.gui.curves.CurvesPlot`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject

from ..curve_meaning import log_kind
from ..errors import DrawStudioError
from ..runs import RunSummary, summarize_run
from ..training_log import TrainingLog
from ..training_log_reader import read_training_log
from .curve_tasks import BackgroundLane
from .history import GrowingTable, TrainingHistory, tables_from_columns

LOG_INLINE_BYTES = 2_000_000  # ~70,000 rows: read in ~15 ms
CSV_INLINE_ROWS = 2_000  # formatted in ~15 ms


def read_log_tables(path: str | Path) -> tuple[TrainingLog, GrowingTable, GrowingTable]:
    """Read a training log and build the curves' tables from it (safe off the window thread)."""
    log = read_training_log(path)
    return (log, *log_tables(log))


def log_tables(log: TrainingLog) -> tuple[GrowingTable, GrowingTable]:
    """The curves' tables (training, validation) of a training log as read."""
    return tables_from_columns(
        {"step": log.step, "wall_time": log.wall_time, "bound": log.loss, "nll_x": log.nll_x, "kl": log.kl,
         "lr": log.lr}, {"step": log.eval_step, "bound": log.eval_bound})


def read_run(path: str | Path) -> tuple[RunSummary, TrainingHistory]:
    """Read and summarise a training log (:func:`draw_studio.runs.summarize_run`) and hold its points in a
    history of their own (safe off the window thread). The summary keeps no reference to the log's arrays."""
    summary = summarize_run(path)
    history = TrainingHistory()
    history.adopt(*log_tables(summary.log))
    history.set_scales(summary.steps_per_epoch, summary.settings.get("batch_size"))
    history.set_kind(summary.kind)
    summary.log = None
    return summary, history


class CurveFiles(QObject):
    """Opens logs into, and exports CSV from, the history of a :class:`~draw_studio.gui.curves.CurvesPlot`."""

    def __init__(self, curves) -> None:
        super().__init__(curves)
        self.curves = curves
        self._logs = BackgroundLane("curve logs", self)
        self._csv = BackgroundLane("curve csv", self)
        self.reading: str | None = None  # the log being read in the background

    @property
    def history(self) -> TrainingHistory:
        return self.curves.history

    @property
    def busy(self) -> bool:
        return self._logs.busy or self._csv.busy

    @property
    def exporting(self) -> bool:
        return self._csv.busy

    def open_log(self, path: str | Path, loaded: Callable[[TrainingLog], None] | None = None,
                 failed: Callable[[str], None] | None = None) -> None:
        """Show the curves of the training log ``path``: at once when small, else when read in the background.

        Points the history gets meanwhile (a resumed run's first reports) stay after the
        log's; if the history is cleared meanwhile (a new run), the log is not shown.
        ``loaded(log)`` / ``failed(message)`` are called in the window thread, as
        the signals ``log_loaded`` / ``log_failed`` are emitted.

        Raises
        ------
        DrawStudioError
            A small log could not be read (a big one's failure goes to ``failed``).
        """
        path = Path(path)
        try:
            small = path.stat().st_size <= LOG_INLINE_BYTES
        except OSError:
            small = True  # let the reader say what is wrong
        if small:
            self._logs.cancel()
            self.reading = None
            log, train, valid = read_log_tables(path)
            self.history.adopt(train, valid)
            self.history.set_scales(log.steps_per_epoch, log.train_config.get("batch_size"))
            self.history.set_kind(log_kind(log.model_config))
            self._loaded(log, loaded)
            return
        since = self.history.mark()
        self.reading = str(path)

        def done(result) -> None:
            self.reading = None
            log, train, valid = result
            if self.history.adopt(train, valid, since=since):
                self.history.set_scales(log.steps_per_epoch, log.train_config.get("batch_size"))
                self.history.set_kind(log_kind(log.model_config))
                self._loaded(log, loaded)

        def fail(message: str) -> None:
            self.reading = None
            self.curves.log_failed.emit(message)
            if failed is not None:
                failed(message)

        self._logs.submit(lambda _progress, _cancelled: read_log_tables(path), done, fail)

    def _loaded(self, log: TrainingLog, loaded) -> None:
        self.curves.refresh()
        self.curves.log_loaded.emit(log)
        if loaded is not None:
            loaded(log)

    def export_csv(self, path: str | Path, written: Callable[[str], None] | None = None,
                   failed: Callable[[str], None] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> bool:
        """Write every point of every curve to ``path`` (CSV): at once when short, else in the background.

        The rows are those held when it is called. ``written(message)`` /
        ``failed(message)`` are called in the window thread, as the signals
        ``csv_written`` / ``csv_failed`` are emitted; ``progress(rows, total)`` as
        ``csv_progress`` is, meanwhile (not for a short export).

        Returns
        -------
        bool
            False (and nothing done) while another export is being written.
        """
        if self._csv.busy:
            return False
        frozen = self.history.frozen()

        def done(rows) -> None:
            message = f"wrote {rows} points to {path}"
            self.curves.csv_written.emit(message)
            if written is not None:
                written(message)

        def fail(message: str) -> None:
            self.curves.csv_failed.emit(message)
            if failed is not None:
                failed(message)

        if frozen.train.size + frozen.valid.size <= CSV_INLINE_ROWS:
            try:
                rows = frozen.write_csv(path)
            except DrawStudioError as exc:
                fail(str(exc))
            else:
                done(rows)
            return True
        def advance(rows: int, total: int) -> None:
            self.curves.csv_progress.emit(rows, total)
            if progress is not None:
                progress(rows, total)

        self._csv.submit(lambda report, cancelled: frozen.write_csv(path, report, cancelled, in_process=True), done,
                         fail, advance)
        return True

    def cancel(self) -> None:
        """Stop reading and writing (an unfinished CSV leaves the previous file as it was)."""
        self._logs.cancel()
        self._csv.cancel()
        self.reading = None
