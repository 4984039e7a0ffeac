"""``draw-studio sample``: a grid of images drawn from the prior."""

from __future__ import annotations

import torch

from ..checkpoint import checkpoint_or_default, load_model
from ..device import resolve_device
from ..images import save_grid
from ..memory import check_fits, forward_bytes, grid_bytes
from ..seeding import make_generator
from .arguments import integer, positive_int, seed
from .common import add_device, add_threads, command_parser, refuse_overwriting_inputs, status


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "sample", help="sample a grid PNG from the prior")
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="checkpoint (default: the shipped models/mnist-attention.ckpt)")
    p.add_argument("-n", type=positive_int, default=64, help="number of samples")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--scale", type=integer(1, 1024), default=2, help="integer nearest-neighbour upscaling")
    p.add_argument("--out", required=True, help="PNG file to write")
    add_threads(p)
    add_device(p)
    p.set_defaults(run=run)


def run(args) -> int:
    checkpoint = checkpoint_or_default(args.checkpoint)
    refuse_overwriting_inputs({"--out": args.out}, {"checkpoint": checkpoint})
    device = resolve_device(args.device)
    model, _ = load_model(checkpoint, device)
    check_fits(forward_bytes(model.config, args.n), f"drawing {args.n:,} samples", "use a smaller -n", device)
    check_fits(grid_bytes(model.config, args.n, args.scale), f"a grid of {args.n:,} samples at --scale "
               f"{args.scale}", "use a smaller -n or --scale")
    with torch.inference_mode():
        images, _ = model.generate(args.n, generator=make_generator(device, args.seed))
    save_grid(args.out, images.cpu().numpy(), scale=args.scale)
    status(f"wrote {args.n} samples to {args.out}")
    return 0
