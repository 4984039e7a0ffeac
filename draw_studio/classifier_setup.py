"""Building what a :class:`~draw_studio.classifier_train.ClassifierTrainer` trains: a new run, or one that goes
on from a classifier checkpoint (``--resume``: exactly; ``--init-from``: its weights with a fresh Adam).

The same refusals as DRAW's runs (``draw_studio.run_checks``): a new run never replaces an existing
checkpoint or log unless ``overwrite``; a resumed run checks its data against what the checkpoint
records unless ``allow_data_change``, and continues only its own log.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .classifier import AttentionClassifier, ClassifierConfig, get_classifier_preset
from .classifier_checkpoint import classifier_from_state, read_classifier_checkpoint
from .classifier_train import ClassifierTrainer
from .config import TrainConfig
from .data import ImageSet, load_split
from .device import resolve_device
from .errors import DrawStudioError
from .files import file_sha256, same_file
from .run_checks import check_resume_data, images_fingerprint, refuse_to_replace, same_run_as
from .train_setup import RunStart
from .training_log import default_log_path


def classifier_train_config(preset: str, **settings) -> TrainConfig:
    """The training configuration of a new run of classifier preset ``preset``: the defaults, the preset's
    overrides, then ``settings`` (``TrainConfig`` fields; None keeps what is there, a None ``dataset`` the
    preset's)."""
    chosen = get_classifier_preset(preset)
    given = {name: value for name, value in settings.items() if value is not None}
    dataset = given.pop("dataset", None) or chosen.dataset
    return dataclasses.replace(TrainConfig(), preset=preset, dataset=dataset, **{**chosen.train_overrides, **given})


def new_classifier_run(model_config: ClassifierConfig, train_config: TrainConfig, *, data_dir: str | None = None,
                       train_set: ImageSet | None = None, valid_set: ImageSet | None = None, download: bool = True,
                       out: str | Path | None = None, log: str | Path | bool | None = True, device: str = "auto",
                       overwrite: bool = True) -> ClassifierTrainer:
    """A new classifier (sized for the data, initialised from ``train_config.seed``), a fresh Adam and the data.

    Parameters are those of :meth:`draw_studio.train.Trainer.from_options`.
    """
    device = resolve_device(device)
    out, log = _paths(out, log)
    if not overwrite:
        refuse_to_replace(out, log)
    train_set, valid_set = _data(train_config, data_dir, train_set, valid_set, download)
    torch.manual_seed(train_config.seed)
    model = AttentionClassifier(model_config.with_image_shape(*train_set.shape)).to(device)
    return ClassifierTrainer(model, _adam(model, train_config), train_config, train_set, valid_set, out=out, log=log)


def continued_classifier_run(checkpoint: str | Path, steps: int, epochs: float = 0.0, changes: dict | None = None, *,
                             fresh_optimizer: bool = False, data_dir: str | None = None,
                             train_set: ImageSet | None = None, valid_set: ImageSet | None = None,
                             download: bool = True, out: str | Path | None = None,
                             log: str | Path | bool | None = True, device: str = "auto", overwrite: bool = True,
                             allow_data_change: bool = False) -> ClassifierTrainer:
    """The classifier, optimiser, configuration and place in the run of ``checkpoint``, and its data.

    Parameters are those of :meth:`draw_studio.train.Trainer.from_checkpoint`.
    """
    device = resolve_device(device)
    out, log = _paths(out, log)
    state = read_classifier_checkpoint(checkpoint)
    in_place = not fresh_optimizer and (out is None or same_file(out, checkpoint))
    if not overwrite and not in_place:
        refuse_to_replace(out, log)
    extra = state.get("extra") or {}
    start = RunStart(step=state["step"], wall_time=float(extra.get("wall_time", 0.0)),
                     lineage=list(extra.get("lineage", [])), checkpoint=checkpoint, in_place=in_place)
    if not fresh_optimizer and extra.get("run_id"):
        start.run_id = extra["run_id"]
    saved = TrainConfig.from_dict(state.get("train_config") or {})
    train_config = dataclasses.replace(saved, steps=steps, epochs=epochs, **(changes or {}))
    train_set, valid_set = _data(train_config, data_dir, train_set, valid_set, download)
    start.fingerprint = images_fingerprint(train_set.images)
    model = classifier_from_state(state, checkpoint).to(device)
    if (model.config.channels, model.config.height, model.config.width) != train_set.shape:
        raise DrawStudioError(f"{checkpoint} classifies images of {model.config.channels}x{model.config.height}x"
                              f"{model.config.width}, the data is {'x'.join(map(str, train_set.shape))}; go on "
                              "with the dataset it was trained on")
    optimizer = _adam(model, train_config)
    if fresh_optimizer:
        start.lineage.append({"init_from": str(checkpoint), "sha256": file_sha256(checkpoint), "step": start.step,
                              "fresh_optimizer": True})
    else:
        notices, changed = check_resume_data(state, checkpoint, train_config.dataset, train_set, start.fingerprint,
                                             allow_data_change)
        start.notices += notices
        if changed:
            start.lineage.append({"data_changed_at_step": start.step, "from": extra.get("train_fingerprint"),
                                  "to": start.fingerprint, "train_images": int(len(train_set))})
        if state.get("optimizer") is None:
            raise DrawStudioError(f"{checkpoint} holds no optimiser state (a shipped model?); continue from its "
                                  "weights with --init-from instead of --resume")
        optimizer.load_state_dict(state["optimizer"])
        start.log_source = log if in_place else default_log_path(checkpoint)
        start.same_run = same_run_as(state)
    return ClassifierTrainer(model, optimizer, train_config, train_set, valid_set, out=out, log=log, start=start)


def _paths(out: str | Path | None, log: str | Path | bool | None) -> tuple[Path | None, Path | None]:
    """``out`` and the log path (``True``: beside ``out``)."""
    out = Path(out) if out else None
    if log is True:
        log = default_log_path(out) if out else None
    log = Path(log) if log else None
    if same_file(log, out):
        raise DrawStudioError(f"the training log {log} would be the checkpoint --out {out}; pass another --log")
    return out, log


def _data(config: TrainConfig, data_dir, train_set, valid_set, download) -> tuple[ImageSet, ImageSet]:
    return (train_set or load_split(config.dataset, "train", data_dir, config.validation_size, download),
            valid_set or load_split(config.dataset, "valid", data_dir, config.validation_size, download))


def _adam(model: AttentionClassifier, config: TrainConfig) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
