"""``draw-studio eval``: the test bound (and importance-weighted bound) of a checkpoint."""

from __future__ import annotations

import json

from ..checkpoint import load_model
from ..config import TrainConfig
from ..data import load_split
from ..device import resolve_device
from ..errors import DrawStudioError
from ..evaluate import evaluate, model_inputs
from .common import add_data, add_device, status


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="bound in nats on a split", description=(
        "Variational bound (nats per image) on the fixed binarisation of a split; with "
        "--importance-samples K also the tighter K-sample importance-weighted bound."))
    p.add_argument("checkpoint")
    add_data(p)
    p.add_argument("--dataset", default=None, help="dataset (default: the one the model was trained on)")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--limit", type=int, default=0, help="only the first N images of the split")
    p.add_argument("--importance-samples", type=int, default=0, metavar="K")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior noise")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_device(p)
    p.set_defaults(run=run)


def run(args) -> int:
    device = resolve_device(args.device)
    model, state = load_model(args.checkpoint, device)
    train = TrainConfig.from_dict(state.get("train_config") or {})
    dataset = args.dataset or train.dataset
    images = load_split(dataset, args.split, args.data_dir, train.validation_size, not args.no_download)
    if args.limit < 0:
        raise DrawStudioError(f"--limit must be positive, got {args.limit}")
    if args.limit:
        images = images.subset(slice(0, args.limit))
    if images.shape != (model.config.channels, model.config.height, model.config.width):
        raise DrawStudioError(f"{dataset} images are {images.shape}, the model expects "
                              f"{(model.config.channels, model.config.height, model.config.width)}; "
                              "evaluate on the dataset it was trained on")
    pixels, binarization, bin_seed = model_inputs(images, model.config.likelihood)
    if not args.json:
        status(f"evaluating {len(pixels)} {dataset} {args.split} images on {device}...")
    result = evaluate(model, pixels, batch_size=args.batch_size, seed=args.seed,
                      importance_samples=args.importance_samples, binarization=binarization,
                      binarization_seed=bin_seed)
    out = {**result.to_dict(), "dataset": dataset, "split": args.split, "checkpoint": str(args.checkpoint),
           "step": int(state.get("step", 0))}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"bound {result.bound:.2f} nats/image (L_x {result.nll_x:.2f} + L_z {result.kl:.2f}) on "
              f"{result.n} images, binarisation {binarization}")
        if result.iw_bound is not None:
            print(f"importance-weighted bound (K={result.importance_samples}) {result.iw_bound:.2f} nats/image")
        if result.bits_per_dim is not None:
            print(f"{result.bits_per_dim:.3f} bits/dim")
    return 0
