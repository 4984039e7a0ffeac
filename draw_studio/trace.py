"""Traces: everything DRAW did at every step for a few images (the :class:`Trace` type) and recording them.

The file format (HDF5) is in :mod:`draw_studio.trace_file`; choosing the input images of a trace in
:mod:`draw_studio.trace_inputs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import torch

from . import SOFTWARE
from .config import ModelConfig
from .errors import DrawStudioError
from .model import DRAW
from .seeding import make_generator, mix_seed

MODES = ("reconstruct", "generate")

# Trace field -> (path in the file, axis labels). Fields absent from a trace are absent from the file.
DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "input": ("input", ("sample", "channel", "y", "x")),
    "labels": ("labels", ("sample",)),
    "source_index": ("source_index", ("sample",)),
    "canvas": ("canvas", ("sample", "step", "channel", "y", "x")),
    "read_params": ("read/params", ("sample", "step", "param")),
    "read_glimpse": ("read/glimpse", ("sample", "step", "channel", "y", "x")),
    "write_params": ("write/params", ("sample", "step", "param")),
    "write_patch": ("write/patch", ("sample", "step", "channel", "y", "x")),
    "z": ("latent/z", ("sample", "step", "latent")),
    "mu": ("latent/mu", ("sample", "step", "latent")),
    "sigma": ("latent/sigma", ("sample", "step", "latent")),
    "kl": ("kl", ("sample", "step")),
    "nll_x": ("nll_x", ("sample",)),
}
INTEGER_FIELDS = ("labels", "source_index")

Progress = Callable[[int, int], None]


def _sigmoid(values: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function, float32."""
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(values, dtype=np.float32)))).astype(np.float32)


@dataclass
class Trace:
    """One recorded run of DRAW over ``n`` images (see the module docstring).

    Attributes
    ----------
    mode : str
        ``"reconstruct"`` (the encoder saw ``input``) or ``"generate"``.
    model_config : ModelConfig
    seed : int
        Seed of the noise (batch b uses ``mix_seed(seed, b)``).
    checkpoint_sha256, created, software : str
    canvas : ndarray, shape (n, T+1, C, H, W), float32
        c_0 .. c_T before the output non-linearity.
    z : ndarray, shape (n, T, Z)
    input : ndarray, shape (n, C, H, W), or None
    labels, source_index : ndarray, shape (n,), int64, or None
        Class labels; index of each image in its split.
    read_params, write_params : ndarray, shape (n, T, 5), or None
        Columns ``gx, gy, delta, sigma2, gamma`` in 1-based pixel units.
    read_glimpse : ndarray, shape (n, T, 2C, Nr, Nr), or None
    write_patch : ndarray, shape (n, T, C, Nw, Nw), or None
    mu, sigma : ndarray, shape (n, T, Z), or None
    kl : ndarray, shape (n, T), or None
    nll_x : ndarray, shape (n,), or None
    batch_size : int
        Images per forward pass (the noise depends on it); 0 if unknown.
    source : str
        Where the images came from, e.g. ``"mnist/test"``, ``"files"`` or ``"prior"``.
    """

    mode: str
    model_config: ModelConfig
    seed: int
    checkpoint_sha256: str
    created: str
    software: str
    canvas: np.ndarray
    z: np.ndarray
    input: np.ndarray | None = None
    labels: np.ndarray | None = None
    read_params: np.ndarray | None = None
    read_glimpse: np.ndarray | None = None
    write_params: np.ndarray | None = None
    write_patch: np.ndarray | None = None
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None
    kl: np.ndarray | None = None
    nll_x: np.ndarray | None = None
    source_index: np.ndarray | None = None
    batch_size: int = 0
    source: str = ""

    @property
    def n(self) -> int:
        """Number of images."""
        return int(self.canvas.shape[0])

    @property
    def steps(self) -> int:
        """Number of steps T (the canvas holds T + 1 states)."""
        return int(self.canvas.shape[1]) - 1

    def mean_images(self, step: int) -> np.ndarray:
        """The mean image sigmoid(c_step), shape (n, C, H, W), for step 0..T.

        Both likelihoods have mean sigmoid(c): the Bernoulli probabilities,
        and the centre of the discretised logistic.
        """
        return _sigmoid(self.canvas[:, step])

    def increment(self, step: int) -> np.ndarray:
        """What step ``step`` (1..T, as in the paper) wrote: c_step - c_{step-1}, shape (n, C, H, W).

        Raises
        ------
        ValueError
            For step 0 (the initial canvas; no step wrote it) or beyond T.
        """
        if not 1 <= step <= self.steps:
            raise ValueError(f"step {step} wrote nothing: steps that write are 1..{self.steps}")
        return self.canvas[:, step] - self.canvas[:, step - 1]

    def arrays(self) -> dict[str, np.ndarray]:
        """The datasets this trace holds, by field name."""
        return {name: getattr(self, name) for name in DATASETS if getattr(self, name) is not None}


# ---------------------------------------------------------------------- recording
def record_batches(model: DRAW, images: np.ndarray | None, generate_n: int | None, seed: int,
                   batch_size: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Record the model batch by batch; yields (first image index, arrays of that batch)."""
    if (images is None) == (generate_n is None):
        raise DrawStudioError("give either images to reconstruct or a number of images to generate, not both")
    if batch_size < 1:
        raise DrawStudioError(f"batch size must be at least 1, got {batch_size}")
    device = next(model.parameters()).device
    total = len(images) if images is not None else int(generate_n)
    if total < 1:
        raise DrawStudioError("nothing to trace: ask for at least one image")
    was_training = model.training
    model.eval()
    try:
        for index, start in enumerate(range(0, total, batch_size)):
            size = min(batch_size, total - start)
            generator = make_generator(device, mix_seed(seed, index))
            with torch.inference_mode():
                if images is None:
                    _, record = model.generate(size, generator=generator, record=True)
                    extra = {}
                else:
                    x = torch.as_tensor(images[start:start + size], dtype=torch.float32).to(device)  # (b, C, H, W)
                    terms, record = model(x, generator=generator, record=True)
                    extra = {"input": x, "nll_x": terms.nll_x}
            arrays = {name: value.float().cpu().numpy() for name, value in {**record, **extra}.items()
                      if name in DATASETS}
            yield start, arrays
    finally:
        model.train(was_training)


def check_trace_images(model: DRAW, images: np.ndarray | None) -> np.ndarray | None:
    """``images`` (n, C, H, W) as float32 if they fit ``model``, None for a generated trace.

    Raises
    ------
    DrawStudioError
        Images of another shape than the model's.
    """
    if images is None:
        return None
    images = np.asarray(images, dtype=np.float32)
    cfg = model.config
    if images.ndim != 4 or images.shape[1:] != (cfg.channels, cfg.height, cfg.width):
        raise DrawStudioError(f"images of shape {images.shape} do not fit this model, which expects "
                              f"(n, {cfg.channels}, {cfg.height}, {cfg.width})")
    return images


def trace_header(model: DRAW, images, seed, batch_size, checkpoint_sha256, source) -> dict:
    """The root attributes of a trace of ``model`` over ``images`` (None: generated)."""
    return {"mode": "generate" if images is None else "reconstruct", "model_config": model.config,
            "seed": int(seed), "checkpoint_sha256": checkpoint_sha256,
            "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "software": SOFTWARE,
            "batch_size": int(batch_size), "source": source or ("prior" if images is None else "")}


@dataclass(frozen=True)
class TraceInputs:
    """What a trace is recorded from: images (or a number of prior samples), where they came from, the noise seed.

    Build one with ``TraceInputs(images=...)`` or :meth:`prior`; ``draw-studio trace`` and
    the window choose them with :func:`draw_studio.trace_inputs.select_inputs`.

    Attributes
    ----------
    images : ndarray, shape (n, C, H, W), optional
        Float images in [0, 1] as the model sees them (binary for a Bernoulli
        model). Gives a ``"reconstruct"`` trace.
    labels, source_index : ndarray, shape (n,), optional
        The images' classes and their indices in ``source``.
    generate_n : int, optional
        Number of samples from the prior, instead of ``images``.
    source : str
        Where the images came from (``"mnist/test"``, ``"files"``, ``"prior"``).
    seed : int
        Noise of batch b comes from ``make_generator(device, mix_seed(seed, b))``.
    """

    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    source_index: np.ndarray | None = None
    generate_n: int | None = None
    source: str = ""
    seed: int = 0

    @classmethod
    def prior(cls, count: int, seed: int = 0) -> TraceInputs:
        """``count`` samples from the prior."""
        return cls(generate_n=int(count), source="prior", seed=seed)

    @property
    def count(self) -> int:
        """How many images the trace will hold."""
        return len(self.images) if self.images is not None else int(self.generate_n or 0)

    def extra_fields(self) -> dict[str, np.ndarray]:
        """``labels`` and ``source_index`` (those given) as int64 arrays, shape (n,)."""
        return {name: np.asarray(value, dtype=np.int64)
                for name, value in (("labels", self.labels), ("source_index", self.source_index))
                if value is not None}


def record_trace(model: DRAW, inputs: TraceInputs, batch_size: int = 100, checkpoint_sha256: str = "") -> Trace:
    """Run the model over ``inputs`` and keep every step in memory.

    Parameters
    ----------
    model : DRAW
    inputs : TraceInputs
        The images (or number of prior samples), their origin and the noise seed.
    batch_size : int
        Images per forward pass.
    checkpoint_sha256 : str
        Recorded in the trace.

    Returns
    -------
    Trace
    """
    images = check_trace_images(model, inputs.images)
    parts: dict[str, list[np.ndarray]] = {}
    for _, arrays in record_batches(model, images, inputs.generate_n, inputs.seed, batch_size):
        for name, value in arrays.items():
            parts.setdefault(name, []).append(value)
    fields = {name: np.concatenate(values) for name, values in parts.items()}
    header = trace_header(model, images, inputs.seed, batch_size, checkpoint_sha256, inputs.source)
    return Trace(**header, **fields, **inputs.extra_fields())
