"""Building what a :class:`~draw_studio.classifier_train.ClassifierTrainer` trains: a new run, or one that goes
on from a classifier checkpoint (``--resume``: exactly; ``--init-from``: its weights with a fresh Adam).

The same refusals as DRAW's runs (``draw_studio.run_checks``): a new run never replaces an existing
checkpoint or log unless ``overwrite``; a resumed run checks its data against what the checkpoint
records unless ``allow_data_change``, and continues only its own log. The pieces that do not depend on
the model are DRAW's (``draw_studio.train_setup``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from .classifier import AttentionClassifier, ClassifierConfig, get_classifier_preset
from .classifier_checkpoint import classifier_from_state, read_classifier_checkpoint
from .classifier_train import ClassifierTrainer
from .config import LR_WARMUP_AFTER_FRESH_ADAM, TrainConfig
from .data import ImageSet, fresh_clutter
from .device import resolve_device
from .errors import DrawStudioError
from .files import same_file
from .run_checks import images_fingerprint, refuse_to_replace
from .train_setup import (
    check_continued_data,
    checkpoint_start,
    go_on_exactly,
    new_run_inputs,
    note_init_from,
    run_paths,
    training_data,
)


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
    device, out, log, train_set, valid_set = new_run_inputs(train_config, data_dir, train_set, valid_set, download,
                                                            out, log, device, overwrite)
    reclutter = clutter_of_epochs(train_config, train_set, data_dir, download)
    model = AttentionClassifier(model_config.with_image_shape(*train_set.shape)).to(device)
    return ClassifierTrainer(model, _adam(model, train_config), train_config, train_set, valid_set, out=out, log=log,
                             reclutter=reclutter)


def continued_classifier_run(checkpoint: str | Path, steps: int | None, epochs: float = 0.0,
                             changes: dict | None = None, *,
                             fresh_optimizer: bool = False, data_dir: str | None = None,
                             train_set: ImageSet | None = None, valid_set: ImageSet | None = None,
                             download: bool = True, out: str | Path | None = None,
                             log: str | Path | bool | None = True, device: str = "auto", overwrite: bool = True,
                             allow_data_change: bool = False,
                             lr_warmup: int = LR_WARMUP_AFTER_FRESH_ADAM) -> ClassifierTrainer:
    """The classifier, optimiser, configuration and place in the run of ``checkpoint``, and its data.

    Parameters are those of :meth:`draw_studio.train.Trainer.from_checkpoint`.
    """
    device = resolve_device(device)
    out, log = run_paths(out, log, {})  # (unlike DRAW's runs, the log is not checked against the checkpoint read)
    state = read_classifier_checkpoint(checkpoint)
    in_place = not fresh_optimizer and (out is None or same_file(out, checkpoint))
    if not overwrite and not in_place:
        refuse_to_replace(out, log)
    start, train_config = checkpoint_start(state, checkpoint, steps, epochs, changes,
                                           fresh_optimizer=fresh_optimizer, in_place=in_place)
    train_set, valid_set = training_data(train_config, data_dir, train_set, valid_set, download)
    reclutter = clutter_of_epochs(train_config, train_set, data_dir, download)
    start.fingerprint = images_fingerprint(train_set.images)
    model = classifier_from_state(state, checkpoint).to(device)
    if (model.config.channels, model.config.height, model.config.width) != train_set.shape:
        raise DrawStudioError(f"{checkpoint} classifies images of {model.config.channels}x{model.config.height}x"
                              f"{model.config.width}, the data is {'x'.join(map(str, train_set.shape))}; go on "
                              "with the dataset it was trained on")
    optimizer = _adam(model, train_config)
    if fresh_optimizer:
        note_init_from(start, lr_warmup)
    else:
        check_continued_data(start, state, train_config, train_set, allow_data_change)
        go_on_exactly(start, state, optimizer, log)
    return ClassifierTrainer(model, optimizer, train_config, train_set, valid_set, out=out, log=log, start=start,
                             reclutter=reclutter)


def clutter_of_epochs(config: TrainConfig, train_set: ImageSet, data_dir: str | None, download: bool):
    """``FreshClutter(...).images`` of ``config.dataset``'s training digits when ``config.clutter`` is
    ``"fresh"`` (checked against ``train_set``: the same digits, in the same order), else None.

    Raises
    ------
    DrawStudioError
        Fresh clutter asked of a dataset that is not cluttered, or of training images other than its own.
    """
    if config.clutter != "fresh":
        return None
    fresh = fresh_clutter(config.dataset, config.seed, data_dir, config.validation_size, download)
    digits = fresh.source
    same_labels = train_set.labels is not None and digits.labels is not None and \
        np.array_equal(np.asarray(train_set.labels), np.asarray(digits.labels))
    if len(digits) != len(train_set) or not same_labels:
        raise DrawStudioError(f"the training images ({len(train_set)}) are not the cluttered {config.dataset} digits "
                              f"({len(digits)}) that fresh clutter rebuilds every epoch; train on the dataset "
                              "itself, or with --clutter fixed")
    return fresh.images


def _adam(model: AttentionClassifier, config: TrainConfig) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
