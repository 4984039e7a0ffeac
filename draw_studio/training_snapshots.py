"""Snapshots in the training log: the model learning to draw.

Every ``snapshot_every`` training steps (``TrainConfig.snapshot_every``, default 1,000; 0: never), at
step 0 of a new run and where a session of training ends, the trainer records in its log the mean
images sigmoid(c_T) of a fixed set of prior samples (always the same noise) and of reconstructions
of fixed validation images, as uint8. The layout (group ``snapshots/``) is in
``docs/file-formats.md``; :func:`read_snapshots` reads it (an empty :class:`Snapshots` for a log
without it).

The log writer (``draw_studio.training_log.TrainingLogWriter``) holds a :class:`SnapshotSeries`,
continued like its history rows: on resume from step s, only snapshots of steps up to s are kept,
so the steps stay strictly increasing, without duplicates or gaps. :class:`SnapshotTaker` is what
the trainer calls between steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .errors import FileFormatError, TrainingLogError, first_line
from .hdf5_file import read_image
from .images import to_uint8
from .model import DRAW
from .seeding import make_generator, mix_seed

if TYPE_CHECKING:
    from .training_log import TrainingLogWriter

GROUP = "snapshots"
SAMPLES = 16  # prior samples per snapshot
RECONSTRUCTIONS = 8  # validation images reconstructed per snapshot (the first ones of the split)
SNAPSHOT_SEED = 0  # samples: DRAW.generate(SAMPLES, make_generator(device, SNAPSHOT_SEED)), the same in every run
LOG_FORMAT = "draw-studio/training-log"
FIX = "use an intact copy of the log"


@dataclass
class Snapshots:
    """The snapshots of one training log.

    Attributes
    ----------
    step : ndarray, shape (n,), int64
        Optimiser step of each snapshot, strictly increasing.
    samples : ndarray, shape (n, S, C, H, W), uint8
        Mean images sigmoid(c_T) x 255 of the S prior samples (same noise at every step).
    reconstructions : ndarray, shape (n, R, C, H, W), uint8
        Mean images sigmoid(c_T) x 255 of the reconstructions of :attr:`inputs`.
    inputs : ndarray, shape (R, C, H, W), uint8
        The validation images reconstructed, as the model saw them, x 255.
    seed : int
        Seed of the samples' noise (``draw-studio sample CKPT -n S --seed SEED`` on the checkpoint of a
        step draws the same samples, on the same kind of device); -1 when there are none.
    """

    step: np.ndarray
    samples: np.ndarray
    reconstructions: np.ndarray
    inputs: np.ndarray
    seed: int = -1

    @classmethod
    def empty(cls) -> Snapshots:
        """No snapshot (a log written before snapshots, or by a run with ``snapshot_every`` 0)."""
        none = np.zeros((0, 0, 0, 0, 0), np.uint8)
        return cls(np.zeros(0, np.int64), none, none.copy(), np.zeros((0, 0, 0, 0), np.uint8))

    def __len__(self) -> int:
        return len(self.step)

    def index_at(self, step: int) -> int:
        """Index of the last snapshot taken at or before ``step`` (0 when ``step`` is before the first).

        Raises
        ------
        IndexError
            There is no snapshot.
        """
        if not len(self):
            raise IndexError("no snapshot")
        return max(int(np.searchsorted(self.step, step, side="right")) - 1, 0)


class SnapshotSeries:
    """The snapshots a log writer holds in memory and writes with each flush."""

    def __init__(self) -> None:
        self._steps: list[int] = []
        self._samples: list[np.ndarray] = []  # each (S, C, H, W) uint8
        self._reconstructions: list[np.ndarray] = []  # each (R, C, H, W) uint8
        self.inputs: np.ndarray | None = None  # (R, C, H, W) uint8
        self.seed = -1

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def last_step(self) -> int | None:
        """Step of the latest snapshot held, or None."""
        return self._steps[-1] if self._steps else None

    def keep_until(self, old: Snapshots, step: int | None = None) -> None:
        """Hold ``old``'s snapshots of steps up to ``step`` (a resumed run's log going on from ``step``;
        None: all of them)."""
        keep = np.flatnonzero(old.step <= step) if step is not None else np.arange(len(old))
        self._steps = [int(s) for s in old.step[keep]]
        self._samples = list(old.samples[keep])
        self._reconstructions = list(old.reconstructions[keep])
        self.inputs, self.seed = (old.inputs, old.seed) if len(keep) else (None, -1)

    def start(self, inputs: np.ndarray, seed: int, sample_shape: tuple[int, ...]) -> str | None:
        """Set what this run's snapshots show; drops held ones that show something else.

        Returns
        -------
        str or None
            A notice when held snapshots were dropped (e.g. a run that goes on with other validation data).
        """
        dropped = None
        if self._steps and (self.inputs is None or self.inputs.shape != inputs.shape
                            or not np.array_equal(self.inputs, inputs) or self.seed != seed
                            or self._samples[0].shape != sample_shape):
            dropped = (f"the log's {len(self._steps)} earlier snapshots show other images or noise than this run's: "
                       "they are dropped and this run's snapshots start afresh")
            self._steps, self._samples, self._reconstructions = [], [], []
        self.inputs, self.seed = inputs, int(seed)
        return dropped

    def add(self, step: int, samples: np.ndarray, reconstructions: np.ndarray) -> None:
        """Append the snapshot of ``step`` (after the last one held)."""
        if self._steps and step <= self._steps[-1]:
            raise ValueError(f"snapshot of step {step} after one of step {self._steps[-1]}")
        self._steps.append(int(step))
        self._samples.append(np.asarray(samples, np.uint8))
        self._reconstructions.append(np.asarray(reconstructions, np.uint8))

    def snapshots(self) -> Snapshots:
        """What is held, as :class:`Snapshots`."""
        if not self._steps:
            return Snapshots.empty()
        return Snapshots(np.asarray(self._steps, np.int64), np.stack(self._samples),
                         np.stack(self._reconstructions), self.inputs, self.seed)

    def write(self, f) -> None:
        """Write the group ``snapshots/`` into the open HDF5 file ``f`` (nothing when none is held)."""
        if not self._steps:
            return
        held = self.snapshots()
        group = f.create_group(GROUP)
        group.attrs["seed"] = np.int64(held.seed)
        group.attrs["to_image"] = "sigmoid"
        group.create_dataset("step", data=held.step, maxshape=(None,), chunks=(1024,), fillvalue=-1)
        for name in ("samples", "reconstructions"):
            images = getattr(held, name)  # (n, k, C, H, W)
            group.create_dataset(name, data=images, maxshape=(None, *images.shape[1:]),
                                 chunks=(1, *images.shape[1:]), compression="gzip", compression_opts=4)
        group.create_dataset("inputs", data=held.inputs, compression="gzip", compression_opts=4)
        for name, labels in (("samples", ("snapshot", "sample")), ("reconstructions", ("snapshot", "image")),
                             ("inputs", ("image",))):
            for axis, label in enumerate((*labels, "channel", "y", "x")):
                group[name].dims[axis].label = label


class SnapshotTaker:
    """Takes a run's snapshots into its log writer when they are due.

    Parameters
    ----------
    model : DRAW
        The model being trained (put in eval mode for a snapshot, then back).
    valid_pixels : Tensor, shape (n, C, H, W)
        The validation images as the model sees them, in [0, 1]; the first
        :data:`RECONSTRUCTIONS` are reconstructed.
    every : int
        A snapshot every this many steps (0: none at all).
    log : TrainingLogWriter
        Receives the snapshots (``append_snapshot``) and holds those of earlier sessions.

    Attributes
    ----------
    notices : list of str
        What the user should know (earlier snapshots dropped).
    """

    def __init__(self, model: DRAW, valid_pixels: torch.Tensor, every: int, log: TrainingLogWriter) -> None:
        self.model, self.every, self.log = model, int(every), log
        self.inputs = torch.as_tensor(valid_pixels[:RECONSTRUCTIONS]).float()  # (R, C, H, W)
        cfg = model.config
        notice = log.snapshots.start(to_uint8(self.inputs.numpy()), SNAPSHOT_SEED,
                                     (SAMPLES, cfg.channels, cfg.height, cfg.width))
        self.notices = [notice] if notice else []

    def due(self, step: int, edge: bool = False) -> bool:
        """Whether a snapshot of ``step`` is due: a multiple of ``every``, or ``edge`` (step 0 of a new run,
        the end of a session), and none of that step or later held yet."""
        held = self.log.snapshots.last_step
        return self.every > 0 and (held is None or step > held) and (edge or step % self.every == 0)

    def maybe(self, step: int, edge: bool = False) -> bool:
        """Take the snapshot of ``step`` if :meth:`due`; returns whether one was taken."""
        if not self.due(step, edge):
            return False
        samples, reconstructions = take_snapshot(self.model, self.inputs)
        self.log.append_snapshot(step, samples, reconstructions)
        return True


@torch.inference_mode()
def take_snapshot(model: DRAW, inputs: torch.Tensor, samples: int = SAMPLES,
                  seed: int = SNAPSHOT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The mean images of ``samples`` prior samples and of the reconstructions of ``inputs``, as uint8.

    Parameters
    ----------
    model : DRAW
    inputs : Tensor, shape (R, C, H, W)
        Images in [0, 1] as the model sees them (binary for a Bernoulli model).
    samples : int
    seed : int
        The samples' noise is ``make_generator(device, seed)`` (as ``draw-studio sample --seed``), the
        reconstructions' ``make_generator(device, mix_seed(seed, 1))``.

    Returns
    -------
    samples : ndarray, shape (samples, C, H, W), uint8
    reconstructions : ndarray, shape (R, C, H, W), uint8
        sigmoid(c_T) x 255, rounded; a non-finite value (a diverged model) is 0.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        drawn, _ = model.generate(samples, generator=make_generator(device, seed))  # (S, C, H, W)
        _, record = model(inputs.to(device), generator=make_generator(device, mix_seed(seed, 1)), record=True)
        rebuilt = torch.sigmoid(record["canvas"][:, -1])  # (R, C, H, W): sigmoid(c_T)
    finally:
        model.train(was_training)
    return to_uint8(drawn.float().cpu().numpy()), to_uint8(rebuilt.float().cpu().numpy())


def read_snapshots(path: str | Path) -> Snapshots:
    """The snapshots of the training log ``path`` (empty for a log without them).

    Safe while a run writes the log (the file is read from a whole copy of its bytes).

    Raises
    ------
    TrainingLogError
        Not a training log, or damaged snapshots.
    """
    path = Path(path)
    if not path.is_file():
        raise TrainingLogError(f"training log {path} does not exist; check the path")
    image = read_image(path, "training log", FIX, error=TrainingLogError)
    try:
        f = image.open()
    except (OSError, RuntimeError, ValueError) as exc:
        raise TrainingLogError(f"{path} cannot be opened as a training log ({first_line(exc)}); {FIX}") from None
    with f:
        fmt = f.attrs.get("format", "")
        if (fmt.decode() if isinstance(fmt, bytes) else str(fmt)) != LOG_FORMAT:
            raise TrainingLogError(f"{path} is not a DRAW Studio training log; pass the log written by "
                                   "draw-studio train")
        return snapshots_in(f, path)


def snapshots_in(f, path: str | Path = "the log") -> Snapshots:
    """The snapshots of an open training-log HDF5 file ``f`` (empty without the group).

    Rows are cut to those every dataset holds in full.

    Raises
    ------
    TrainingLogError
        Damaged snapshots (shapes that do not fit, steps out of order).
    """
    if GROUP not in f:
        return Snapshots.empty()
    try:
        group = f[GROUP]
        step = group["step"][()].astype(np.int64)
        samples, reconstructions = group["samples"], group["reconstructions"]
        inputs = group["inputs"][()].astype(np.uint8)
        count = min(len(step), len(samples), len(reconstructions))
        missing = np.flatnonzero(step[:count] < 0)
        count = int(missing[0]) if len(missing) else count
        held = Snapshots(step[:count], samples[:count].astype(np.uint8),
                         reconstructions[:count].astype(np.uint8), inputs, int(group.attrs.get("seed", -1)))
    except (KeyError, ValueError, OSError, TypeError, RuntimeError, FileFormatError) as exc:
        raise TrainingLogError(f"{path} holds damaged snapshots ({first_line(exc)}); {FIX}") from None
    if (held.samples.ndim != 5 or held.reconstructions.ndim != 5 or held.inputs.ndim != 4
            or held.reconstructions.shape[1:] != held.inputs.shape
            or held.samples.shape[2:] != held.inputs.shape[1:]):
        raise TrainingLogError(f"{path} holds damaged snapshots (their shapes do not fit together); {FIX}")
    if (np.diff(held.step) <= 0).any():
        raise TrainingLogError(f"{path} holds damaged snapshots (steps out of order); {FIX}")
    return held
