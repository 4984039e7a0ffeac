"""Building what a :class:`~draw_studio.train.Trainer` trains: a new run, or one that goes on from a checkpoint.

``Trainer.from_options`` and ``Trainer.from_checkpoint`` call :func:`new_run` and
:func:`continued_run`; each returns the :class:`TrainerParts` the ``Trainer`` constructor takes.
Before anything is built they refuse what would lose work (``draw_studio.run_checks``): a log
that would be a checkpoint, a new run over an existing one (unless ``overwrite``), a resumed run on
other data (unless ``allow_data_change``), a ``--resume`` of a checkpoint without optimiser state.

The pieces that do not depend on the model (:func:`new_run_inputs`, :func:`run_paths`, :func:`training_data`,
:func:`checkpoint_start`, :func:`check_continued_data`, :func:`note_init_from`, :func:`go_on_exactly`)
also build the attention classifier's runs (``draw_studio.classifier_setup``).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoint import model_from_state, read_checkpoint
from .config import LR_WARMUP_AFTER_FRESH_ADAM, ModelConfig, TrainConfig
from .data import ImageSet, load_split
from .device import resolve_device
from .errors import DrawStudioError
from .files import file_sha256, same_file
from .model import DRAW
from .run_checks import (
    check_resume_data,
    continuable_log,
    images_fingerprint,
    refuse_to_replace,
    same_model,
    same_run_as,
)
from .training_log import TrainingLog, default_log_path


@dataclass
class RunStart:
    """Where a run starts: step 0 of a new run, or the state of the checkpoint it goes on from.

    Attributes
    ----------
    step : int
        Optimiser steps already done.
    wall_time : float
        Seconds of training already spent.
    run_id : str
        Identity of the run, in its checkpoints and log (a resumed run keeps its own).
    lineage : list of dict
        Where the weights and data came from (``extra["lineage"]`` of every checkpoint).
    notices : list of str
        What the user should know before the first step (e.g. about the data).
    checkpoint : str or Path, optional
        The checkpoint the run goes on from (for messages).
    in_place : bool
        The run continues the checkpoint at its ``out`` itself: that file holds the starting state,
        and the log beside it goes on at once.
    log_source : Path, optional
        The log whose rows up to ``step`` this run's log continues.
    same_run : callable, optional
        ``same_run(old_log)``: whether the log at ``log_source`` belongs to this run (see
        ``TrainingLogWriter``).
    fingerprint : str, optional
        ``images_fingerprint`` of the training images, if already computed.
    device_type : str, optional
        The device type (``cpu``, ``cuda``, ``mps``) the checkpoint was trained on, if it says.
    world_size : int, optional
        The number of processes that trained the checkpoint, if it says.
    """

    step: int = 0
    wall_time: float = 0.0
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    lineage: list = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    checkpoint: str | Path | None = None
    in_place: bool = False
    log_source: Path | None = None
    same_run: Callable[[TrainingLog], bool] | None = None
    fingerprint: str | None = None
    device_type: str | None = None
    world_size: int | None = None


@dataclass
class TrainerParts:
    """The arguments of the ``Trainer`` constructor, built."""

    model: DRAW
    optimizer: torch.optim.Optimizer
    config: TrainConfig
    train_set: ImageSet
    valid_set: ImageSet
    out: Path | None
    log: Path | None
    start: RunStart


def new_run(model_config: ModelConfig | None, train_config: TrainConfig, *, data_dir: str | None = None,
            train_set: ImageSet | None = None, valid_set: ImageSet | None = None, download: bool = True,
            out: str | Path | None = None, log: str | Path | bool | None = True, device: str = "auto",
            overwrite: bool = True) -> TrainerParts:
    """A new model (initialised from ``train_config.seed``), its Adam optimiser and its data.

    See :meth:`draw_studio.train.Trainer.from_options` for the parameters.
    """
    device, out, log, train_set, valid_set = new_run_inputs(train_config, data_dir, train_set, valid_set, download,
                                                            out, log, device, overwrite)
    model = DRAW((model_config or ModelConfig()).with_image_shape(*train_set.shape)).to(device)
    return TrainerParts(model, _adam(model, train_config), train_config, train_set, valid_set, out, log, RunStart())


def continued_run(checkpoint: str | Path, steps: int | None, epochs: float = 0.0, changes: dict | None = None, *,
                  fresh_optimizer: bool = False, data_dir: str | None = None, train_set: ImageSet | None = None,
                  valid_set: ImageSet | None = None, download: bool = True, out: str | Path | None = None,
                  log: str | Path | bool | None = True, device: str = "auto", overwrite: bool = True,
                  allow_data_change: bool = False, lr_warmup: int = LR_WARMUP_AFTER_FRESH_ADAM) -> TrainerParts:
    """The model, optimiser, configuration and place in the run of ``checkpoint``, and the data to go on with.

    See :meth:`draw_studio.train.Trainer.from_checkpoint` for the parameters.
    """
    device = resolve_device(device)
    flag = "--init-from" if fresh_optimizer else "--resume"
    out, log = run_paths(out, log, {flag: Path(checkpoint)})
    state = read_checkpoint(checkpoint)
    in_place = not fresh_optimizer and (out is None or same_file(out, checkpoint))
    # a log continued by --init-from: the one already at the log path, if it is of the same model
    init_log = continuable_log(log, state) if fresh_optimizer else None
    if not overwrite and not in_place:
        refuse_to_replace(out, log, continuing=init_log)
    start, train_config = checkpoint_start(state, checkpoint, steps, epochs, changes,
                                           fresh_optimizer=fresh_optimizer, in_place=in_place)
    model_config = ModelConfig.from_dict(state["model_config"])
    train_set, valid_set = training_data(train_config, data_dir, train_set, valid_set, download)
    start.fingerprint = images_fingerprint(train_set.images)
    if not fresh_optimizer:
        check_continued_data(start, state, train_config, train_set, allow_data_change)
    model_config = model_config.with_image_shape(*train_set.shape)
    model = model_from_state(state, checkpoint).to(device)
    if model_config != model.config:
        raise DrawStudioError(f"{checkpoint} was trained on images of shape {model.config.channels}x"
                              f"{model.config.height}x{model.config.width}, the data is "
                              f"{'x'.join(map(str, train_set.shape))}; resume on the same dataset")
    optimizer = _adam(model, train_config)
    if fresh_optimizer:
        note_init_from(start, lr_warmup)
        if init_log is not None:
            start.log_source = init_log
            saved_model = state.get("model_config")  # not the whole state: the trainer keeps this function
            start.same_run = lambda old: same_model(old.model_config, saved_model)
            start.notices.append(f"the curves of {init_log} up to step {start.step} go on in this run's log")
    else:
        go_on_exactly(start, state, optimizer, log)
    return TrainerParts(model, optimizer, train_config, train_set, valid_set, out, log, start)


def new_run_inputs(train_config: TrainConfig, data_dir: str | None, train_set: ImageSet | None,
                   valid_set: ImageSet | None, download: bool, out: str | Path | None, log: str | Path | bool | None,
                   device: str, overwrite: bool) -> tuple[torch.device, Path | None, Path | None, ImageSet, ImageSet]:
    """What a new run needs before its model is built: the device, the checkpoint and log paths (a new run over
    an existing one refused unless ``overwrite``) and the data; then seeds torch with ``train_config.seed`` for
    the model's initial weights. The parameters are :func:`new_run`'s."""
    device = resolve_device(device)
    out, log = run_paths(out, log, {})
    if not overwrite:
        refuse_to_replace(out, log)
    train_set, valid_set = training_data(train_config, data_dir, train_set, valid_set, download)
    torch.manual_seed(train_config.seed)
    return device, out, log, train_set, valid_set


def run_paths(out: str | Path | None, log: str | Path | bool | None,
              inputs: dict[str, Path]) -> tuple[Path | None, Path | None]:
    """``out`` and the log path (``True``: beside ``out``), refusing a log that would be a checkpoint.

    Parameters
    ----------
    out : str or Path, optional
        The checkpoint the run writes.
    log : str, Path, bool or None
        The training log; ``True``: beside ``out`` (``X.ckpt`` -> ``X.log.h5``); ``None``/``False``: none.
    inputs : dict of str to Path
        Other checkpoints the log must not be, by the flag that names them (e.g. ``{"--resume": path}``).

    Raises
    ------
    DrawStudioError
        The log would be ``out`` or one of ``inputs``.
    """
    out = Path(out) if out else None
    if log is True:
        log = default_log_path(out) if out else None
    log = Path(log) if log else None
    for flag, other in {"--out": out, **inputs}.items():
        if same_file(log, other):
            raise DrawStudioError(f"the training log {log} would be the checkpoint {flag} {other}; "
                                  "pass another --log")
    return out, log


def training_data(config: TrainConfig, data_dir: str | None, train_set: ImageSet | None, valid_set: ImageSet | None,
                  download: bool) -> tuple[ImageSet, ImageSet]:
    """The given training and validation images, or those of ``config.dataset`` found (or downloaded)."""
    return (train_set or load_split(config.dataset, "train", data_dir, config.validation_size, download),
            valid_set or load_split(config.dataset, "valid", data_dir, config.validation_size, download))


def checkpoint_start(state: dict, checkpoint: str | Path, steps: int | None, epochs: float, changes: dict | None,
                     *, fresh_optimizer: bool, in_place: bool) -> tuple[RunStart, TrainConfig]:
    """Where a run that goes on from checkpoint ``state`` (read from ``checkpoint``) starts, and its training
    configuration: the saved one with ``steps``, ``epochs`` (``steps`` None: the saved length, so a resumed run
    ends where it was meant to, on the same learning-rate schedule) and ``changes``.

    The run keeps the checkpoint's run id unless ``fresh_optimizer`` (``--init-from``: a new run).
    """
    extra = state.get("extra", {}) or {}
    start = RunStart(step=int(state["step"]), wall_time=float(extra.get("wall_time", 0.0)),
                     lineage=list(extra.get("lineage", [])), checkpoint=checkpoint, in_place=in_place,
                     device_type=extra.get("device_type") if isinstance(extra.get("device_type"), str) else None,
                     world_size=extra.get("world_size") if type(extra.get("world_size")) is int else None)
    if not fresh_optimizer and extra.get("run_id"):
        start.run_id = extra["run_id"]
    saved = TrainConfig.from_dict(state.get("train_config") or {})
    length = {} if steps is None else {"steps": steps, "epochs": epochs}
    return start, dataclasses.replace(saved, **length, **(changes or {}))


def check_continued_data(start: RunStart, state: dict, config: TrainConfig, train_set: ImageSet,
                         allow_data_change: bool) -> None:
    """Check the training images (``start.fingerprint``) against what checkpoint ``state`` records: what the user
    should know goes to ``start.notices``, an allowed change of data to ``start.lineage``.

    Raises
    ------
    DrawStudioError
        Other data than the checkpoint's, unless ``allow_data_change``.
    """
    notices, changed = check_resume_data(state, start.checkpoint, config.dataset, train_set, start.fingerprint,
                                         allow_data_change)
    start.notices += notices
    if changed:
        start.lineage.append({"data_changed_at_step": start.step,
                              "from": (state.get("extra", {}) or {}).get("train_fingerprint"),
                              "to": start.fingerprint, "train_images": int(len(train_set))})


def note_init_from(start: RunStart, lr_warmup: int) -> None:
    """Record in ``start.lineage`` that the run starts from the weights of ``start.checkpoint`` with a fresh Adam,
    its learning rate ramped up over ``lr_warmup`` steps (see ``config.lr_warmup_of``)."""
    if isinstance(lr_warmup, bool) or not isinstance(lr_warmup, int) or lr_warmup < 0:
        raise DrawStudioError(f"the learning-rate warm-up is a number of steps, 0 or more; got {lr_warmup!r}")
    start.lineage.append({"init_from": str(start.checkpoint), "sha256": file_sha256(start.checkpoint),
                          "step": start.step, "fresh_optimizer": True, "lr_warmup": lr_warmup})


def go_on_exactly(start: RunStart, state: dict, optimizer: torch.optim.Optimizer, log: Path | None) -> None:
    """``--resume``: load the checkpoint's Adam state into ``optimizer`` and continue the checkpoint's own log.

    Raises
    ------
    DrawStudioError
        The checkpoint holds no optimiser state.
    """
    if state.get("optimizer") is None:
        raise DrawStudioError(f"{start.checkpoint} holds no optimiser state (a shipped model?); "
                              "continue from its weights with --init-from instead of --resume")
    optimizer.load_state_dict(state["optimizer"])
    start.log_source = log if start.in_place else default_log_path(start.checkpoint)
    start.same_run = same_run_as(state)


def _adam(model: DRAW, config: TrainConfig) -> torch.optim.Adam:
    fused = True if next(model.parameters()).device.type == "cuda" else None  # CUDA: a bad step skipped on the device
    return torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2), fused=fused)
