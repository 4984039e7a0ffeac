"""A run's curves as one CSV file, written here or in a child process.

The layout (``draw-studio log-export --csv`` and the window's File > Export curves): one row per point
of every curve, columns ``split`` (``train`` / ``valid``), ``step``, ``wall_time``, ``bound``, ``nll_x``,
``kl``, ``lr``; a training row holds the log's history row (its ``loss`` is the ``bound`` column), a
validation row the held-out bound, with ``nll_x``, ``kl`` and ``lr`` empty. An unrecorded learning rate
is empty too. An attention classifier's log (:mod:`draw_studio.curve_meaning`) has other quantities, so
other columns (:data:`CLASSIFIER_CSV_COLUMNS`): ``split``, ``step``, ``wall_time``, ``cross_entropy`` (a
training row's loss, nats per image), ``error_percent`` (a validation row's error) and ``lr``; a row leaves
the other split's column empty, and the log's copy of the loss (``nll_x``) and its zero ``kl`` are left
out. Floats are written with every digit (Python's ``repr``), so the file reads back to the log's
numbers exactly. The file is written under a temporary name and renamed when complete
(``files.atomic_write``): a failure or a cancel leaves no partial file.

Formatting a million rows takes seconds of Python holding the GIL. In a program with a window, a
thread doing it starves the window's thread of the GIL (measured: the event loop blocked 190-340 ms
at a time). :func:`write_curves_csv_in_process` therefore formats in a child process
(``python -m draw_studio.curves_csv``): the columns go to it through a pipe and its progress comes
back as lines, so the calling thread only waits in system calls, with the GIL released.

This module imports only numpy and the standard library, so the child starts in a fraction of a second.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from itertools import repeat
from pathlib import Path

import numpy as np

from .curve_meaning import CLASSIFIER, DRAW
from .errors import DrawStudioError, first_line
from .files import atomic_write

CSV_COLUMNS = ("step", "wall_time", "bound", "nll_x", "kl", "lr")  # after the first column, "split"
VALID_COLUMNS = ("step", "wall_time", "bound")
CLASSIFIER_CSV_COLUMNS = ("step", "wall_time", "cross_entropy", "error_percent", "lr")  # a classifier's log
CSV_CHUNK_ROWS = 1000  # rows formatted per call (the csv module holds the GIL for a whole call)
CHILD_START_TIMEOUT_S = 60.0


# per kind: the header after "split", and the source column of each cell of a training and a validation row
# (None: an empty cell)
_LAYOUTS = {
    DRAW: (CSV_COLUMNS, CSV_COLUMNS, ("step", "wall_time", "bound", None, None, None)),
    CLASSIFIER: (CLASSIFIER_CSV_COLUMNS, ("step", "wall_time", "bound", None, "lr"),
                 ("step", "wall_time", None, "bound", None)),
}


def _cells(arrays: Mapping[str, np.ndarray], picks: tuple, part: slice) -> list:
    """One iterable per CSV column for the rows ``part`` of ``arrays``: steps as integers, an unrecorded (NaN)
    learning rate and a column of None as empty cells, other floats as they are (the csv module writes a
    float as repr() does: every digit kept)."""
    cells = []
    for name in picks:
        if name is None:
            cells.append(repeat(""))
        elif name == "step":
            cells.append(arrays[name][part].astype(np.int64).tolist())
        elif name == "lr":
            cells.append(["" if value != value else value for value in arrays[name][part].tolist()])
        else:
            cells.append(arrays[name][part].tolist())
    return cells


class ExportCancelled(Exception):
    """A CSV export was stopped before it finished (nothing was written)."""


def write_curves_csv(path: str | Path, train: Mapping[str, np.ndarray], valid: Mapping[str, np.ndarray],
                     progress: Callable[[int, int], None] | None = None,
                     cancelled: Callable[[], bool] | None = None, kind: str = DRAW) -> int:
    """Write the points of a run's curves to one CSV (the layout of this module's documentation).

    Parameters
    ----------
    path : str or Path
        Written atomically.
    train : mapping
        :data:`CSV_COLUMNS` -> (N,) arrays (``lr`` NaN where not recorded).
    valid : mapping
        :data:`VALID_COLUMNS` -> (M,) arrays.
    progress : callable, optional
        ``progress(rows_done, rows_total)`` as rows are written.
    cancelled : callable, optional
        When it returns True, :class:`ExportCancelled` is raised and ``path`` is left as it was.
    kind : str
        ``draw`` (the columns :data:`CSV_COLUMNS`) or ``classifier`` (:data:`CLASSIFIER_CSV_COLUMNS`: the
        ``bound`` arrays are the cross-entropy and the validation error in percent); see
        :func:`draw_studio.curve_meaning.log_kind`.

    Returns
    -------
    int
        Rows written (N + M), the header not counted.
    """
    train_arrays = {name: np.asarray(train[name], np.float64) for name in CSV_COLUMNS}  # each (N,)
    valid_arrays = {name: np.asarray(valid[name], np.float64) for name in VALID_COLUMNS}  # each (M,)
    train_rows, valid_rows = len(train_arrays["step"]), len(valid_arrays["step"])
    total = train_rows + valid_rows
    header, train_picks, valid_picks = _LAYOUTS[kind]

    def write(temp: str) -> None:
        with open(temp, "w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(("split",) + header)
            for first in range(0, train_rows, CSV_CHUNK_ROWS):
                if cancelled is not None and cancelled():
                    raise ExportCancelled(f"export of {path} stopped")
                part = slice(first, first + CSV_CHUNK_ROWS)
                out.writerows(zip(repeat("train"), *_cells(train_arrays, train_picks, part)))
                if progress is not None:
                    progress(min(first + CSV_CHUNK_ROWS, train_rows), total)
            out.writerows(zip(repeat("valid"), *_cells(valid_arrays, valid_picks, slice(None))))
        if progress is not None:
            progress(total, total)

    atomic_write(path, write)
    return total


def write_curves_csv_in_process(path: str | Path, train: Mapping[str, np.ndarray], valid: Mapping[str, np.ndarray],
                                progress: Callable[[int, int], None] | None = None,
                                cancelled: Callable[[], bool] | None = None, kind: str = DRAW) -> int:
    """:func:`write_curves_csv` done by a child process (see the module docstring); same arguments and result.

    ``cancelled()`` is checked at every progress line of the child (a few per second at least); a cancel
    stops the child, which removes its temporary file.

    Raises
    ------
    ExportCancelled
        ``cancelled()`` turned true; ``path`` is as it was.
    DrawStudioError
        The child could not write ``path`` (its one-line message) or could not start.
    """
    columns = [np.ascontiguousarray(train[name], np.float64) for name in CSV_COLUMNS]  # each (N,)
    columns += [np.ascontiguousarray(valid[name], np.float64) for name in VALID_COLUMNS]  # each (M,)
    header = {"path": str(Path(path).resolve()), "train_rows": len(columns[0]), "valid_rows": len(columns[-1]),
              "kind": kind}
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    try:
        child = subprocess.Popen([sys.executable, "-m", "draw_studio.curves_csv"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError as exc:
        raise DrawStudioError(f"cannot start a process to write {path}: {exc.strerror or exc}") from None
    try:
        try:
            child.stdin.write(json.dumps(header).encode() + b"\n")
            for column in columns:
                child.stdin.write(memoryview(column).cast("B"))  # the pipe write releases the GIL
            child.stdin.close()
        except BrokenPipeError:
            pass  # the child failed early: its message is on stderr
        for line in child.stdout:  # "rows_done rows_total" lines
            if cancelled is not None and cancelled():
                child.terminate()  # its handler unwinds atomic_write: the temporary file goes
                child.wait()
                raise ExportCancelled(f"export of {path} stopped")
            if progress is not None:
                done, total = (int(word) for word in line.split())
                progress(done, total)
        error = child.stderr.read().decode(errors="replace").strip()
        if child.wait() != 0:
            raise DrawStudioError(error.splitlines()[-1] if error else
                                  f"cannot write {path}: the writing process stopped (exit {child.returncode})")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout, child.stderr):
            stream.close()
    return header["train_rows"] + header["valid_rows"]


def _stop_on_terminate(_signal, _frame) -> None:
    raise ExportCancelled("stopped")


def main() -> int:
    """The child of :func:`write_curves_csv_in_process`: a JSON header line and the raw float64 columns on
    stdin, progress lines on stdout, one line on stderr and exit 2 on failure."""
    signal.signal(signal.SIGTERM, _stop_on_terminate)
    source = sys.stdin.buffer
    try:
        header = json.loads(source.readline())
        sizes = [header["train_rows"]] * len(CSV_COLUMNS) + [header["valid_rows"]] * len(VALID_COLUMNS)
        arrays = []
        for size in sizes:
            data = source.read(8 * size)
            if len(data) != 8 * size:
                raise DrawStudioError(f"cannot write {header['path']}: the curves arrived cut short")
            arrays.append(np.frombuffer(data, np.float64))  # (size,)
        train = dict(zip(CSV_COLUMNS, arrays[:len(CSV_COLUMNS)]))
        valid = dict(zip(VALID_COLUMNS, arrays[len(CSV_COLUMNS):]))

        def report(done: int, total: int) -> None:
            sys.stdout.write(f"{done} {total}\n")
            sys.stdout.flush()

        write_curves_csv(header["path"], train, valid, report, kind=header.get("kind", DRAW))
    except ExportCancelled:
        return 1
    except DrawStudioError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (ValueError, KeyError, OSError) as exc:
        print(f"cannot write the CSV: {first_line(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
