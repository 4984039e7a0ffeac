"""Configurations as dataclasses, and the named presets.

A checkpoint stores ``ModelConfig`` and ``TrainConfig`` as plain dictionaries,
so a model can be rebuilt from the file alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field
from typing import ClassVar

from .errors import DrawStudioError

LIKELIHOODS = ("bernoulli", "logistic")


MAX_SEED = 2 ** 63 - 1  # what torch.manual_seed and numpy's generators accept


class _JsonConfig:
    """Serialisation shared by the configuration dataclasses."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _check_int(kind: str, name: str, value, low: int, high: int) -> None:
    """Raise if ``value`` is not a whole number (bools excluded) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DrawStudioError(f"{kind} setting {name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise DrawStudioError(f"{kind} setting {name} = {value} is outside DRAW Studio's bounds {low}..{high}")


def _check_real(kind: str, name: str, value, low: float, high: float, low_open: bool = False,
                high_open: bool = False) -> None:
    """Raise if ``value`` is not a finite real number in the interval from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise DrawStudioError(f"{kind} setting {name} must be a finite number, got {value!r}")
    if value < low or value > high or (low_open and value == low) or (high_open and value == high):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise DrawStudioError(f"{kind} setting {name} = {value:g} is outside {interval}")


def _check_choice(label: str, value, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise DrawStudioError(f"unknown {label} {value!r}; use one of {', '.join(choices)}")



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

    Notes
    -----
    A configuration outside these documented bounds is refused with one line
    naming the setting, its value and the bound, so that a crafted or damaged
    file cannot make DRAW Studio allocate or compute without limit: image
    sides 1..``MAX_IMAGE_SIDE`` (4096), T 1..``MAX_STEPS`` (1024), LSTM units
    1..``MAX_UNITS`` (16384), z 1..``MAX_LATENT`` (4096), read and write N
    1..``MAX_FILTER_N`` (256), and at most ``MAX_PARAMETERS`` (10^9) weights.
    """

    MAX_IMAGE_SIDE: ClassVar[int] = 4096
    MAX_STEPS: ClassVar[int] = 1024
    MAX_UNITS: ClassVar[int] = 16384
    MAX_LATENT: ClassVar[int] = 4096
    MAX_FILTER_N: ClassVar[int] = 256
    MAX_PARAMETERS: ClassVar[int] = 1_000_000_000

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
        bounds = {"height": self.MAX_IMAGE_SIDE, "width": self.MAX_IMAGE_SIDE, "steps": self.MAX_STEPS,
                  "enc_size": self.MAX_UNITS, "dec_size": self.MAX_UNITS, "z_size": self.MAX_LATENT,
                  "read_n": self.MAX_FILTER_N, "write_n": self.MAX_FILTER_N}
        for name, high in bounds.items():
            _check_int("model", name, getattr(self, name), 1, high)
        if isinstance(self.channels, bool) or self.channels not in (1, 3):
            raise DrawStudioError(f"images must have 1 or 3 channels, got {self.channels!r}")
        for name in ("read_attention", "write_attention", "learned_init"):
            if not isinstance(getattr(self, name), bool):
                raise DrawStudioError(f"model setting {name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.likelihood, str) or self.likelihood not in LIKELIHOODS:
            raise DrawStudioError(f"unknown likelihood {self.likelihood!r}; use one of {', '.join(LIKELIHOODS)}")
        if self.parameter_count() > self.MAX_PARAMETERS:
            raise DrawStudioError(f"this model would have {self.parameter_count():,} weights, more than DRAW "
                                  f"Studio's bound of {self.MAX_PARAMETERS:,}; use read/write attention or "
                                  "smaller images and LSTMs")

    def parameter_count(self) -> int:
        """Number of weights of ``DRAW(self)``, computed from the sizes alone (nothing is allocated)."""
        c, h, w = self.channels, self.height, self.width
        read_size = 2 * c * (self.read_n ** 2 if self.read_attention else h * w)
        write_size = c * (self.write_n ** 2 if self.write_attention else h * w)
        enc, dec, z = self.enc_size, self.dec_size, self.z_size
        lstms = 4 * enc * (read_size + dec + enc + 2) + 4 * dec * (z + dec + 2)
        heads = (5 * dec + 5) * (int(self.read_attention) + int(self.write_attention))
        return (lstms + heads + enc * 2 * z + 2 * z + (dec + 1) * write_size + c * h * w
                + 4 * max(enc, dec) + (c if self.likelihood == "logistic" else 0))

    def with_image_shape(self, channels: int, height: int, width: int) -> ModelConfig:
        """Return a copy sized for images of shape (channels, height, width)."""
        return dataclasses.replace(self, channels=channels, height=height, width=width)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise DrawStudioError(f"unknown model settings {sorted(unknown)}: the file was written by a newer "
                                  "DRAW Studio")
        return cls(**values)  # __post_init__ checks every value against the documented bounds


PRECISIONS = ("fp32", "bf16")
CLUTTER_CHOICES = ("fixed", "fresh")


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
    clutter : str
        For the attention classifier on a cluttered dataset: ``"fixed"`` (every epoch sees the
        cached training split) or ``"fresh"`` (the training digits are cluttered anew every epoch:
        new positions and distractors, drawn from the dataset's seed, ``seed`` and the epoch;
        validation and test stay the cached splits). See ``draw_studio.data.cluttered``.
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
    clutter: str = "fixed"
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
    snapshot_every: int = 1000  # samples and reconstructions in the log every N steps (0: never)

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, numbers.Integral) and not isinstance(self.batch_size, bool) \
                and self.batch_size < 1:
            raise DrawStudioError(f"batch size must be at least 1, got {self.batch_size}")
        big = 2 ** 63 - 1
        for name, low in (("batch_size", 1), ("steps", -big - 1), ("lr_decay_every", 1), ("validation_size", 1),
                          ("validate_every", 0), ("validation_limit", 1), ("checkpoint_every", 0),
                          ("report_every", 1), ("snapshot_every", 0)):
            _check_int("training", name, getattr(self, name), low, big)  # steps <= 0: the Trainer says why
        _check_int("training", "seed", self.seed, 0, MAX_SEED)
        for name in ("preset", "dataset"):
            if not isinstance(getattr(self, name), str):
                raise DrawStudioError(f"training setting {name} must be a name, got {getattr(self, name)!r}")
        _check_choice("binarization", self.binarization, ("dynamic", "fixed", "none"))
        _check_choice("clutter", self.clutter, CLUTTER_CHOICES)
        _check_choice("lr schedule", self.lr_schedule, ("constant", "cosine", "step"))
        _check_choice("precision", self.precision, PRECISIONS)
        if isinstance(self.lr, numbers.Real) and not isinstance(self.lr, bool) and self.lr <= 0:
            raise DrawStudioError(f"learning rate must be positive, got {self.lr}")
        _check_real("training", "lr", self.lr, 0.0, math.inf, low_open=True, high_open=True)
        _check_real("training", "epochs", self.epochs, 0.0, 1e6)
        _check_real("training", "beta1", self.beta1, 0.0, 1.0, high_open=True)
        _check_real("training", "beta2", self.beta2, 0.0, 1.0, high_open=True)
        _check_real("training", "grad_clip", self.grad_clip, 0.0, math.inf, low_open=True, high_open=True)
        _check_real("training", "lr_min_factor", self.lr_min_factor, 0.0, 1.0)
        _check_real("training", "lr_decay", self.lr_decay, 0.0, 1.0, low_open=True)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
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
        "two-digit-mnist", "Two random MNIST digits on a 60x60 canvas, MNIST settings",
        # beta1 0.9: every run with Adam's beta1 0.5 (lr 1e-3 or 3e-4, or wider initial filters) stopped on a
        # plateau of 455-480 nats (validation, first 1,000-2,000 images) by step 1,000-2,000, and at lr 1e-3
        # degraded after it; with 0.9 the bound fell past it (407.52 at step 2,000, 252.39 at 14,000,
        # 240.40 at 22,000 after a restart at a lower rate)
        {"beta1": 0.9}),
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


# Training settings a resumed run may change (the rest, e.g. data, batch size and seed, stay the checkpoint's).
CHANGEABLE_ON_RESUME = ("lr", "beta1", "beta2", "grad_clip", "lr_schedule", "lr_decay", "lr_decay_every",
                        "validate_every", "validation_limit", "checkpoint_every", "report_every", "precision",
                        "snapshot_every")


def train_config_for(preset: str, **settings) -> TrainConfig:
    """The training configuration of a new run of ``preset``.

    The defaults, then the preset's training overrides, then ``settings``
    (``TrainConfig`` fields; a None value keeps what is there, a None
    ``dataset`` the preset's). Shared by the command line and the window.
    """
    chosen = get_preset(preset)
    given = {name: value for name, value in settings.items() if value is not None}
    dataset = given.pop("dataset", None) or chosen.dataset
    return dataclasses.replace(TrainConfig(), preset=preset, dataset=dataset,
                               **{**chosen.train_overrides, **given})


def resume_changes(**settings) -> dict:
    """The settings given for a resumed run (None: keep the checkpoint's), checked against
    :data:`CHANGEABLE_ON_RESUME`.

    Raises
    ------
    DrawStudioError
        A setting that a resumed run cannot change.
    """
    fixed = sorted(set(settings) - set(CHANGEABLE_ON_RESUME))
    if fixed:
        raise DrawStudioError(f"a resumed run keeps its {', '.join(fixed)}; start a new run to change "
                              f"{'it' if len(fixed) == 1 else 'them'}")
    return {name: value for name, value in settings.items() if value is not None}


# after --init-from the learning rate ramps up over this many steps: a fresh Adam state's second moments come
# from a few batches (beta2 0.999 remembers ~1,000 steps), so its first steps are as large as the rate itself.
# Without a ramp, two-digit-attention's training loss went from ~253 to 267-306 after a fresh state at lr 4.3e-4.
LR_WARMUP_AFTER_FRESH_ADAM = 1000


def planned_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    """The steps in all of a run of ``config``: ``epochs`` (above 0) of ``steps_per_epoch`` each, else ``steps``."""
    return math.ceil(config.epochs * steps_per_epoch) if config.epochs > 0 else config.steps


def length_in_steps(config: TrainConfig, steps_per_epoch: int | None) -> TrainConfig:
    """``config`` with its length as ``steps`` (``epochs`` 0): the same run length and learning-rate schedule, for
    the window's form, which sets steps. Unchanged when ``steps_per_epoch`` is unknown (None or 0)."""
    if config.epochs <= 0 or not steps_per_epoch:
        return config
    return dataclasses.replace(config, steps=planned_steps(config, steps_per_epoch), epochs=0.0)


def learning_rate(config: TrainConfig, step: int, total_steps: int, warmup: tuple[int, int] = (0, 0)) -> float:
    """The learning rate at ``step`` under the configured schedule.

    ``warmup`` is ``(first_step, steps)``: from ``first_step`` (where a fresh Adam state started, see
    :func:`lr_warmup_of`) the rate ramps up linearly, ``1/steps`` of the schedule's rate at the first
    step and all of it from ``steps`` steps later; ``steps`` 0 is no ramp.
    """
    if config.lr_schedule == "cosine":
        progress = min(step / max(total_steps, 1), 1.0)
        low = config.lr * config.lr_min_factor
        rate = low + 0.5 * (config.lr - low) * (1 + math.cos(math.pi * progress))
    elif config.lr_schedule == "step":
        rate = config.lr * config.lr_decay ** (step // max(config.lr_decay_every, 1))
    else:
        rate = config.lr
    first, steps = warmup
    if steps > 0 and step >= first:
        rate *= min(1.0, (step - first + 1) / steps)
    return rate


def lr_warmup_of(lineage: list) -> tuple[int, int]:
    """``(first_step, steps)`` of the learning-rate ramp of a run with this lineage: that of its last fresh
    Adam state (``--init-from``), so a resumed run goes on with the ramp where it was; (0, 0) if none."""
    for entry in reversed(lineage):
        if isinstance(entry, dict) and entry.get("fresh_optimizer"):
            return int(entry.get("step", 0)), int(entry.get("lr_warmup", 0))
    return 0, 0
