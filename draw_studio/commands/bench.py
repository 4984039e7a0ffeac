"""``draw-studio bench``: how fast DRAW trains, samples, traces and evaluates here."""

from __future__ import annotations

import json

from .common import add_device, status


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="measure training, generation, trace and GUI speed", description=(
        "Training images/s at the mnist-paper preset (fast path and the plain autograd path, batch 64 and 256), "
        "matrix-multiply utilisation, generation latency, trace and eval throughput, the window's event-loop "
        "latency while it trains, peak memory."))
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quick", action="store_true", help="fewer timed windows (noisier)")
    p.add_argument("--no-gui", action="store_true", help="skip the window latency measurement")
    p.add_argument("--threads", type=int, default=0, help="PyTorch CPU threads (default: PyTorch's choice)")
    p.add_argument("--data-dir", default=None, help="MNIST for the window's latency run (default: the usual search)")
    add_device(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..bench.run import run_benchmark

    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    result = run_benchmark(args.device, quick=args.quick, gui=not args.no_gui, log=status, data_dir=args.data_dir)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(map(len, result))
        for key, value in result.items():
            shown = f"{value:.3f}" if isinstance(value, float) else str(value)
            print(f"{key:<{width}}  {shown}")
    return 0
