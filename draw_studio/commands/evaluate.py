"""``draw-studio eval``: the test bound (and importance-weighted bound) of a checkpoint."""

from __future__ import annotations

import argparse
import json

from ..checkpoint import load_model
from ..classifier_checkpoint import CLASSIFIER_KIND, checkpoint_kind
from ..classifier_eval import evaluate_classifier_checkpoint
from ..config import TrainConfig
from ..data import DATASETS, load_split, model_inputs
from ..device import resolve_device
from ..errors import DrawStudioError
from ..evaluate import evaluate
from ..memory import check_fits, forward_bytes
from .arguments import MAX_INT, batch_size, non_negative_int, seed
from .common import add_data, add_device, add_threads, command_parser, status


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "eval", help="bound in nats on a split (a classifier: its error)", description=(
        "Variational bound (nats per image) on the fixed binarisation of a split; with "
        "--importance-samples K also the tighter K-sample importance-weighted bound. For an attention "
        "classifier: the error in percent, its count and the cross-entropy."))
    p.add_argument("checkpoint")
    add_data(p)
    p.add_argument("--dataset", default=None, choices=list(DATASETS),
                   help="dataset (default: the one the model was trained on)")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--limit", type=non_negative_int, default=0, help="only the first N images of the split (0: all)")
    p.add_argument("--importance-samples", type=importance_samples, default=0, metavar="K",
                   help="K >= 2: also the K-sample importance-weighted bound (0: not)")
    p.add_argument("--batch-size", type=batch_size, default=500, help="images per forward pass")
    p.add_argument("--seed", type=seed, default=0, help="seed of the posterior noise")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_threads(p)
    add_device(p)
    p.set_defaults(run=run)


def importance_samples(text: str) -> int:
    """An argument type for ``--importance-samples``: 0 (no importance-weighted bound) or K >= 2.

    Parameters
    ----------
    text : str
        The argument as given.

    Returns
    -------
    int
        K, or 0.

    Raises
    ------
    argparse.ArgumentTypeError
        Not a whole number, 1, negative, or beyond the largest count.
    """
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value != 0 and not 2 <= value <= MAX_INT:
        raise argparse.ArgumentTypeError("must be 0 (no importance-weighted bound) or a whole number K of at least "
                                         f"2 (one sample is the plain bound), got {text!r}")
    return value


def run(args) -> int:
    if checkpoint_kind(args.checkpoint) == CLASSIFIER_KIND:
        return run_classifier(args)
    device = resolve_device(args.device)
    model, state = load_model(args.checkpoint, device)
    train = TrainConfig.from_dict(state.get("train_config") or {})
    dataset = args.dataset or train.dataset
    images = load_split(dataset, args.split, args.data_dir, train.validation_size, not args.no_download)
    if args.limit:
        images = images.subset(slice(0, args.limit))
    if images.shape != (model.config.channels, model.config.height, model.config.width):
        raise DrawStudioError(f"{dataset} images are {images.shape}, the model expects "
                              f"{(model.config.channels, model.config.height, model.config.width)}; "
                              "evaluate on the dataset it was trained on")
    pixels, binarization, bin_seed = model_inputs(images, model.config.likelihood)
    k = args.importance_samples
    per_pass = min(args.batch_size, len(pixels)) if k < 2 else min(max(1, args.batch_size // k), len(pixels)) * k
    check_fits(forward_bytes(model.config, per_pass), f"a forward pass of {per_pass} images", "use a smaller "
               "--batch-size" + (" or --importance-samples" if k > 1 else ""), device)
    if not args.json:
        status(f"evaluating {len(pixels)} {dataset} {args.split} images on {device}...")
    result = evaluate(model, pixels, batch_size=args.batch_size, seed=args.seed,
                      importance_samples=args.importance_samples, binarization=binarization,
                      binarization_seed=bin_seed)
    result.require_finite(str(args.checkpoint))
    out = {**result.to_dict(), "dataset": dataset, "split": args.split, "checkpoint": str(args.checkpoint),
           "step": int(state.get("step", 0))}
    if args.json:
        print(json.dumps(out, allow_nan=False))
    else:
        print(f"bound {result.bound:.2f} nats/image (L_x {result.nll_x:.2f} + L_z {result.kl:.2f}) on "
              f"{result.n} images, binarisation {binarization}")
        if result.iw_bound is not None:
            print(f"importance-weighted bound (K={result.importance_samples}) {result.iw_bound:.2f} nats/image")
        if result.bits_per_dim is not None:
            print(f"{result.bits_per_dim:.3f} bits/dim")
    return 0


def run_classifier(args) -> int:
    """``eval`` of an attention classifier: the error in percent and its count on the split."""
    if args.importance_samples:
        raise DrawStudioError("--importance-samples asks for a bound of DRAW; a classifier has an error rate, "
                              "not a bound: drop it")
    if not args.json:
        status(f"classifying the {args.split} images on {resolve_device(args.device)}...")
    out = evaluate_classifier_checkpoint(args.checkpoint, args.dataset, args.split, args.data_dir,
                                         not args.no_download, args.limit, args.batch_size, args.device)
    if args.json:
        print(json.dumps(out, allow_nan=False))
    else:
        print(f"error {out['error']:.2f}% ({out['errors']} of {out['n']} {out['dataset']} {out['split']} images), "
              f"cross-entropy {out['cross_entropy']:.4f} nats/image")
    return 0
