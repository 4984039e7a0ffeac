"""``draw-studio explore``: fork, commitment, edit-latent, move-window, interpolate, reconstruct-image, compare.

Each tool writes a trace file with a root attribute ``intervention`` (JSON) saying what was changed
(``docs/file-formats.md``, "Explore traces"); ``draw-studio export OUT.h5 --gif X.gif`` animates it.
"""

from __future__ import annotations

import argparse
import time

from ..data import DATASETS, load_split, model_inputs
from ..errors import DrawStudioError
from ..explore.compare import check_trace_outputs, compare_checkpoints, write_comparison
from ..explore.drawing import load_drawing
from ..explore.edit import edit_latent
from ..explore.fork import commitment, fork
from ..explore.interpolate import METHODS, interpolate
from ..explore.reconstruct import cached_split_bounds, reconstruct_pixels, split_bounds
from ..explore.replay import LATER
from ..explore.result import ExploreResult, intervention_json, write_result
from ..explore.source import Loaded, load_checkpoint, model_for_trace, read_trace_image
from ..explore.window import move_window, parse_window
from ..formatting import duration
from .arguments import finite_float, integer, non_negative_int, positive_int, seed
from .common import add_data, add_device, add_threads, command_parser, refuse_overwriting_inputs, status

TOOLS = ("fork", "commitment", "edit-latent", "move-window", "interpolate", "reconstruct-image", "compare")


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "explore", help="ask DRAW questions: fork, edit a latent, move a window...",
                       description="Re-run parts of DRAW's drawing with something changed; each tool writes a trace "
                       "whose root attribute 'intervention' (JSON) says what was changed. Steps are indexed 0..T-1 "
                       "as in trace files (the paper's t = step + 1).")
    tools = p.add_subparsers(dest="tool", metavar="TOOL")
    p.set_defaults(run=_no_tool)
    _from_trace(tools, "fork", "K continuations that keep z_1..z_t of an image and draw the rest from the prior",
                _run_fork, lambda q: (
                    q.add_argument("--at", type=non_negative_int, required=True, metavar="T",
                                   help="keep the first T latents (0..steps; 0: prior samples)"),
                    q.add_argument("-k", type=positive_int, default=16, help="continuations (default 16)"),
                    q.add_argument("--seed", type=seed, default=0, help="seed of the prior noise")))
    _from_trace(tools, "commitment", "for every t: how much of the final image is still open after step t",
                _run_commitment, lambda q: (
                    q.add_argument("-k", type=integer(2, what="-k"), default=16, help="continuations per fork "
                                   "point (default 16)"),
                    q.add_argument("--seed", type=seed, default=0, help="seed of the prior noise")))
    _from_trace(tools, "edit-latent", "set z_step[latent] to a value and draw the steps from there again",
                _run_edit, lambda q: (
                    q.add_argument("--step", type=non_negative_int, required=True, help="step 0..T-1"),
                    q.add_argument("--latent", type=non_negative_int, required=True, help="latent 0..Z-1"),
                    q.add_argument("--value", type=finite_float, required=True, help="the new value of z"),
                    q.add_argument("--later", choices=LATER, default="keep", help="the later z's: the trace's "
                                   "own (keep, default), or the posterior's with the trace's noise or at its mean "
                                   "(reconstructions)")))
    _from_trace(tools, "move-window", "override the write / read window of a step and draw from there again",
                _run_move, lambda q: (
                    q.add_argument("--step", type=non_negative_int, required=True, help="step 0..T-1"),
                    q.add_argument("--write", default=None, metavar="SPEC",
                                   help="write window parameters to set, e.g. gx=14,gy=9 (gx, gy, delta, sigma2, "
                                   "gamma; 1-based pixels)"),
                    q.add_argument("--read", default=None, metavar="SPEC", help="read window parameters to set "
                                   "(reconstructions)"),
                    q.add_argument("--later", choices=LATER, default=None, help="the later z's of a "
                                   "reconstruction: posterior (default, the trace's noise), mean, or keep")))
    q = command_parser(tools, "interpolate", help="decode interpolations between two images' posterior means",
                       description="Posterior means mu_1..mu_T of two images (test-set indices or picture files), "
                       "interpolated linearly and/or spherically, decoded as generation: a trace of COUNT samples "
                       "per method.")
    q.add_argument("checkpoint", nargs="?", default=None, help="checkpoint (default: the shipped model)")
    for end in ("from", "to"):
        q.add_argument(f"--{end}-index", type=non_negative_int, default=None, help=f"{end}: an image of the split")
        q.add_argument(f"--{end}-image", default=None, metavar="FILE", help=f"{end}: a picture file")
    q.add_argument("--count", type=integer(2, 1000, what="--count"), default=9, help="points per method "
                   "(default 9)")
    q.add_argument("--method", choices=(*METHODS, "both"), default="both", help="default both: 2 x COUNT samples")
    _add_split(q)
    _add_picture_options(q)
    _add_common(q, _run_interpolate)
    q = command_parser(tools, "reconstruct-image", help="reconstruct a picture; its bound against the test set",
                       description="A picture of any size, converted to the model's channels and size and centred "
                       "by its mass like an MNIST digit (binarised at 0.5 for a Bernoulli model), reconstructed; "
                       "with --data-dir (or a cached result) also the test set's mean bound and this bound's "
                       "percentile among the test images.")
    q.add_argument("checkpoint", nargs="?", default=None, help="checkpoint (default: the shipped model)")
    q.add_argument("picture", help="picture file (PNG, JPEG...)")
    q.add_argument("--seed", type=seed, default=0, help="seed of the posterior noise")
    q.add_argument("--test-limit", type=non_negative_int, default=0, help="only the first N test images (0: all)")
    _add_split(q)
    _add_picture_options(q)
    _add_common(q, _run_reconstruct)
    _add_compare(tools)


def _add_compare(tools) -> None:
    q = command_parser(tools, "compare", help="two models on the same images: their bounds and KL per step",
                       description="Reconstruct the first N images of a split with two checkpoints of the same "
                       "image size, on the same inputs (the split's fixed binarisation) with eval's noise; print "
                       "each model's mean bound (its own 'draw-studio eval --limit N' bound) and their difference "
                       "B - A. --trace-out writes each model's trace.")
    q.add_argument("checkpoint_a", metavar="A.ckpt", help="model A")
    q.add_argument("checkpoint_b", metavar="B.ckpt", help="model B")
    q.add_argument("--images", type=positive_int, default=16, help="the first N images of the split (default 16)")
    q.add_argument("--seed", type=seed, default=0, help="seed of the posterior noise (as eval --seed)")
    q.add_argument("--trace-out", nargs=2, default=None, metavar=("A_TRACE.h5", "B_TRACE.h5"),
                   help="write model A's and model B's traces of the images to these two files")
    q.add_argument("--json", action="store_true", help="print one JSON object: the means and every image's "
                   "bounds, difference and KL per step")
    add_threads(q)
    _add_split(q)
    add_device(q)
    q.set_defaults(run=_run_compare)


def _from_trace(tools, name: str, summary: str, run, extra) -> None:
    q = command_parser(tools, name, help=summary, description=summary[0].upper() + summary[1:] + ".")
    q.add_argument("trace", help="trace file (draw-studio trace, or another explore tool)")
    q.add_argument("--image", type=non_negative_int, default=0, help="image of the trace (default 0)")
    q.add_argument("--checkpoint", default=None, help="the trace's checkpoint (default: the shipped model; its "
                   "sha256 must be the one the trace records)")
    extra(q)
    _add_common(q, run)


def _add_common(q, run) -> None:
    q.add_argument("--out", required=True, help="trace file to write (.h5)")
    q.add_argument("--json", action="store_true", help="print the intervention as one JSON object on stdout")
    add_threads(q, default=1, why="these small steps run fastest on one")
    add_device(q)
    q.set_defaults(run=run)


def _add_split(q) -> None:
    add_data(q)
    q.add_argument("--dataset", default=None, choices=list(DATASETS), help="dataset (default: the model's)")
    q.add_argument("--split", default="test", choices=("train", "valid", "test"))


def _add_picture_options(q) -> None:
    q.add_argument("--no-centre", dest="centre", action="store_false", help="resize the whole picture instead of "
                   "centring its ink by mass")
    q.add_argument("--invert", action=argparse.BooleanOptionalAction, default=None,
                   help="invert the grey levels (default: when the picture's border is bright)")


def _no_tool(args) -> int:
    raise DrawStudioError(f"choose a tool: draw-studio explore {{{','.join(TOOLS)}}} ... (see --help)")


# ---------------------------------------------------------------------- tools that start from a trace
def _source(args):
    refuse_overwriting_inputs({"--out": args.out}, {"trace": args.trace, "--checkpoint": args.checkpoint})
    trace = read_trace_image(args.trace, args.image)
    loaded, note = model_for_trace(trace, args.checkpoint, args.device, trace_name=str(args.trace))
    if note:
        status(note)
    return loaded, trace


def _finish(args, result: ExploreResult, started: float, summary: str) -> int:
    write_result(args.out, result)
    status(f"{summary}; wrote {args.out} ({duration(time.perf_counter() - started)})")
    if args.json:
        print(intervention_json(result.intervention))
    return 0


def _run_fork(args) -> int:
    started = time.perf_counter()
    loaded, trace = _source(args)
    result = fork(loaded.model, trace, 0, args.at, args.k, args.seed, file_image=args.image)
    return _finish(args, result, started, f"{args.k} continuations of image {args.image} after its first "
                   f"{args.at} steps (seed {args.seed})")


def _run_commitment(args) -> int:
    started = time.perf_counter()
    loaded, trace = _source(args)
    result = commitment(loaded.model, trace, 0, args.k, args.seed, file_image=args.image)
    curve, half = result.intervention["curve"], result.intervention["half_step"]
    summary = (f"commitment of image {args.image}: mean pixel std {float(curve[0]):.4f} at t=0, "
               + (f"below half of it from t={half}" if half is not None else "never below half of it"))
    return _finish(args, result, started, summary)


def _run_edit(args) -> int:
    started = time.perf_counter()
    loaded, trace = _source(args)
    result = edit_latent(loaded.model, trace, 0, args.step, args.latent, args.value, args.later,
                         file_image=args.image)
    info = result.intervention
    summary = f"z[{args.step}][{args.latent}] {info['old_value']:.3f} -> {args.value:g}"
    if "bound_after" in info:
        summary += f", bound {info['bound_before']:.2f} -> {info['bound_after']:.2f} nats"
    return _finish(args, result, started, summary)


def _run_move(args) -> int:
    write = parse_window(args.write, "--write") if args.write is not None else None
    read = parse_window(args.read, "--read") if args.read is not None else None
    started = time.perf_counter()
    loaded, trace = _source(args)
    result = move_window(loaded.model, trace, 0, args.step, write=write, read=read, later=args.later,
                         file_image=args.image)
    info = result.intervention
    summary = f"moved the {' and '.join(h for h in ('write', 'read') if h in info)} window of step {args.step}"
    if "bound_after" in info:
        summary += f", bound {info['bound_before']:.2f} -> {info['bound_after']:.2f} nats"
    return _finish(args, result, started, summary)


# ---------------------------------------------------------------------- tools that start from a checkpoint
def _split(loaded: Loaded, args):
    """The split's images as the model sees them (its fixed binarisation), and their labels."""
    cfg = loaded.model.config
    dataset = args.dataset or loaded.train_config.dataset
    images = load_split(dataset, args.split, args.data_dir, loaded.train_config.validation_size, not args.no_download)
    if images.shape != (cfg.channels, cfg.height, cfg.width):
        raise DrawStudioError(f"{dataset} images are {images.shape}, the model expects "
                              f"{(cfg.channels, cfg.height, cfg.width)}; use the dataset it was trained on")
    pixels, _, _ = model_inputs(images, cfg.likelihood)
    return pixels, images.labels, f"{dataset}/{args.split}"


def _run_interpolate(args) -> int:
    ends = []
    for end in ("from", "to"):
        index, picture = getattr(args, f"{end}_index"), getattr(args, f"{end}_image")
        if (index is None) == (picture is None):
            raise DrawStudioError(f"give exactly one of --{end}-index (an image of the split) and --{end}-image "
                                  "(a picture file)")
        ends.append((index, picture))
    refuse_overwriting_inputs({"--out": args.out}, {"checkpoint": args.checkpoint, "--from-image": ends[0][1],
                                                    "--to-image": ends[1][1]})
    started = time.perf_counter()
    loaded = load_checkpoint(args.checkpoint, args.device)
    split = _split(loaded, args) if any(index is not None for index, _ in ends) else None
    images, infos = [], []
    for index, picture in ends:
        if picture is not None:
            pixels, info = load_drawing(picture, loaded.model.config, args.centre, args.invert)
            images.append(pixels[0])
            infos.append({"kind": "picture", **info})
            continue
        pixels, labels, source = split
        if index >= len(pixels):
            raise DrawStudioError(f"index {index} is out of range: {source} holds {len(pixels)} images "
                                  f"(0..{len(pixels) - 1})")
        images.append(pixels[index])
        infos.append({"kind": "index", "index": index, "source": source,
                      **({"label": int(labels[index])} if labels is not None else {})})
    methods = METHODS if args.method == "both" else (args.method,)
    result = interpolate(loaded.model, images[0], images[1], args.count, methods, infos[0], infos[1], loaded.sha256)
    return _finish(args, result, started, f"{result.trace.n} interpolated images ({', '.join(methods)})")


def _run_reconstruct(args) -> int:
    refuse_overwriting_inputs({"--out": args.out}, {"checkpoint": args.checkpoint, "picture": args.picture})
    started = time.perf_counter()
    loaded = load_checkpoint(args.checkpoint, args.device)
    pixels, info = load_drawing(args.picture, loaded.model.config, args.centre, args.invert)
    source = f"{args.dataset or loaded.train_config.dataset}/{args.split}"
    if args.data_dir:
        split, _, source = _split(loaded, args)
        split = split[:args.test_limit] if args.test_limit else split
        status(f"bounds of {len(split)} {source} images (cached per checkpoint after the first time)...")
        test = split_bounds(loaded.model, split, source, loaded.sha256)
    else:
        test = cached_split_bounds(loaded.sha256, source)
        if test is None:
            status("note: no test-set bounds for this checkpoint yet; pass --data-dir to compare with the test set")
    result = reconstruct_pixels(loaded.model, pixels, info, args.seed, test, loaded.sha256)
    info = result.intervention
    summary = f"bound {info['bound']:.2f} nats (L_x {info['nll_x']:.2f} + L_z {info['kl']:.2f})"
    if test is not None:
        summary += (f"; test mean {info['test_mean_bound']:.2f} nats, percentile {info['test_percentile']:.1f} "
                    f"of {info['test_images']} {source} images")
    return _finish(args, result, started, summary)


def _run_compare(args) -> int:
    outputs = {"--trace-out": list(args.trace_out or [])}
    refuse_overwriting_inputs(outputs, {"A.ckpt": args.checkpoint_a, "B.ckpt": args.checkpoint_b})
    if args.trace_out:
        check_trace_outputs(*args.trace_out)
    started = time.perf_counter()
    comparison = compare_checkpoints(args.checkpoint_a, args.checkpoint_b, args.images, args.data_dir, args.dataset,
                                     args.split, args.seed, args.device, not args.no_download)
    if args.trace_out:
        write_comparison(comparison, *args.trace_out)
    c = comparison
    status(f"compared on the first {c.n} {c.source} images (binarisation {c.binarization}, noise seed {args.seed}) "
           f"in {duration(time.perf_counter() - started)}" + (f"; wrote {' and '.join(args.trace_out)}"
                                                              if args.trace_out else ""))
    if args.json:
        print(intervention_json({"tool": "compare", **c.summary()}))
        return 0
    print(f"A {c.name_a}: mean bound {c.mean_bound_a:.2f} nats/image ({c.trace_a.steps} steps)")
    print(f"B {c.name_b}: mean bound {c.mean_bound_b:.2f} nats/image ({c.trace_b.steps} steps)")
    print(f"B - A: {c.mean_difference:+.2f} nats/image (B lower on {int((c.difference < 0).sum())} of {c.n} images)")
    return 0
