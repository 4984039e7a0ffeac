"""``draw-studio results``: a model's test bound and importance-weighted bounds beside the published ones."""

from __future__ import annotations

import argparse

from ..checkpoint import checkpoint_or_default, read_checkpoint
from ..config import ModelConfig, TrainConfig
from ..device import resolve_device
from ..memory import check_fits, forward_bytes
from ..results import DEFAULT_KS, checkpoint_results, published_rows, results_markdown, write_results_markdown
from .arguments import batch_size, non_negative_int, seed
from .common import add_data, add_device, add_threads, command_parser, json_text, refuse_overwriting_inputs, status

MAX_K = 100_000


def k_list(text: str) -> list[int]:
    """``"1,10,100,1000"`` -> [1, 10, 100, 1000]: importance samples, each from 1 to 100,000."""
    values = []
    for part in str(text).split(","):
        try:
            value = int(part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a whole number; write K values like "
                                             "1,10,100,1000") from None
        if not 1 <= value <= MAX_K:
            raise argparse.ArgumentTypeError(f"K must be between 1 and {MAX_K:,}, got {value}")
        values.append(value)
    return list(dict.fromkeys(values))


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "results", help="test bound and importance-weighted bounds, with the published "
                       "rows", description=(
                           "The variational bound and the importance-weighted bounds for each K on the first "
                           "--images test images (the numbers of draw-studio eval with the same images and "
                           "seed), printed as a Markdown table beside the paper's and the public reproductions' "
                           "rows, each with its binarisation."))
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="checkpoint (default: the shipped models/mnist-attention.ckpt)")
    add_data(p)
    p.add_argument("--images", type=non_negative_int, default=1000, help="the first N test images (0: all)")
    p.add_argument("--k", type=k_list, default=list(DEFAULT_KS), metavar="K,K,...",
                   help="importance samples of the weighted bounds (default 1,10,100,1000)")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--batch-size", type=batch_size, default=500, help="images (x K) per forward pass")
    p.add_argument("--seed", type=seed, default=0, help="seed of the posterior noise")
    p.add_argument("--markdown", metavar="FILE", help="also write the table to this Markdown file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    add_threads(p)
    add_device(p)
    p.set_defaults(run=run)


def run(args) -> int:
    checkpoint = checkpoint_or_default(args.checkpoint)
    refuse_overwriting_inputs({"--markdown": args.markdown}, {"checkpoint": checkpoint})
    state = read_checkpoint(checkpoint)
    config = ModelConfig.from_dict(state["model_config"])
    largest = max(args.k)
    per_pass = max(1, args.batch_size // largest) * largest if largest > 1 else args.batch_size
    check_fits(forward_bytes(config, per_pass), f"a forward pass of {per_pass:,} images",
               "use a smaller --batch-size or K", resolve_device(args.device))
    last_shown = -1.0
    progress = None
    for progress in checkpoint_results(checkpoint, args.images, args.k, split=args.split, data_dir=args.data_dir,
                                       download=not args.no_download, device=args.device,
                                       batch_size=args.batch_size, seed=args.seed):
        if not args.json and (progress.finished or progress.fraction - last_shown >= 0.05):
            status(f"  {progress.fraction:5.1%}  {progress.stage}: {progress.images_done:,}/"
                   f"{progress.images_total:,} images")
            last_shown = progress.fraction
    dataset = TrainConfig.from_dict(state.get("train_config") or {}).dataset
    rows = progress.rows + published_rows(dataset)
    if args.markdown:
        write_results_markdown(args.markdown, rows)
        if not args.json:
            status(f"wrote {args.markdown}")
    if args.json:
        print(json_text({"checkpoint": str(checkpoint), "rows": [vars(row) for row in rows]}))
    else:
        print(results_markdown(rows), end="")
    return 0
