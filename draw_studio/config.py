"""Configurations as dataclasses, and the named presets.

A checkpoint stores ``ModelConfig`` and ``TrainConfig`` as plain dictionaries,
so a model can be rebuilt from the file alone.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from .errors import DrawStudioError

LIKELIHOODS = ("bernoulli", "logistic")


class _JsonConfig:
    """Serialisation shared by the configuration dataclasses."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)



@dataclass(frozen=True)
class ModelConfig(_JsonConfig):
    """Shape and sizes of one DRAW model.

    Attributes
    ----------
    height, width, channels : int
        Image size (B x A in the paper's notation) and 1 (grey) or 3 (colour).
    steps : int
        Number of glimpses T.
    enc_size, dec_size : int
        Units of the encoder and decoder LSTMs.
    z_size : int
        Latent size per step.
    read_attention, write_attention : bool
        Gaussian attention (eqs 27 and 29) or the whole image (eqs 17 and 18).
    read_n, write_n : int
        Grid sizes N of the read and write filterbanks.
    likelihood : str
        ``"bernoulli"`` for binary pixels (logits c_T), or ``"logistic"``: a
        discretised logistic over 256 grey levels per channel, mean
        sigmoid(c_T) and a learned scale per channel, a proper likelihood for
        8-bit images whose bound is reported in bits/dim.
    learned_init : bool
        Learn c_0, h_enc_0 and h_dec_0 as biases (section 2 of the paper).
    """

    height: int = 28
    width: int = 28
    channels: int = 1
    steps: int = 64
    enc_size: int = 256
    dec_size: int = 256
    z_size: int = 100
    read_attention: bool = True
    write_attention: bool = True
    read_n: int = 2
    write_n: int = 5
    likelihood: str = "bernoulli"
    learned_init: bool = True

    def __post_init__(self) -> None:
        for name in ("height", "width", "steps", "enc_size", "dec_size", "z_size", "read_n", "write_n"):
            if int(getattr(self, name)) < 1:
                raise DrawStudioError(f"model setting {name} must be at least 1, got {getattr(self, name)}")
        if self.channels not in (1, 3):
            raise DrawStudioError(f"images must have 1 or 3 channels, got {self.channels}")
        if self.likelihood not in LIKELIHOODS:
            raise DrawStudioError(f"unknown likelihood {self.likelihood!r}; use one of {', '.join(LIKELIHOODS)}")

    def with_image_shape(self, channels: int, height: int, width: int) -> "ModelConfig":
        """Return a copy sized for images of shape (channels, height, width)."""
        return dataclasses.replace(self, channels=channels, height=height, width=width)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise DrawStudioError(f"unknown model settings {sorted(unknown)}: the file was written by a newer DRAW Studio")
        return cls(**values)


PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig(_JsonConfig):
    """How a model is trained: data, optimiser and schedule.

    Attributes
    ----------
    dataset : str
        Dataset name (see ``draw_studio.data.DATASETS``).
    binarization : str
        ``"dynamic"`` (fresh Bernoulli draw each time an image is used),
        ``"fixed"`` (one draw with ``binarize_seed``) or ``"none"``.
    steps : int
        Total optimiser steps; ``epochs`` (if > 0) overrides it.
    lr_schedule : str
        ``"constant"``, ``"cosine"`` (to ``lr * lr_min_factor``) or ``"step"``
        (times ``lr_decay`` every ``lr_decay_every`` steps).
    precision : str
        ``"fp32"`` (default; the fast path, exactly the paper's equations) or
        ``"bf16"``: autograd through ``DRAW.forward`` under bfloat16 autocast
        (matrix products in bf16: for GPUs with bf16 units; the numbers differ
        from fp32 by bf16 rounding).
    """

    preset: str = "mnist-paper"
    dataset: str = "mnist"
    binarization: str = "dynamic"
    batch_size: int = 64
    steps: int = 1000
    epochs: float = 0.0
    lr: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    grad_clip: float = 10.0
    lr_schedule: str = "constant"
    lr_min_factor: float = 0.05
    lr_decay: float = 0.5
    lr_decay_every: int = 100_000
    seed: int = 0
    validation_size: int = 10_000
    validate_every: int = 1000
    validation_limit: int = 2000
    checkpoint_every: int = 1000
    report_every: int = 10
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise DrawStudioError(f"batch size must be at least 1, got {self.batch_size}")
        if self.binarization not in ("dynamic", "fixed", "none"):
            raise DrawStudioError(f"unknown binarization {self.binarization!r}; use dynamic, fixed or none")
        if self.lr_schedule not in ("constant", "cosine", "step"):
            raise DrawStudioError(f"unknown lr schedule {self.lr_schedule!r}; use constant, cosine or step")
        if self.lr <= 0:
            raise DrawStudioError(f"learning rate must be positive, got {self.lr}")
        if self.precision not in PRECISIONS:
            raise DrawStudioError(f"unknown precision {self.precision!r}; use {' or '.join(PRECISIONS)}")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class Preset:
    """A named model configuration with the dataset it was designed for."""

    model: ModelConfig
    dataset: str
    description: str
    train_overrides: dict = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "mnist-paper": Preset(
        ModelConfig(steps=64, enc_size=256, dec_size=256, z_size=100, read_n=2, write_n=5),
        "mnist", "Table 3, MNIST generation: T=64, 256 LSTM units, z=100, read 2x2, write 5x5"),
    "mnist-noattn": Preset(
        ModelConfig(steps=64, enc_size=256, dec_size=256, z_size=100,
                    read_attention=False, write_attention=False),
        "mnist", "MNIST without attention (eqs 17-18): T=64, 256 units, z=100"),
    "two-digit-mnist": Preset(
        ModelConfig(height=60, width=60, steps=64, enc_size=256, dec_size=256, z_size=100, read_n=2, write_n=5),
        "two-digit-mnist", "Two random MNIST digits on a 60x60 canvas, MNIST settings"),
    "svhn-paper": Preset(
        ModelConfig(height=32, width=32, channels=3, steps=32, enc_size=800, dec_size=800, z_size=100,
                    read_n=12, write_n=12, likelihood="logistic"),
        "svhn", "Table 3, SVHN: T=32, 800 units, z=100, read and write 12x12 (cropped digits are 32x32)",
        {"binarization": "none"}),
    "cifar10-paper": Preset(
        ModelConfig(height=32, width=32, channels=3, steps=64, enc_size=400, dec_size=400, z_size=200,
                    read_n=5, write_n=5, likelihood="logistic"),
        "cifar10", "Table 3, CIFAR-10: T=64, 400 units, z=200, read and write 5x5",
        {"binarization": "none"}),
    "tiny": Preset(
        ModelConfig(steps=4, enc_size=16, dec_size=16, z_size=4, read_n=2, write_n=3),
        "mnist", "A few-second model for tests and smoke runs: T=4, 16 units, z=4"),
}


def get_preset(name: str) -> Preset:
    """Return the preset called ``name`` or raise a clear error listing the choices."""
    try:
        return PRESETS[name]
    except KeyError:
        raise DrawStudioError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
