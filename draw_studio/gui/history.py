"""Every point of a run's curves, kept in growing numpy arrays (no Qt)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..files import atomic_write

TRAIN_COLUMNS = ("step", "wall_time", "bound", "nll_x", "kl")
VALID_COLUMNS = ("step", "wall_time", "bound")


class GrowingTable:
    """Columns of float64 that grow by doubling; ``column(name)`` is a view of the filled part."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._data = np.empty((len(names), 1024), dtype=np.float64)
        self.size = 0

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

    def clear(self) -> None:
        self.size = 0


class TrainingHistory:
    """Training points (one per optimiser step) and validation points of one run."""

    def __init__(self) -> None:
        self.train = GrowingTable(TRAIN_COLUMNS)
        self.valid = GrowingTable(VALID_COLUMNS)
        self.revision = 0  # bumped on every change, so views know when to redraw
        self.generation = 0  # bumped when points are removed, so cached smoothing is dropped

    def clear(self) -> None:
        self.train.clear()
        self.valid.clear()
        self.revision += 1
        self.generation += 1

    def add_steps(self, step_losses: list) -> None:
        """Append (step, wall_time, loss, nll_x, kl) rows of a ``"step"`` report."""
        if step_losses:
            self.train.extend(np.asarray(step_losses, dtype=np.float64))
            self.revision += 1

    def add_validation(self, step: int, wall_time: float, bound: float) -> None:
        self.valid.extend(np.array([[step, wall_time, bound]]))
        self.revision += 1

    def load(self, train: dict[str, np.ndarray], valid: dict[str, np.ndarray]) -> None:
        """Replace everything by the columns of a training log (``valid`` may lack ``wall_time``)."""
        self.clear()
        if len(train.get("step", ())):
            self.train.extend(np.stack([np.asarray(train[name], dtype=np.float64) for name in TRAIN_COLUMNS], 1))
        steps = np.asarray(valid.get("step", ()), dtype=np.float64)
        if len(steps):
            wall = valid.get("wall_time")
            if wall is None:  # a log stores no wall time for validation: take the nearest training row's
                wall = np.interp(steps, self.train.column("step"), self.train.column("wall_time")) \
                    if self.train.size else np.full(len(steps), np.nan)
            self.valid.extend(np.stack([steps, np.asarray(wall, np.float64),
                                        np.asarray(valid["bound"], np.float64)], 1))
        self.revision += 1

    def write_csv(self, path: str | Path) -> int:
        """Write every point of every curve to one CSV; returns the number of rows.

        Columns: ``split`` (train / valid), ``step``, ``wall_time``, ``bound``,
        ``nll_x``, ``kl`` (empty for validation rows, which hold only the bound).
        """
        def write(temp: str) -> None:
            with open(temp, "w", newline="") as handle:
                out = csv.writer(handle)
                out.writerow(("split",) + TRAIN_COLUMNS)
                columns = [self.train.column(name) for name in TRAIN_COLUMNS]
                for row in zip(*columns):
                    out.writerow(("train", int(row[0]), *(repr(float(v)) for v in row[1:])))
                valid = [self.valid.column(name) for name in VALID_COLUMNS]
                for step, wall, bound in zip(*valid):
                    out.writerow(("valid", int(step), repr(float(wall)), repr(float(bound)), "", ""))

        atomic_write(path, write)
        return self.train.size + self.valid.size


def exponential_moving_average(values: np.ndarray, weight: float, start: int = 0,
                               previous: np.ndarray | None = None) -> np.ndarray:
    """EMA s_i = weight * s_{i-1} + (1 - weight) * v_i, seeded with the first value.

    With ``previous`` (the EMA of ``values[:start]``) only the new tail is
    computed. NaNs are skipped (the average carries over them).
    """
    out = np.empty_like(values)
    if start:
        out[:start] = previous[:start]
    last = out[start - 1] if start else np.nan
    keep = 1.0 - weight
    for i in range(start, len(values)):
        value = values[i]
        if value != value:  # NaN
            out[i] = last
            continue
        last = value if last != last else weight * last + keep * value
        out[i] = last
    return out
