"""``draw-studio publish``: a small weights-only copy of a checkpoint, for sharing or shipping."""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import load_model, save_checkpoint
from ..config import TrainConfig
from .common import status


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("publish", help="write a weights-only copy of a checkpoint (no optimiser state)")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--fp16", action="store_true", help="store the weights as float16 (half the size; "
                   "bounds move by hundredths of a nat)")
    p.set_defaults(run=run)


def run(args) -> int:
    model, state = load_model(args.checkpoint)
    train = TrainConfig.from_dict(state["train_config"]) if state.get("train_config") else None
    extra = {k: v for k, v in (state.get("extra") or {}).items() if k != "torch_rng"}
    save_checkpoint(args.out, model, train, optimizer=None, step=state.get("step", 0), extra=extra,
                    weights_dtype=torch.float16 if args.fp16 else None)
    status(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB, step {state.get('step', 0)})")
    return 0
