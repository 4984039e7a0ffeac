"""``draw-studio bench``: how fast DRAW trains, samples, traces and evaluates here."""

from __future__ import annotations

import sys

from .common import add_device, add_threads, command_parser, json_text, status


def add_parser(subparsers) -> None:
    p = command_parser(subparsers, "bench", help="measure training, generation, trace and GUI speed", description=(
        "Training images/s at the mnist-paper preset (fast path and the plain autograd path, batch 64 and 256, "
        "timed in turns), matrix-multiply utilisation, the fast path's compile time, generation latency, trace "
        "and eval throughput, the explore tools (regenerating after a latent edit, a fork of 16, the commitment "
        "curve, a drawing to its reconstruction), the window's event-loop latency while it trains and its "
        "longest event-loop block "
        "while it opens a 1,000,000-row training log, changes the smoothing and exports the CSV, peak memory. "
        "How long it takes depends on the machine: it times the window in child processes (12 s twice, 8 s "
        "dragging, plus their start-up), and the first run also compiles the fast path (~15 s per batch size; "
        "later runs reuse PyTorch's cache); --quick and --no-gui make it shorter."))
    p.add_argument("--json", action="store_true",
                   help="print one JSON object on stdout (the table then goes to stderr)")
    p.add_argument("--quick", action="store_true", help="fewer timed windows (noisier)")
    p.add_argument("--no-gui", action="store_true",
                   help="skip the window measurements (latency while training, big training log)")
    p.add_argument("--data-dir", default=None, help="MNIST for the window's latency run (default: the usual search)")
    add_threads(p, why="1 to compare with a busy machine")
    p.add_argument("--no-compile", action="store_true",
                   help="run the fast training path eagerly (same as DRAW_STUDIO_COMPILE=0)")
    p.add_argument("--distributed", action="store_true", help=(
        "also measure one training run on 1 and 2 processes (torchrun, one thread each; gloo on the CPU, NCCL "
        "on GPUs) at a global batch of 128: images/s and the all-reduce time per step (1-3 minutes more)"))
    p.add_argument("--distributed-only", action="store_true", help="measure only that (implies --distributed)")
    add_device(p)
    p.set_defaults(run=run)


def format_table(result: dict) -> str:
    """The result as aligned ``key  value`` lines."""
    width = max(map(len, result))
    lines = []
    for key, value in result.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{width}}  {shown}")
    return "\n".join(lines)


def run(args) -> int:
    import torch

    from ..bench.run import run_benchmark

    compile = False if args.no_compile else None
    result = {} if args.distributed_only else run_benchmark(args.device, quick=args.quick, gui=not args.no_gui,
                                                             log=status, compile=compile, data_dir=args.data_dir)
    if args.distributed or args.distributed_only:
        from ..bench.distributed import distributed_rates

        device = "cuda" if args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available()) \
            else "cpu"
        result.update(distributed_rates(status, device=device, compile=compile, steps=4 if args.quick else 10))
    if args.json:
        print(format_table(result), file=sys.stderr, flush=True)
        print(json_text(result))
    else:
        print(format_table(result))
    return 0
