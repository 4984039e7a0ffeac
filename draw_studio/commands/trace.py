"""``draw-studio trace``: record every step of DRAW for a few images into an HDF5 trace."""

from __future__ import annotations

import time
from pathlib import Path

from ..checkpoint import checkpoint_or_default, read_checkpoint
from ..classifier_checkpoint import CLASSIFIER_KIND, checkpoint_kind
from ..classify_trace import save_classify_trace_from_checkpoint
from ..config import ModelConfig
from ..data import DATASETS
from ..data.folder import open_picture
from ..device import resolve_device
from ..errors import DrawStudioError
from ..formatting import duration
from ..memory import check_fits, record_bytes, trace_bytes
from ..trace_inputs import save_trace_from_checkpoint
from .arguments import batch_size, index_list, positive_int, seed
from .common import add_data, add_device, add_threads, command_parser, refuse_overwriting_inputs, status


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "trace", help="record every step for some images into an HDF5 trace", description=(
        "Reconstruct images of a split (the fixed binarisation that eval uses), picture files, or draw "
        "samples from the prior (--generate), and write every step (canvas, attention, glimpses, "
        "latents) to an HDF5 trace file."))
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="checkpoint (default: the shipped models/mnist-attention.ckpt)")
    p.add_argument("--out", required=True, help="trace file to write (.h5)")
    p.add_argument("--generate", action="store_true", help="draw samples from the prior instead")
    p.add_argument("-n", type=positive_int, default=None, help="number of images: the first N of the split, or N "
                   "samples (default 16)")
    p.add_argument("--indices", type=index_list, default=None,
                   help="comma-separated indices of images in the split, e.g. 3,17,42")
    p.add_argument("--images", nargs="+", default=None, metavar="FILE", help="picture files to reconstruct")
    add_data(p)
    p.add_argument("--dataset", default=None, choices=list(DATASETS),
                   help="dataset (default: the one the model was trained on)")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--seed", type=seed, default=0, help="seed of the noise")
    p.add_argument("--batch-size", type=batch_size, default=100, help="images per forward pass")
    add_threads(p)
    add_device(p)
    p.set_defaults(run=run)


def check_size(checkpoint: Path, args) -> None:
    """Refuse, before any work, a trace whose batches or whole file would not fit in memory."""
    config = ModelConfig.from_dict(read_checkpoint(checkpoint).get("model_config") or {})
    count = len(args.indices or args.images or ()) or args.n or 16
    batch = min(count, args.batch_size)
    check_fits(record_bytes(config, batch), f"recording a batch of {batch:,} images", "use a smaller --batch-size",
               resolve_device(args.device))
    check_fits(trace_bytes(config, count), f"a trace of {count:,} images (the window and export read it whole)",
               "use a smaller -n")


def run(args) -> int:
    indices = args.indices
    if args.n is not None and (indices or args.images):
        raise DrawStudioError("-n counts images of the split or samples; drop it with --indices or --images")
    checkpoint = checkpoint_or_default(args.checkpoint)
    refuse_overwriting_inputs({"--out": args.out}, {"checkpoint": checkpoint, "--images": args.images})
    if checkpoint_kind(checkpoint) == CLASSIFIER_KIND:
        return run_classifier(checkpoint, args)
    for picture in args.images or ():
        open_picture(picture, "check the file given to --images").close()  # one line before any work
    check_size(checkpoint, args)
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        status(f"traced {done}/{total} images ({duration(time.perf_counter() - started)})")

    count = save_trace_from_checkpoint(
        checkpoint, args.out, seed=args.seed, batch_size=args.batch_size, device=args.device,
        progress=progress, generate=args.generate, n=args.n, indices=indices, image_files=args.images,
        dataset=args.dataset, split=args.split, data_dir=args.data_dir, download=not args.no_download)
    size = Path(args.out).stat().st_size / 1e6
    status(f"wrote a trace of {count} images to {args.out} ({size:.1f} MB, "
           f"{duration(time.perf_counter() - started)})")
    return 0


def run_classifier(checkpoint: Path, args) -> int:
    """``trace`` of an attention classifier: a classify trace of images of a split (mode ``"classify"``)."""
    if args.generate or args.images:
        raise DrawStudioError(f"{checkpoint} is an attention classifier: it classifies images of a split, it does "
                              "not draw; drop --generate / --images")
    if args.n is not None and args.indices:
        raise DrawStudioError("-n counts images of the split; drop it with --indices")
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        status(f"traced {done}/{total} images ({duration(time.perf_counter() - started)})")

    count = save_classify_trace_from_checkpoint(
        checkpoint, args.out, n=args.n, indices=args.indices, dataset=args.dataset, split=args.split,
        data_dir=args.data_dir, download=not args.no_download, batch_size=args.batch_size, device=args.device,
        progress=progress)
    size = Path(args.out).stat().st_size / 1e6
    status(f"wrote a classify trace of {count} images to {args.out} ({size:.1f} MB, "
           f"{duration(time.perf_counter() - started)})")
    return 0
