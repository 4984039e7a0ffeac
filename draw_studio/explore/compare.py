"""Two models on the same images: each model's trace, its bound and KL per step, and their difference.

Both models reconstruct exactly the same inputs: the first images of a split as ``draw-studio
eval --limit N`` feeds them (the split's fixed binarisation for a Bernoulli model), with the noise
``eval`` uses (batches of 500, batch b from ``mix_seed(seed, b)``). So each model's mean bound here
is its own ``eval`` bound on those images, and image i's figures are those of its own trace
(:func:`draw_studio.trace.record_trace`). Any two checkpoints of the same image size and likelihood
compare; their number of steps T may differ.

``draw-studio explore compare A.ckpt B.ckpt`` is the command line; the window's Compare dock shows
the same :class:`Comparison`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checkpoint import SHIPPED_MODELS
from ..config import ModelConfig
from ..data import ImageSet, load_split, model_inputs
from ..errors import DrawStudioError
from ..files import same_file
from ..model import DRAW
from ..trace import Trace, TraceInputs, record_trace
from ..training_log import default_log_path
from ..training_snapshots import Snapshots, read_snapshots
from .reconstruct import EVAL_BATCH
from .result import ExploreResult, write_result
from .source import load_checkpoint

SHIPPED_ATTENTION = SHIPPED_MODELS / "mnist-attention.ckpt"
SHIPPED_NO_ATTENTION = SHIPPED_MODELS / "mnist-noattention.ckpt"
SIDES = ("A", "B")


def image_size(config: ModelConfig) -> str:
    """A model's image size in words, e.g. ``28x28, 1 channel``."""
    channels = f"{config.channels} channel" + ("s" if config.channels != 1 else "")
    return f"{config.width}x{config.height}, {channels}"


def check_comparable(config_a: ModelConfig, config_b: ModelConfig, name_a: str = "A", name_b: str = "B") -> None:
    """Refuse two models that cannot see the same inputs.

    Raises
    ------
    DrawStudioError
        Their image sizes differ (both named), or their likelihoods (so their inputs would differ).
    """
    size_a, size_b = image_size(config_a), image_size(config_b)
    if size_a != size_b:
        raise DrawStudioError(f"cannot compare {name_a} ({size_a} images) with {name_b} ({size_b} images): "
                              "choose two checkpoints of the same image size")
    if config_a.likelihood != config_b.likelihood:
        raise DrawStudioError(f"cannot compare {name_a} ({config_a.likelihood} likelihood) with {name_b} "
                              f"({config_b.likelihood} likelihood): they see different inputs and their bounds are "
                              "not in the same units; choose two checkpoints of the same likelihood")


def shipped_counterpart(config: ModelConfig) -> Path | None:
    """The shipped model to compare a model with: the no-attention one for a model with attention, else the
    attention one; None when that file is absent or draws another image size."""
    attention = config.read_attention or config.write_attention
    path = SHIPPED_NO_ATTENTION if attention else SHIPPED_ATTENTION
    if not path.is_file() or image_size(config) != "28x28, 1 channel":
        return None
    return path


@dataclass
class Comparison:
    """Two models' traces of the same images, and their bounds.

    Attributes
    ----------
    trace_a, trace_b : Trace
        Reconstruction traces of the same ``input`` (n images), each model's own.
    name_a, name_b : str
        How the models are called (e.g. their checkpoint files).
    binarization : str
        How the inputs were binarised, in words (e.g. ``fixed, seed 150204623``).
    bounds_a, bounds_b : ndarray, shape (n,), float64
        Each model's bound L = L_x + L_z per image, in nats (computed from the traces).
    difference : ndarray, shape (n,), float64
        ``bounds_b - bounds_a``: above 0 where model B finds the image more surprising.
    kl_a, kl_b : ndarray, shapes (n, T_a) and (n, T_b)
        Each model's KL per step, in nats.
    """

    trace_a: Trace
    trace_b: Trace
    name_a: str = "A"
    name_b: str = "B"
    binarization: str = ""
    bounds_a: np.ndarray = field(init=False)
    bounds_b: np.ndarray = field(init=False)
    difference: np.ndarray = field(init=False)
    kl_a: np.ndarray = field(init=False)
    kl_b: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        for side, trace in zip(SIDES, (self.trace_a, self.trace_b)):
            if trace.mode != "reconstruct" or trace.kl is None or trace.nll_x is None:
                raise DrawStudioError(f"trace {side} holds no reconstruction (no KL): a comparison needs input images")
        if self.trace_a.input.shape != self.trace_b.input.shape or not np.array_equal(self.trace_a.input,
                                                                                       self.trace_b.input):
            raise DrawStudioError("the two traces are not of the same input images: record both on the same inputs")
        self.kl_a = self.trace_a.kl  # (n, T_a)
        self.kl_b = self.trace_b.kl  # (n, T_b)
        self.bounds_a = self.trace_a.nll_x.astype(np.float64) + self.kl_a.astype(np.float64).sum(axis=1)  # (n,)
        self.bounds_b = self.trace_b.nll_x.astype(np.float64) + self.kl_b.astype(np.float64).sum(axis=1)  # (n,)
        self.difference = self.bounds_b - self.bounds_a  # (n,)

    @property
    def n(self) -> int:
        """Number of images compared."""
        return self.trace_a.n

    @property
    def mean_bound_a(self) -> float:
        return float(np.mean(self.bounds_a))

    @property
    def mean_bound_b(self) -> float:
        return float(np.mean(self.bounds_b))

    @property
    def mean_difference(self) -> float:
        """Mean of ``bounds_b - bounds_a`` (nats)."""
        return float(np.mean(self.difference))

    @property
    def source(self) -> str:
        """Where the images came from, e.g. ``mnist/test``."""
        return self.trace_a.source

    def summary(self, per_image: bool = True) -> dict:
        """The figures as a JSON-able dict: the means, and with ``per_image`` every image's."""
        out = {"images": self.n, "source": self.source, "binarization": self.binarization, "seed": self.trace_a.seed,
               "mean_bound_a": self.mean_bound_a, "mean_bound_b": self.mean_bound_b,
               "mean_difference": self.mean_difference, "b_lower_on": int(np.sum(self.difference < 0))}
        for side, trace in zip(SIDES, (self.trace_a, self.trace_b)):
            out[side.lower()] = {"name": getattr(self, f"name_{side.lower()}"), "sha256": trace.checkpoint_sha256,
                                 "steps": trace.steps}
        if per_image:
            if self.trace_a.source_index is not None:
                out["source_index"] = self.trace_a.source_index.tolist()
            out.update(bounds_a=self.bounds_a.tolist(), bounds_b=self.bounds_b.tolist(),
                       difference=self.difference.tolist(), kl_a=self.kl_a.tolist(), kl_b=self.kl_b.tolist())
        return out


def split_inputs(images: ImageSet, config: ModelConfig, count: int, source: str, seed: int = 0
                 ) -> tuple[TraceInputs, str]:
    """The first ``count`` images of a split as ``draw-studio eval --limit count`` feeds them to the model.

    Parameters
    ----------
    images : ImageSet
        The whole split (uint8).
    config : ModelConfig
        Gives the likelihood (a Bernoulli model sees the split's fixed binarisation).
    source : str
        ``"<dataset>/<split>"``.
    seed : int
        Seed of the posterior noise.

    Returns
    -------
    inputs : TraceInputs
    binarization : str
        In words, e.g. ``fixed, seed 150204623``.

    Raises
    ------
    DrawStudioError
        ``count`` outside 1..len(images), or images of another size than the model's.
    """
    if images.shape != (config.channels, config.height, config.width):
        raise DrawStudioError(f"{source} images are {images.shape}, the models draw "
                              f"{(config.channels, config.height, config.width)}; use the dataset they were "
                              "trained on")
    if not 1 <= int(count) <= len(images):
        raise DrawStudioError(f"--images must be between 1 and {len(images)} ({source}), got {count}")
    chosen = images.subset(slice(0, int(count)))  # the fixed binarisation of a prefix is the prefix of the split's
    pixels, binarization, binarization_seed = model_inputs(chosen, config.likelihood)
    words = binarization + (f", seed {binarization_seed}" if binarization_seed is not None else "")
    inputs = TraceInputs(images=pixels, labels=chosen.labels, source_index=np.arange(int(count), dtype=np.int64),
                         source=source, seed=int(seed))
    return inputs, words


def compare_models(model_a: DRAW, model_b: DRAW, inputs: TraceInputs, name_a: str = "A", name_b: str = "B",
                   sha_a: str = "", sha_b: str = "", binarization: str = "",
                   batch_size: int = EVAL_BATCH) -> Comparison:
    """Record both models' traces of ``inputs`` (the same images, the same noise seed) and compare them.

    Parameters
    ----------
    model_a, model_b : DRAW
        Of the same image size and likelihood (:func:`check_comparable`).
    inputs : TraceInputs
        Images to reconstruct (prepared as the models see them, e.g. by :func:`split_inputs`).
    sha_a, sha_b : str
        Checkpoint SHA-256s, recorded in the traces.
    batch_size : int
        Images per forward pass: with ``draw-studio eval``'s 500 (default) and seed, each model's
        per-image noise is ``eval``'s, so the mean bounds are ``eval``'s on these images.

    Returns
    -------
    Comparison
    """
    check_comparable(model_a.config, model_b.config, name_a, name_b)
    if inputs.images is None:
        raise DrawStudioError("a comparison needs input images: the bound of a sample from the prior is not defined")
    trace_a = record_trace(model_a, inputs, batch_size=batch_size, checkpoint_sha256=sha_a)
    trace_b = record_trace(model_b, inputs, batch_size=batch_size, checkpoint_sha256=sha_b)
    return Comparison(trace_a, trace_b, name_a, name_b, binarization)


def compare_checkpoints(checkpoint_a: str | Path, checkpoint_b: str | Path, images: int = 16,
                        data_dir: str | Path | None = None, dataset: str | None = None, split: str = "test",
                        seed: int = 0, device: str = "cpu", download: bool = True) -> Comparison:
    """Load two checkpoints and compare them on the first ``images`` images of ``split``.

    The dataset is model A's (or ``dataset``); see :func:`split_inputs` and :func:`compare_models`.
    """
    loaded_a = load_checkpoint(checkpoint_a, device)
    loaded_b = load_checkpoint(checkpoint_b, device)
    name_a, name_b = Path(checkpoint_a).name, Path(checkpoint_b).name
    if name_a == name_b:
        name_a, name_b = str(checkpoint_a), str(checkpoint_b)
    check_comparable(loaded_a.model.config, loaded_b.model.config, name_a, name_b)
    dataset = dataset or loaded_a.train_config.dataset
    pixels = load_split(dataset, split, data_dir, loaded_a.train_config.validation_size, download)
    inputs, binarization = split_inputs(pixels, loaded_a.model.config, images, f"{dataset}/{split}", seed)
    return compare_models(loaded_a.model, loaded_b.model, inputs, name_a, name_b, loaded_a.sha256, loaded_b.sha256,
                          binarization)


def check_trace_outputs(path_a: str | Path, path_b: str | Path) -> None:
    """Refuse one file named for both models' traces (before anything is computed)."""
    if same_file(Path(path_a).expanduser(), Path(path_b).expanduser()):
        raise DrawStudioError(f"--trace-out names {path_a} for both models: give two files, one per model")


def write_comparison(comparison: Comparison, path_a: str | Path, path_b: str | Path) -> None:
    """Write each model's trace as an explore trace file (``intervention`` tool ``compare``), each atomically.

    Each file is an ordinary trace of its own model (every trace reader opens it); its ``intervention``
    names its side (``A`` or ``B``), the other model and both models' bounds on the images.

    Raises
    ------
    DrawStudioError
        ``path_a`` and ``path_b`` are the same file.
    """
    check_trace_outputs(path_a, path_b)
    for side, trace, path, other in (("A", comparison.trace_a, path_a, "B"), ("B", comparison.trace_b, path_b, "A")):
        own, theirs = side.lower(), other.lower()
        intervention = {"tool": "compare", "side": side, "model": getattr(comparison, f"name_{own}"),
                        "other_model": getattr(comparison, f"name_{theirs}"),
                        "other_sha256": getattr(comparison, f"trace_{theirs}").checkpoint_sha256,
                        "binarization": comparison.binarization,
                        "bounds": getattr(comparison, f"bounds_{own}"),
                        "other_bounds": getattr(comparison, f"bounds_{theirs}"),
                        "mean_bound": float(np.mean(getattr(comparison, f"bounds_{own}"))),
                        "other_mean_bound": float(np.mean(getattr(comparison, f"bounds_{theirs}")))}
        write_result(path, ExploreResult(trace, intervention))


# ---------------------------------------------------------------------- the two runs' training snapshots
def snapshots_beside(checkpoint: str | Path) -> tuple[Snapshots, str]:
    """The snapshots of the training log beside ``checkpoint`` (X.ckpt -> X.log.h5), and why there are none.

    Returns
    -------
    snapshots : Snapshots
        Empty when there is no log, or a log without snapshots.
    why : str
        "" when there are snapshots, else why not (in words, naming the file).

    Raises
    ------
    TrainingLogError
        The log is there but damaged.
    """
    log = default_log_path(checkpoint)
    if not log.is_file():
        return Snapshots.empty(), f"no training log beside {Path(checkpoint).name} ({log.name})"
    snapshots = read_snapshots(log)
    return snapshots, "" if len(snapshots) else f"{log.name} holds no snapshots (a run before snapshots, or " \
        "snapshot_every 0)"


def snapshot_steps(first: Snapshots, second: Snapshots) -> np.ndarray:
    """Every training step at which either run took a snapshot (sorted, int64): a slider over two runs, each
    showing its last snapshot at or before the step (:meth:`Snapshots.index_at`)."""
    return np.union1d(first.step, second.step).astype(np.int64)
