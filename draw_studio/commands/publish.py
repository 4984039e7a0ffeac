"""``draw-studio publish``: a small weights-only copy of a checkpoint, for sharing or shipping."""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import load_model, save_checkpoint
from ..classifier_checkpoint import (
    CLASSIFIER_KIND,
    checkpoint_kind,
    load_classifier,
    read_any_checkpoint,
    save_classifier_checkpoint,
)
from ..config import TrainConfig
from ..errors import DrawStudioError
from .common import command_parser, refuse_overwriting_inputs, status


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "publish", help="write a weights-only copy of a checkpoint (no optimiser state; "
                       "DRAW or an attention classifier)")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True, help="file to write (never the input, nor another training checkpoint)")
    p.add_argument("--fp16", action="store_true", help="store the weights as float16 (half the size; "
                   "bounds move by hundredths of a nat)")
    p.set_defaults(run=run)


def refuse_training_checkpoint(path: str) -> None:
    """Raise if ``path`` is an existing training checkpoint: a published copy would drop its optimiser state."""
    if not Path(path).is_file():
        return
    try:
        state = read_any_checkpoint(path)
    except DrawStudioError:
        return  # not a checkpoint: an ordinary file the user chose to replace
    if state.get("optimizer") is not None:
        raise DrawStudioError(f"--out {path} is a training checkpoint (step {state.get('step', 0)}, with its "
                              "optimiser state): publishing onto it would lose that state; write to another file")


def run(args) -> int:
    refuse_overwriting_inputs({"--out": args.out}, {"checkpoint": args.checkpoint})
    refuse_training_checkpoint(args.out)
    classifier = checkpoint_kind(args.checkpoint) == CLASSIFIER_KIND
    model, state = (load_classifier if classifier else load_model)(args.checkpoint)
    train = TrainConfig.from_dict(state["train_config"]) if state.get("train_config") else None
    extra = {k: v for k, v in (state.get("extra") or {}).items() if k != "torch_rng"}
    save = save_classifier_checkpoint if classifier else save_checkpoint
    save(args.out, model, train, optimizer=None, step=state.get("step", 0), extra=extra,
         weights_dtype=torch.float16 if args.fp16 else None)
    status(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB, step {state.get('step', 0)})")
    return 0
