"""A training log in other forms: its curves as CSV, its snapshots as pictures and a GIF.

``draw-studio log-export LOG.h5 --csv FILE --snapshots-gif FILE.gif`` (and ``--tensorboard DIR``,
``draw_studio.tensorboard_logs``). Every file is written under a temporary name and renamed when
complete (``files.atomic_write``): a failure leaves no partial file.

The CSV has one row per point of every curve: columns ``split`` (``train`` / ``valid``), ``step``,
``wall_time``, ``bound``, ``nll_x``, ``kl``, ``lr``; a training row holds the log's history row (its
``loss`` is the ``bound`` column), a validation row the held-out bound, with the wall time of the
training rows around its step (a log stores none for it) and ``nll_x``, ``kl`` and ``lr`` empty. An
unrecorded learning rate (logs of older versions) is empty too. Floats are written with every digit
(Python's ``repr``), so the file reads back to the log's numbers exactly.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from itertools import repeat
from pathlib import Path

import numpy as np

from .errors import DrawStudioError
from .export import write_gif
from .files import atomic_write
from .images import tile, upscale
from .training_log import TrainingLog
from .training_log_reader import read_training_log
from .training_snapshots import Snapshots, read_snapshots

CSV_COLUMNS = ("step", "wall_time", "bound", "nll_x", "kl", "lr")  # after the first column, "split"
VALID_COLUMNS = ("step", "wall_time", "bound")
CSV_CHUNK_ROWS = 1000  # rows formatted per call (the csv module holds the GIL for a whole call)
PADDING = 1
LABEL_HEIGHT = 14  # pixels of the "step N" strip above a snapshot frame


class ExportCancelled(Exception):
    """A CSV export was stopped before it finished (nothing was written)."""


def log_curves(log: TrainingLog) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The training and validation curves of a log, named as the CSV's columns.

    Returns
    -------
    train : dict
        :data:`CSV_COLUMNS` -> (N,) float64 (``bound`` is the log's ``loss``).
    valid : dict
        :data:`VALID_COLUMNS` -> (M,) float64; the wall time is interpolated from the training rows
        (NaN when there are none).
    """
    train = {"step": log.step, "wall_time": log.wall_time, "bound": log.loss, "nll_x": log.nll_x, "kl": log.kl,
             "lr": log.lr}
    train = {name: np.asarray(column, np.float64) for name, column in train.items()}
    steps = np.asarray(log.eval_step, np.float64)
    wall = (np.interp(steps, train["step"], train["wall_time"]) if len(train["step"])
            else np.full(len(steps), np.nan))
    return train, {"step": steps, "wall_time": wall, "bound": np.asarray(log.eval_bound, np.float64)}


def write_curves_csv(path: str | Path, train: Mapping[str, np.ndarray], valid: Mapping[str, np.ndarray],
                     progress: Callable[[int, int], None] | None = None,
                     cancelled: Callable[[], bool] | None = None) -> int:
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

    Returns
    -------
    int
        Rows written (N + M), the header not counted.
    """
    columns = [np.asarray(train[name], np.float64) for name in CSV_COLUMNS]
    valid_columns = [np.asarray(valid[name], np.float64) for name in VALID_COLUMNS]
    total = len(columns[0]) + len(valid_columns[0])

    def write(temp: str) -> None:
        with open(temp, "w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(("split",) + CSV_COLUMNS)
            for first in range(0, len(columns[0]), CSV_CHUNK_ROWS):
                if cancelled is not None and cancelled():
                    raise ExportCancelled(f"export of {path} stopped")
                part = slice(first, first + CSV_CHUNK_ROWS)
                steps = columns[0][part].astype(np.int64).tolist()
                lr = ["" if value != value else value for value in columns[5][part].tolist()]
                # the csv module writes a float as repr() does: every digit kept
                out.writerows(zip(repeat("train"), steps, *(c[part].tolist() for c in columns[1:5]), lr))
                if progress is not None:
                    progress(min(first + CSV_CHUNK_ROWS, len(columns[0])), total)
            steps = valid_columns[0].astype(np.int64).tolist()
            out.writerows(zip(repeat("valid"), steps, valid_columns[1].tolist(), valid_columns[2].tolist(),
                              repeat(""), repeat(""), repeat("")))
        if progress is not None:
            progress(total, total)

    atomic_write(path, write)
    return total


def export_log_csv(log_path: str | Path, out: str | Path) -> int:
    """Write every point of the training log ``log_path``'s curves to the CSV ``out``; returns the rows.

    Raises
    ------
    TrainingLogError
        The log cannot be read.
    DrawStudioError
        ``out`` cannot be written.
    """
    return write_curves_csv(out, *log_curves(read_training_log(log_path)))


def snapshot_frame(snapshots: Snapshots, index: int, scale: int = 2, label: bool = True) -> np.ndarray:
    """The picture of snapshot ``index``: the prior samples (left) beside the validation images and,
    under them, their reconstructions (right), with "step N" above.

    Parameters
    ----------
    snapshots : Snapshots
    index : int
        0 .. len(snapshots) - 1.
    scale : int
        Integer nearest-neighbour upscaling.
    label : bool
        Write the step above the images.

    Returns
    -------
    ndarray, shape (H', W', C), uint8
        C is the images' channels.
    """
    if not 0 <= index < len(snapshots):
        raise DrawStudioError(f"snapshot {index} does not exist; the log holds {len(snapshots)}")
    if scale < 1:
        raise DrawStudioError(f"scale must be a whole number of at least 1, got {scale}")
    samples = tile(snapshots.samples[index])  # (h, w, C), near-square
    half = max(1, -(-len(snapshots.inputs) // 2))  # images per row of the right-hand side
    right = np.concatenate([tile(snapshots.inputs, half)[:-PADDING],
                            tile(snapshots.reconstructions[index], half)], axis=0)
    height = max(samples.shape[0], right.shape[0])
    pad = [np.pad(part, ((0, height - part.shape[0]), (0, 0), (0, 0)), constant_values=64)
           for part in (samples, right)]
    picture = upscale(np.concatenate([pad[0][:, :-PADDING], np.full((height, 3 * PADDING, pad[0].shape[2]), 160,
                                                                     np.uint8), pad[1]], axis=1), scale)
    if not label:
        return picture
    from PIL import Image, ImageDraw

    strip = np.full((LABEL_HEIGHT, picture.shape[1], picture.shape[2]), 255, np.uint8)
    framed = np.concatenate([strip, picture], axis=0)
    image = Image.fromarray(framed[:, :, 0] if framed.shape[2] == 1 else framed)
    ImageDraw.Draw(image).text((3, 1), f"step {int(snapshots.step[index]):,}", fill=0)
    drawn = np.asarray(image)
    return drawn[:, :, None] if drawn.ndim == 2 else drawn


def export_snapshots_gif(log_path: str | Path, out: str | Path, fps: float = 4.0, loop: int = 0, scale: int = 2,
                         hold_last: float = 2.0) -> int:
    """Write the snapshots of a training log as an animated GIF: how the model learned to draw.

    One frame per snapshot (:func:`snapshot_frame`), in step order.

    Returns
    -------
    int
        Frames written.

    Raises
    ------
    DrawStudioError
        The log holds no snapshots (a log of an older version, or of a run with ``--snapshot-every 0``),
        or ``out`` cannot be written.
    """
    snapshots = read_snapshots(log_path)
    if not len(snapshots):
        raise DrawStudioError(f"{log_path} holds no snapshots (a log of an older DRAW Studio, or a run with "
                              "--snapshot-every 0); train with --snapshot-every N to record them")
    write_gif([snapshot_frame(snapshots, index, scale) for index in range(len(snapshots))], out, fps, loop,
              hold_last)
    return len(snapshots)
