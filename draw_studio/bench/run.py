"""The benchmark itself: what ``draw-studio bench`` measures and prints."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from .. import __version__
from ..config import get_preset
from ..device import make_generator, resolve_device
from ..evaluate import evaluate
from ..fast import fast_backward
from ..model import DRAW
from ..trace import record_trace
from .measure import count_flops, matmul_gflops, median_rate, median_seconds, peak_memory_mb

Log = Callable[[str], None]


def _training_step(model: DRAW, optimizer: torch.optim.Optimizer, x: torch.Tensor, fast: bool):
    generator = make_generator(x.device, 0)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        if fast:
            fast_backward(model, x, generator)
        else:
            model(x, generator=generator)[0].bound.mean().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        if x.device.type == "cuda":
            torch.cuda.synchronize()
    return step


def training_rates(device: torch.device, batch: int, windows: int, log: Log) -> dict:
    """Fast and plain training images/s at the mnist-paper preset for one batch size."""
    torch.manual_seed(0)
    model = DRAW(get_preset("mnist-paper").model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.5, 0.999))
    x = torch.bernoulli(torch.full((batch, 1, 28, 28), 0.15), generator=torch.Generator().manual_seed(0)).to(device)
    result = {}
    for name, fast in (("fast", True), ("plain", False)):
        step = _training_step(model, optimizer, x, fast)
        result[name] = median_rate(step, batch, windows=windows, calls_per_window=1, warmup=1)
        log(f"  train batch {batch} {name}: {result[name]:.1f} images/s")
    return result


def run_benchmark(device_name: str = "auto", quick: bool = False, gui: bool = True, log: Log = print,
                  data_dir: str | None = None) -> dict:
    """Run every measurement; returns a flat dict (the ``--json`` output).

    Parameters
    ----------
    quick : bool
        Fewer timed windows (for a smoke test); the numbers are noisier.
    gui : bool
        Also measure the window's event-loop latency while it trains (needs PySide6).
    data_dir : str, optional
        Where the window's latency run finds MNIST (default: the usual search).
    """
    device = resolve_device(device_name)
    windows = 3 if quick else 5
    out: dict = {"device": str(device), "torch_version": torch.__version__, "threads": torch.get_num_threads(),
                 "draw_studio_version": __version__, "preset": "mnist-paper"}
    log(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    peak = matmul_gflops(device=device)
    out["matmul_gflops"] = peak
    log(f"  fp32 matmul peak: {peak:.1f} GFLOP/s")

    model = DRAW(get_preset("mnist-paper").model).to(device)
    probe = torch.zeros(4, 1, 28, 28, device=device).bernoulli_(0.15)
    flops = count_flops(lambda: model(probe)[0].bound.mean().backward()) / len(probe)
    out["train_flops_per_image"] = flops
    log(f"  training FLOPs per image: {flops / 1e6:.0f} MFLOP")

    for batch in (64, 256):
        rates = training_rates(device, batch, windows if batch == 64 else max(windows - 2, 2), log)
        out[f"train_b{batch}_images_per_s"] = rates["fast"]
        out[f"plain_train_b{batch}_images_per_s"] = rates["plain"]
        out[f"train_b{batch}_speedup_vs_plain"] = rates["fast"] / rates["plain"]
        out[f"train_b{batch}_matmul_utilisation"] = rates["fast"] * flops / (peak * 1e9)

    model.eval()
    generator = make_generator(device, 0)

    def generate() -> None:
        with torch.inference_mode():
            model.generate(64, generator=generator, record=True)
    out["generate_64x64_trace_ms"] = median_seconds(generate, repeats=windows) * 1000
    log(f"  generation, 64 samples with the full trace: {out['generate_64x64_trace_ms']:.0f} ms")

    images = np.random.default_rng(0).random((500, 1, 28, 28), dtype=np.float32).round()
    out["trace_images_per_s"] = median_rate(lambda: record_trace(model, images=images[:200], batch_size=200),
                                            200, windows=max(windows - 2, 2), calls_per_window=1)
    log(f"  trace recording: {out['trace_images_per_s']:.0f} images/s")
    out["eval_images_per_s"] = median_rate(lambda: evaluate(model, images, batch_size=500), 500,
                                           windows=max(windows - 2, 2), calls_per_window=1)
    log(f"  eval: {out['eval_images_per_s']:.0f} images/s")
    if gui:
        out.update(gui_latency(log, seconds=6 if quick else 12, data_dir=data_dir))
    out["peak_memory_mb"] = peak_memory_mb()
    return out


def gui_latency(log: Log, seconds: float, data_dir: str | None = None) -> dict:
    """Event-loop latency of the window while its worker trains mnist-paper on MNIST (subprocess, offscreen)."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    command = [sys.executable, "-m", "draw_studio.gui.latency_run", "--seconds", str(seconds), "--json"]
    if data_dir:
        command += ["--data-dir", str(data_dir)]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        log("  GUI latency: timed out")
        return {"gui_latency_error": "timed out"}
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        log(f"  GUI latency: not measured ({reason})")
        return {"gui_latency_error": reason}
    lines = done.stdout.strip().splitlines()
    if not lines:
        log("  GUI latency: not measured (the window printed nothing)")
        return {"gui_latency_error": "no output"}
    values = json.loads(lines[-1])
    log(f"  GUI event-loop latency while training: p50 {values['gui_latency_p50_ms']:.1f} ms, "
        f"p99 {values['gui_latency_p99_ms']:.1f} ms ({time.perf_counter() - started:.0f} s)")
    return values
