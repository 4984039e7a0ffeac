"""Distributed training speed: images/s of one run on 1 and on N processes (``torchrun``) at one global batch,
and the time of the step's all-reduce.

``draw-studio bench --distributed`` calls :func:`distributed_rates`, which starts ``torchrun --standalone``
once per process count with this module as the program; each process trains synthetic binary images with
the fast path on its share of the global batch (one thread each on the CPU, gloo; ``cuda:LOCAL_RANK`` and
NCCL with ``--device cuda``), and rank 0 prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

Log = Callable[[str], None]


def measure(args: argparse.Namespace) -> dict:
    """One process's part of the measurement (run under torchrun); rank 0's figures."""
    from .. import distributed
    from ..config import get_preset
    from ..device import synchronize
    from ..handwritten_step import compile_wanted
    from ..model import DRAW
    from ..seeding import make_generator

    torch.set_num_threads(args.threads)
    ranks, device = distributed.setup(args.device)
    try:
        torch.manual_seed(0)
        model = DRAW(get_preset(args.preset).model).to(device)
        distributed.broadcast_weights(model, ranks)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.5, 0.999))
        reducer = distributed.StepReducer(model, device) if ranks.active else None
        cfg = model.config
        x = torch.bernoulli(torch.full((args.batch, cfg.channels, cfg.height, cfg.width), 0.15),
                            generator=torch.Generator().manual_seed(0)).to(device)  # the global batch
        generator = make_generator(device, 0)
        compile = {"auto": None, "on": True, "off": False}[args.compile]
        step_s, reduce_s = [], []
        for step in range(args.warmup + args.steps):
            synchronize(device)
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            terms = distributed.share_of_step(model, x, generator, ranks, fast=True, compile=compile)
            if reducer is not None:
                sums = torch.stack((terms.bound.sum(), terms.nll_x.sum(), terms.kl.sum()))
                synchronize(device)
                before = time.perf_counter()
                reducer.reduce(sums, ~torch.isfinite(sums).all(), stop=False)[3:].tolist()
                reduced = time.perf_counter() - before
            else:
                reduced = 0.0
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            synchronize(device)
            if step >= args.warmup:
                step_s.append(time.perf_counter() - start)
                reduce_s.append(reduced)
        median = statistics.median(step_s)
        compiled = compile_wanted(model, x[ranks.rows(args.batch)], compile)  # False too when compiling failed
        return {"processes": ranks.world_size, "batch": args.batch, "device": str(device), "threads": args.threads,
                "compiled": compiled,
                "images_per_s": args.batch / median, "step_ms": median * 1000,
                "allreduce_ms": statistics.median(reduce_s) * 1000}
    finally:
        distributed.teardown()


def distributed_rates(log: Log, processes: tuple[int, ...] = (1, 2), batch: int = 128, steps: int = 10,
                      preset: str = "mnist-paper", device: str = "cpu", compile: bool | None = None,
                      timeout_s: float = 600) -> dict:
    """Images/s of one training run on each number of ``processes`` at the global ``batch`` (one thread each).

    Returns
    -------
    dict
        ``distributed_batch``; per count N ``distributed_{N}p_images_per_s`` and ``distributed_{N}p_allreduce_ms``
        (the median all-reduce per step; 0 for one process); ``distributed_error`` when a run failed.
    """
    out: dict = {"distributed_batch": batch, "distributed_device": device}
    for count in processes:
        if device == "cuda" and count > torch.cuda.device_count():
            log(f"  distributed training, {count} processes: skipped (this machine has "
                f"{torch.cuda.device_count()} GPU(s))")
            continue
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={count}",
                   "-m", "draw_studio.bench.distributed", "--batch", str(batch), "--steps", str(steps),
                   "--preset", preset, "--device", device,
                   "--compile", {None: "auto", True: "on", False: "off"}[compile]]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            out["distributed_error"] = f"{count} processes: timed out after {timeout_s:.0f} s"
            log(f"  distributed training, {count} process(es): timed out")
            break
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
            out["distributed_error"] = f"{count} processes: {reason}"
            log(f"  distributed training, {count} process(es): not measured ({reason})")
            break
        values = json.loads(lines[-1])
        out[f"distributed_{count}p_images_per_s"] = values["images_per_s"]
        out[f"distributed_{count}p_allreduce_ms"] = values["allreduce_ms"]
        out[f"distributed_{count}p_compiled"] = values["compiled"]
        log(f"  distributed training, {count} process(es) x 1 thread, global batch {batch}: "
            f"{values['images_per_s']:.0f} images/s, all-reduce {values['allreduce_ms']:.1f} ms of "
            f"{values['step_ms']:.0f} ms per step (fast path {'compiled' if values['compiled'] else 'eager'})")
    return out


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The options of one measuring process (``python -m draw_studio.bench.distributed --help``)."""
    parser = argparse.ArgumentParser(prog="python -m draw_studio.bench.distributed",
                                     description="one process of draw-studio bench --distributed (under torchrun)")
    parser.add_argument("--batch", type=int, default=128, help="global batch")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--preset", default="mnist-paper")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", default="auto", choices=("auto", "on", "off"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    result = measure(arguments(argv))
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
