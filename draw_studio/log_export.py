"""A training log in other forms: its curves as CSV, its snapshots as pictures and a GIF.

``draw-studio log-export LOG.h5 --csv FILE --snapshots-gif FILE.gif`` (and ``--tensorboard DIR``,
``draw_studio.tensorboard_logs``). Every file is written under a temporary name and renamed when
complete (``files.atomic_write``): a failure leaves no partial file.

The CSV's layout and its writer are in :mod:`draw_studio.curves_csv` (a validation row's wall time is
that of the training rows around its step: a log stores none for it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .curve_meaning import log_kind
from .curves_csv import CSV_COLUMNS, VALID_COLUMNS, ExportCancelled, write_curves_csv  # noqa: F401 - the CSV's API
from .errors import DrawStudioError
from .export import write_gif
from .images import tile, upscale
from .training_log import TrainingLog
from .training_log_reader import read_training_log
from .training_snapshots import Snapshots, read_snapshots

PADDING = 1
LABEL_HEIGHT = 14  # pixels of the "step N" strip above a snapshot frame


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


def export_log_csv(log_path: str | Path, out: str | Path) -> int:
    """Write every point of the training log ``log_path``'s curves to the CSV ``out``; returns the rows.

    Raises
    ------
    TrainingLogError
        The log cannot be read.
    DrawStudioError
        ``out`` cannot be written.
    """
    log = read_training_log(log_path)
    return write_curves_csv(out, *log_curves(log), kind=log_kind(log.model_config))  # a classifier's: its columns


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
