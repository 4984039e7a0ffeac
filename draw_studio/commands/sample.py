"""``draw-studio sample``: a grid of images drawn from the prior."""

from __future__ import annotations

import torch

from ..checkpoint import checkpoint_or_default, load_model
from ..device import make_generator, resolve_device
from ..errors import DrawStudioError
from ..images import save_grid
from .common import add_device, status


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("sample", help="sample a grid PNG from the prior")
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="checkpoint (default: the shipped models/mnist-attention.ckpt)")
    p.add_argument("-n", type=int, default=64, help="number of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=int, default=2, help="integer nearest-neighbour upscaling")
    p.add_argument("--out", required=True, help="PNG file to write")
    add_device(p)
    p.set_defaults(run=run)


def run(args) -> int:
    if args.n < 1:
        raise DrawStudioError(f"-n must be at least 1, got {args.n}")
    device = resolve_device(args.device)
    model, _ = load_model(checkpoint_or_default(args.checkpoint), device)
    with torch.inference_mode():
        images, _ = model.generate(args.n, generator=make_generator(device, args.seed))
    save_grid(args.out, images.cpu().numpy(), scale=args.scale)
    status(f"wrote {args.n} samples to {args.out}")
    return 0
