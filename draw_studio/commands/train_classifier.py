"""``draw-studio train`` for the attention classifier (``--preset cluttered-classifier``, or ``--resume`` /
``--init-from`` of a classifier checkpoint): ``commands/train.py`` hands such runs to :func:`run`."""

from __future__ import annotations

import contextlib

from ..classifier import CLASSIFIER_PRESETS, get_classifier_preset
from ..classifier_checkpoint import CLASSIFIER_KIND, checkpoint_kind, read_classifier_checkpoint
from ..classifier_setup import classifier_train_config, continued_classifier_run, new_classifier_run
from ..config import CHANGEABLE_ON_RESUME, resume_changes
from ..curve_meaning import CLASSIFIER
from ..distributed import ranks_from_environment
from ..errors import DrawStudioError
from ..progress import TrainingControl
from ..tensorboard_logs import TensorBoardSink, require_tensorboard
from .common import refuse_overwriting_inputs, status

DRAW_ONLY = {"binarization": "--binarization", "snapshot_every": "--snapshot-every", "precision": "--precision"}


def wanted(args) -> bool:
    """Whether ``draw-studio train`` ``args`` ask for a classifier run (its preset, or a classifier checkpoint)."""
    source = args.resume or args.init_from
    if source:
        return checkpoint_kind(source) == CLASSIFIER_KIND
    return args.preset in CLASSIFIER_PRESETS


def run(args) -> int:
    """Train (or go on training) an attention classifier as ``args`` say; the return code of ``train``."""
    from .train import lr_warmup, refuse_warmup_without_init_from, run_length, stop_on_signals  # train.py imports this

    if ranks_from_environment().active:
        raise DrawStudioError("the attention classifier trains in one process; start it without torchrun")
    if args.resume and args.init_from:
        raise DrawStudioError("pass either --resume (continue a run exactly) or --init-from "
                              "(start from a checkpoint's weights with a fresh optimiser), not both")
    refuse_warmup_without_init_from(args)
    given = [flag for name, flag in DRAW_ONLY.items() if getattr(args, name, None) is not None]
    if given:
        raise DrawStudioError(f"{', '.join(given)} set{'s' if len(given) == 1 else ''} how DRAW trains; the attention "
                              "classifier has no such setting: drop it")
    refuse_overwriting_inputs({"--log": args.log}, {"--out": args.out, "--resume": args.resume,
                                                    "--init-from": args.init_from})
    refuse_overwriting_inputs({"--out": args.out}, {"--init-from": args.init_from})
    if args.tensorboard:
        require_tensorboard()
    changes = resume_changes(**{name: getattr(args, name) for name in CHANGEABLE_ON_RESUME
                                if name not in DRAW_ONLY})
    changes.setdefault("report_every", 50)
    options = dict(data_dir=args.data_dir, out=args.out, device=args.device, download=not args.no_download,
                   log=False if args.no_log else (args.log or True), overwrite=args.overwrite)
    source = args.resume or args.init_from
    if source:
        saved = read_classifier_checkpoint(source).get("train_config") or {}
        saved_preset, saved_clutter = saved.get("preset"), saved.get("clutter", "fixed")
        if getattr(args, "preset_given", False) and args.preset != saved_preset:
            raise DrawStudioError(f"--preset {args.preset} differs from the preset {saved_preset} of {source}: a "
                                  "run that goes on from a checkpoint keeps its model; drop --preset, or start a "
                                  "new run of that preset")
        if args.dataset:
            changes["dataset"] = args.dataset  # checked against the checkpoint's (see --allow-data-change)
        if args.clutter and args.resume and args.clutter != saved_clutter:
            raise DrawStudioError(f"--clutter {args.clutter} differs from the clutter {saved_clutter} of {source}: a "
                                  "resumed run keeps its data; drop --clutter, or go on with --init-from")
        if args.clutter:
            changes["clutter"] = args.clutter
        trainer = continued_classifier_run(source, *run_length(args), changes, fresh_optimizer=not args.resume,
                                           allow_data_change=args.allow_data_change, lr_warmup=lr_warmup(args),
                                           **options)
    else:
        config = classifier_train_config(args.preset, dataset=args.dataset, clutter=args.clutter,
                                         batch_size=args.batch_size, steps=args.steps, epochs=args.epochs,
                                         seed=args.seed, validation_size=args.validation_size, **changes)
        trainer = new_classifier_run(get_classifier_preset(args.preset).model, config, **options)
    control = TrainingControl()
    sink = (TensorBoardSink(args.tensorboard, trainer.step, kind=CLASSIFIER) if args.tensorboard
            else contextlib.nullcontext())
    with stop_on_signals(control), sink:
        for report in trainer.run(control):
            line = report.describe()
            if line:
                status(line)
            if args.tensorboard:
                sink.handle(report)
    if control.stop_requested:
        status(f"stopped at step {trainer.step}; continue with --resume {args.out}")
        return 130
    return 0
