"""Training speed with and without a CUDA graph of the whole step (``--cuda-graphs``), and the graph's self-check.

``python -m draw_studio.bench.cuda_graphs --device cuda --json`` trains two copies of one model from the same
start on the same batches and noise: the eager step (the fast path, a fused Adam deciding on the device, as
``Trainer.train_step``) and the :class:`~draw_studio.cuda_graphs.GraphedStep` (captured on CUDA, run without
capture elsewhere). It prints images/s of each (windows of several steps timed in turns, one synchronisation
per window), how long the first graphed step took (warm-up, capture and the check against the eager step), the
check's result, the largest difference between the two runs' losses, and on CUDA the kernel launches of one step
of each (PyTorch's profiler). ``scripts/gpu-check.sh`` runs it.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

LAUNCH_EVENTS = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx", "cudaGraphLaunch")


def launches_per_step(step, device: torch.device) -> int | None:
    """Kernel and graph launches that one call of ``step`` makes, counted by PyTorch's profiler (CUDA runtime and
    driver launch calls); None off CUDA."""
    if device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    from ..device import synchronize

    synchronize(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiler:
        step()
        synchronize(device)
    return sum(event.count for event in profiler.key_averages() if event.key in LAUNCH_EVENTS)


def measure(args: argparse.Namespace) -> dict:
    """The figures (see the module's description) as a dictionary."""
    from ..config import get_preset
    from ..cuda_graphs import GraphedStep, GraphsFailed
    from ..device import resolve_device, synchronize
    from ..handwritten_step import fast_backward
    from ..model import DRAW
    from ..seeding import make_generator
    from .measure import alternating_rates

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = get_preset(args.preset).model
    x = torch.bernoulli(torch.full((args.batch, config.channels, config.height, config.width), 0.15),
                        generator=torch.Generator().manual_seed(0)).to(device)
    compile = {"auto": None, "on": True, "off": False}[args.compile]

    def adam_for(model: DRAW) -> torch.optim.Adam:
        return torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.5, 0.999), fused=True)

    torch.manual_seed(0)
    eager_model = DRAW(config).to(device)
    graphed_model = DRAW(config).to(device)
    graphed_model.load_state_dict(eager_model.state_dict())
    eager_adam, losses = adam_for(eager_model), {"eager": [], "graphs": []}
    graphed = GraphedStep(graphed_model, adam_for(graphed_model), 10.0, args.batch, capture=device.type == "cuda",
                          compile=compile)
    counters = {"eager": 0, "graphs": 0}

    def eager_step() -> None:
        step = counters["eager"] = counters["eager"] + 1
        eager_adam.zero_grad(set_to_none=True)
        terms = fast_backward(eager_model, x, make_generator(device, step), compile=compile)
        loss = terms.bound.mean()
        norm = torch.nn.utils.clip_grad_norm_(eager_model.parameters(), 10.0)
        eager_adam.found_inf = (~(torch.isfinite(loss) & torch.isfinite(norm))).float()
        eager_adam.step()
        del eager_adam.found_inf
        losses["eager"].append(loss.detach())

    def graphed_step() -> None:
        step = counters["graphs"] = counters["graphs"] + 1
        losses["graphs"].append(graphed(x, make_generator(device, step), 1e-4, float("inf"))[0])

    def window(step):
        def work() -> None:
            for _ in range(args.steps):
                step()
            synchronize(device)
        return work

    result = {"device": str(device), "preset": args.preset, "batch": args.batch, "steps_per_window": args.steps,
              "captured": False, "self_check": None}
    try:
        rates, first = alternating_rates({"eager": window(eager_step), "graphs": window(graphed_step)},
                                         args.batch * args.steps, windows=args.windows)
    except GraphsFailed as exc:
        result["self_check"] = f"fell back: {exc}"
        return result
    difference = max(float((a - b).abs()) for a, b in zip(losses["eager"], losses["graphs"]))
    result.update(captured=graphed.graph is not None,
                  self_check=graphed.check or "not captured (no CUDA): the static step ran eagerly",
                  eager_images_per_s=rates["eager"], graphs_images_per_s=rates["graphs"],
                  speedup=rates["graphs"] / rates["eager"], first_window_s=first,
                  max_loss_difference=difference,
                  loss_scale=float(losses["eager"][-1]),
                  eager_launches_per_step=launches_per_step(eager_step, device),
                  graphs_launches_per_step=launches_per_step(graphed_step, device))
    return result


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The options (``python -m draw_studio.bench.cuda_graphs --help``)."""
    parser = argparse.ArgumentParser(prog="python -m draw_studio.bench.cuda_graphs",
                                     description="training images/s with and without a CUDA graph of the step")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preset", default="mnist-paper")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed window")
    parser.add_argument("--windows", type=int, default=5, help="timed windows of each, in turns")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's choice)")
    parser.add_argument("--compile", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    result = measure(args)
    if not args.json:
        if "eager_images_per_s" in result:
            print(f"{result['device']}, {result['preset']}, batch {result['batch']}: eager "
                  f"{result['eager_images_per_s']:.0f} images/s, graphed {result['graphs_images_per_s']:.0f} "
                  f"images/s ({result['speedup']:.2f}x); self-check: {result['self_check']}", file=sys.stderr)
        else:
            print(f"graphed step: {result['self_check']}", file=sys.stderr)
    print(json.dumps(result), flush=True)
    return 0 if "eager_images_per_s" in result else 1


if __name__ == "__main__":
    sys.exit(main())
