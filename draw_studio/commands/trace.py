"""``draw-studio trace``: record every step of DRAW for a few images into an HDF5 trace."""

from __future__ import annotations

import time
from pathlib import Path

from ..checkpoint import checkpoint_or_default
from ..errors import DrawStudioError
from ..trace import save_trace_from_checkpoint
from .common import add_data, add_device, duration, status


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("trace", help="record every step for some images into an HDF5 trace", description=(
        "Reconstruct images of a split (the fixed binarisation that eval uses), picture files, or draw "
        "samples from the prior (--generate), and write every step (canvas, attention, glimpses, "
        "latents) to an HDF5 trace file."))
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="checkpoint (default: the shipped models/mnist-attention.ckpt)")
    p.add_argument("--out", required=True, help="trace file to write (.h5)")
    p.add_argument("--generate", action="store_true", help="draw samples from the prior instead")
    p.add_argument("-n", type=int, default=None, help="number of images: the first N of the split, or N samples "
                   "(default 16)")
    p.add_argument("--indices", default=None, help="comma-separated indices of images in the split, e.g. 3,17,42")
    p.add_argument("--images", nargs="+", default=None, metavar="FILE", help="picture files to reconstruct")
    add_data(p)
    p.add_argument("--dataset", default=None, help="dataset (default: the one the model was trained on)")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--seed", type=int, default=0, help="seed of the noise")
    p.add_argument("--batch-size", type=int, default=100, help="images per forward pass")
    add_device(p)
    p.set_defaults(run=run)


def parse_indices(text: str | None) -> list[int] | None:
    """'3,17,42' -> [3, 17, 42]."""
    if not text:
        return None
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise DrawStudioError(f"--indices must be whole numbers separated by commas, e.g. 3,17,42; "
                              f"got {text!r}") from None


def run(args) -> int:
    indices = parse_indices(args.indices)
    if args.n is not None and (indices or args.images):
        raise DrawStudioError("-n counts images of the split or samples; drop it with --indices or --images")
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        status(f"traced {done}/{total} images ({duration(time.perf_counter() - started)})")

    count = save_trace_from_checkpoint(
        checkpoint_or_default(args.checkpoint), args.out, seed=args.seed, batch_size=args.batch_size, device=args.device,
        progress=progress, generate=args.generate, n=args.n, indices=indices, image_files=args.images,
        dataset=args.dataset, split=args.split, data_dir=args.data_dir, download=not args.no_download)
    size = Path(args.out).stat().st_size / 1e6
    status(f"wrote a trace of {count} images to {args.out} ({size:.1f} MB, "
           f"{duration(time.perf_counter() - started)})")
    return 0
