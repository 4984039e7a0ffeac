"""Every point of a run's curves, kept in growing numpy arrays (no Qt).

The window thread appends; background work (smoothing, CSV export) reads :meth:`GrowingTable.column`
views taken in the window thread. That is safe because a table only ever writes past its filled
part, and :meth:`GrowingTable.clear` starts a new array rather than writing over the old one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..curve_meaning import DRAW
from ..curves_csv import CSV_COLUMNS as TRAIN_COLUMNS
from ..curves_csv import (  # noqa: F401 - ExportCancelled: raised here
    VALID_COLUMNS,
    ExportCancelled,
    write_curves_csv,
    write_curves_csv_in_process,
)
from .curve_data import exponential_moving_average  # noqa: F401 - its home was here

INITIAL_ROWS = 1024


class GrowingTable:
    """Columns of float64 that grow by doubling; ``column(name)`` is a view of the filled part."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._data = np.empty((len(names), INITIAL_ROWS), dtype=np.float64)
        self.size = 0

    @classmethod
    def from_columns(cls, names: tuple[str, ...], columns: dict[str, np.ndarray]) -> GrowingTable:
        """A table holding ``columns`` (name -> (N,)); a missing column is NaN."""
        table = cls(names)
        count = len(columns.get(names[0], ()))
        table._data = np.empty((len(names), max(count + count // 4, INITIAL_ROWS)), dtype=np.float64)  # room to go on
        for index, name in enumerate(names):
            table._data[index, :count] = columns[name][:count] if name in columns else np.nan
        table.size = count
        return table

    def extend(self, rows: np.ndarray) -> None:
        """Append ``rows`` (k, columns)."""
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, len(self.names))
        needed = self.size + len(rows)
        if needed > self._data.shape[1]:
            bigger = np.empty((len(self.names), max(needed, 2 * self._data.shape[1])), dtype=np.float64)
            bigger[:, :self.size] = self._data[:, :self.size]
            self._data = bigger
        self._data[:, self.size:needed] = rows.T
        self.size = needed

    def column(self, name: str) -> np.ndarray:
        return self._data[self.names.index(name), :self.size]

    def rows(self, first: int, last: int | None = None) -> np.ndarray:
        """Rows ``first:last`` as an array (k, columns)."""
        return self._data[:, first:self.size if last is None else last].T

    def frozen(self) -> GrowingTable:
        """A table of the rows held now that later appends never change (a view: nothing is copied)."""
        table = GrowingTable.__new__(GrowingTable)
        table.names, table._data, table.size = self.names, self._data[:, :self.size], self.size
        return table

    def clear(self) -> None:
        """Empty the table (a new array: views handed out before keep their values)."""
        self._data = np.empty((len(self.names), INITIAL_ROWS), dtype=np.float64)
        self.size = 0


class TrainingHistory:
    """Training points (one per optimiser step) and validation points of one run.

    Attributes
    ----------
    steps_per_epoch : float or None
    batch_size : int or None
        The run's numbers behind the epoch and images-seen axes (None: not known).
    kind : str
        What the points are (:mod:`draw_studio.curve_meaning`): ``draw`` (the bound and its terms in nats,
        the validation bound) or ``classifier`` (an attention classifier's log: the cross-entropy in the
        ``bound`` and ``nll_x`` columns, 0 in ``kl``, the validation error in percent in the validation
        ``bound``).
    """

    def __init__(self) -> None:
        self.train = GrowingTable(TRAIN_COLUMNS)
        self.valid = GrowingTable(VALID_COLUMNS)
        self.revision = 0  # bumped on every change, so views know when to redraw
        self.generation = 0  # bumped when points are removed or replaced, so cached smoothing is dropped
        self.steps_per_epoch: float | None = None
        self.batch_size: int | None = None
        self.kind = DRAW

    def clear(self) -> None:
        self.train.clear()
        self.valid.clear()
        self.steps_per_epoch = self.batch_size = None
        self.kind = DRAW
        self.revision += 1
        self.generation += 1

    def set_kind(self, kind: str) -> None:
        """Say what the points are (``draw`` or ``classifier``, see :func:`draw_studio.curve_meaning.log_kind`)."""
        if kind != self.kind:
            self.kind = kind
            self.revision += 1

    def set_scales(self, steps_per_epoch: float | None, batch_size: int | None) -> None:
        """Record the run's steps per epoch and batch size (None or 0: unknown)."""
        changed = (steps_per_epoch or None, batch_size or None) != (self.steps_per_epoch, self.batch_size)
        self.steps_per_epoch, self.batch_size = steps_per_epoch or None, batch_size or None
        if changed:
            self.revision += 1

    def add_steps(self, step_losses: list, lr: float = float("nan")) -> None:
        """Append the (step, wall_time, loss, nll_x, kl) rows of a ``"step"`` report.

        ``lr`` is the report's learning rate, given to every row; rows of six
        values carry their own learning rate instead. Rows from a step already
        held on (a run resumed from an earlier checkpoint) replace the points
        from that step on, as they replace them in the run's log.
        """
        if len(step_losses):
            rows = np.asarray(step_losses, dtype=np.float64)
            if rows.ndim == 2 and rows.shape[1] == len(TRAIN_COLUMNS) - 1:
                rows = np.concatenate((rows, np.full((len(rows), 1), lr)), axis=1)
            if self.train.size and rows[0, 0] <= self.train.column("step")[-1]:
                self._rewind(rows[0, 0])
            self.train.extend(rows)
            self.revision += 1

    def _rewind(self, step: float) -> None:
        """Drop the points from ``step`` on (into new tables: views handed out before stay as they were)."""
        self.train, self.valid = _head(self.train, step), _head(self.valid, step)
        self.generation += 1

    def add_validation(self, step: int, wall_time: float, bound: float) -> None:
        self.valid.extend(np.array([[step, wall_time, bound]]))
        self.revision += 1

    def load(self, train: dict[str, np.ndarray], valid: dict[str, np.ndarray]) -> None:
        """Replace everything by the columns of a training log (``valid`` may lack ``wall_time``)."""
        train_table, valid_table = tables_from_columns(train, valid)
        self.adopt(train_table, valid_table)

    def adopt(self, train: GrowingTable, valid: GrowingTable, since: tuple[int, int, int] | None = None) -> bool:
        """Replace the points by tables built elsewhere (e.g. a log read in the background).

        Parameters
        ----------
        since : (generation, train rows, validation rows), optional
            The history when the tables were asked for. Points added since then
            (a resumed run's first reports) are kept after the adopted ones, which
            stop before them. If the history was cleared since, nothing is adopted.

        Returns
        -------
        bool
            Whether the tables were adopted.
        """
        if since is not None:
            generation, train_from, valid_from = since
            if generation != self.generation:
                return False
            live_train, live_valid = self.train.rows(train_from), self.valid.rows(valid_from)
            if len(live_train):
                cut = live_train[0, 0]  # the first live step
                train = _head(train, cut)
                valid = _head(valid, cut)
            for table, live in ((train, live_train), (valid, live_valid)):
                if len(live):
                    table.extend(live)
        self.train, self.valid = train, valid
        self.revision += 1
        self.generation += 1
        return True

    def frozen(self) -> TrainingHistory:
        """The points held now, as a history that later changes to this one never touch (nothing is copied).

        For work off the window thread, e.g. ``history.frozen().write_csv(path)``.
        """
        frozen = TrainingHistory()
        frozen.train, frozen.valid = self.train.frozen(), self.valid.frozen()
        frozen.revision, frozen.generation = self.revision, self.generation
        frozen.steps_per_epoch, frozen.batch_size = self.steps_per_epoch, self.batch_size
        frozen.kind = self.kind
        return frozen

    def mark(self) -> tuple[int, int, int]:
        """Where the history stands now, for :meth:`adopt`'s ``since``."""
        return self.generation, self.train.size, self.valid.size

    def write_csv(self, path: str | Path, progress: Callable[[int, int], None] | None = None,
                  cancelled: Callable[[], bool] | None = None, in_process: bool = False) -> int:
        """Write every point of every curve to one CSV (:func:`draw_studio.curves_csv.write_curves_csv`'s
        layout, the same as ``draw-studio log-export --csv``; a classifier's points get its columns); returns the
        number of rows.

        Safe to call off the window thread: it writes the rows there were when it was called.
        ``progress(done, total)`` is called as rows are written; when ``cancelled()`` turns true,
        :class:`ExportCancelled` is raised and the file at ``path`` is left as it was. With
        ``in_process`` a child process formats the rows (a thread doing it would starve the window's
        thread of the GIL; see :mod:`draw_studio.curves_csv`).
        """
        train = {name: self.train.column(name) for name in TRAIN_COLUMNS}
        valid = {name: self.valid.column(name) for name in VALID_COLUMNS}
        write = write_curves_csv_in_process if in_process else write_curves_csv
        return write(path, train, valid, progress, cancelled, kind=self.kind)


def tables_from_columns(train: dict[str, np.ndarray],
                        valid: dict[str, np.ndarray]) -> tuple[GrowingTable, GrowingTable]:
    """Tables of a log's columns (train: TRAIN_COLUMNS, lr optional; valid: step and bound, wall time optional).

    A log stores no wall time for validation: it is taken from the nearest training row's.
    """
    train_table = GrowingTable.from_columns(TRAIN_COLUMNS, {name: np.asarray(column, dtype=np.float64)
                                                            for name, column in train.items()})
    steps = np.asarray(valid.get("step", ()), dtype=np.float64)
    wall = valid.get("wall_time")
    if wall is None:
        wall = (np.interp(steps, train_table.column("step"), train_table.column("wall_time"))
                if train_table.size else np.full(len(steps), np.nan))
    valid_table = GrowingTable.from_columns(VALID_COLUMNS, {
        "step": steps, "wall_time": np.asarray(wall, np.float64),
        "bound": np.asarray(valid.get("bound", ()), np.float64)})
    return train_table, valid_table


def _head(table: GrowingTable, cut: float) -> GrowingTable:
    """The rows of ``table`` before step ``cut``, as a table of their own."""
    keep = int(np.searchsorted(table.column("step"), cut, side="left"))
    return GrowingTable.from_columns(table.names, {name: table.column(name)[:keep] for name in table.names})
