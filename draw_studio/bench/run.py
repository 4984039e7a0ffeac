"""The benchmark itself: what ``draw-studio bench`` measures and prints."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from .. import __version__
from ..config import get_preset
from ..device import resolve_device, synchronize
from ..evaluate import evaluate
from ..handwritten_step import compile_wanted, fast_backward
from ..model import DRAW
from ..seeding import make_generator
from ..trace import TraceInputs, record_trace
from .event_loop import log_event_loop
from .explore import explore_drag, explore_speed
from .measure import alternating_rates, count_flops, matmul_gflops, median_rate, median_seconds, peak_memory_mb

Log = Callable[[str], None]
PRESET = "mnist-paper"
LOG_ROWS, LOG_ROWS_QUICK = 1_000_000, 200_000  # rows of the training log the window opens


def training_step(model: DRAW, optimizer: torch.optim.Optimizer, x: torch.Tensor, fast: bool,
                  compile: bool | None = None) -> Callable[[], None]:
    """One optimiser step as training does it: the fast path or plain autograd through ``DRAW.forward``."""
    generator = make_generator(x.device, 0)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        if fast:
            fast_backward(model, x, generator, compile=compile)
        else:
            model(x, generator=generator)[0].bound.mean().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        synchronize(x.device)  # CUDA and MPS run asynchronously: time the work, not its queueing
    return step


def training_rates(device: torch.device, batch: int, windows: int, log: Log, preset: str = PRESET,
                   compile: bool | None = None) -> dict:
    """Fast and plain training images/s for one batch size, timed in turns (fast, plain, fast, ...).

    Returns
    -------
    dict
        ``fast``, ``plain`` (median images/s) and ``compile_seconds``: how much longer the fast
        path's first call took than a later one (compiling; 0 when it does not compile).
    """
    torch.manual_seed(0)
    model = DRAW(get_preset(preset).model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.5, 0.999))
    cfg = model.config
    x = torch.bernoulli(torch.full((batch, cfg.channels, cfg.height, cfg.width), 0.15),
                        generator=torch.Generator().manual_seed(0)).to(device)
    works = {"fast": training_step(model, optimizer, x, True, compile),
             "plain": training_step(model, optimizer, x, False)}
    calls = max(1, 128 // batch)  # windows of >= 128 images
    rates, first = alternating_rates(works, batch, windows=windows, calls_per_window=calls)
    compiled = compile_wanted(model, x, compile)
    result = {**rates, "compile_seconds": max(0.0, first["fast"] - batch / rates["fast"]) if compiled else 0.0}
    log(f"  train batch {batch}: fast {rates['fast']:.1f}, plain {rates['plain']:.1f} images/s "
        f"({rates['fast'] / rates['plain']:.2f}x; fast path {'compiled' if compiled else 'eager'}"
        + (f", compiling took {result['compile_seconds']:.0f} s)" if compiled else ")"))
    return result


def run_benchmark(device_name: str = "auto", quick: bool = False, gui: bool = True, log: Log = print,
                  compile: bool | None = None, batches: tuple[int, int] = (64, 256),
                  preset: str = PRESET, data_dir: str | None = None) -> dict:
    """Run every measurement; returns a flat dict (the ``--json`` output).

    Parameters
    ----------
    quick : bool
        Fewer timed windows (for a smoke test); the numbers are noisier.
    gui : bool
        Also measure the window's event-loop latency while it trains, how long opening,
        smoothing and exporting a big training log block it, and the window while a latent's
        slider is dragged (``explore_drag_*``; needs PySide6).
    compile : bool, optional
        Passed to ``fast_backward`` (None: its default, see ``draw_studio.handwritten_step.compile_wanted``).
    batches : (int, int)
        The two training batch sizes; the keys keep the names ``b64`` / ``b256`` (tests use
        tiny ones).
    preset : str
        Model preset of the training, FLOP and generation measurements.
    data_dir : str, optional
        Where the window's latency run finds MNIST (default: the usual search; random binary
        images of MNIST's shape when it is not found).
    """
    device = resolve_device(device_name)
    windows = 3 if quick else 5
    training_windows = {"b64": 3 if quick else 9, "b256": 2 if quick else 5}  # medians of turns (~1.5 / 3 s each)
    out: dict = {"device": str(device), "torch_version": torch.__version__, "threads": torch.get_num_threads(),
                 "draw_studio_version": __version__, "preset": preset}
    log(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    peak = matmul_gflops(size=1024 if quick else 2048, device=device)
    out["matmul_gflops"] = peak
    log(f"  fp32 matmul peak: {peak:.1f} GFLOP/s")

    model = DRAW(get_preset(preset).model).to(device)
    cfg = model.config
    probe = torch.zeros(4, cfg.channels, cfg.height, cfg.width, device=device).bernoulli_(0.15)
    flops = count_flops(lambda: model(probe)[0].bound.mean().backward()) / len(probe)
    out["train_flops_per_image"] = flops
    log(f"  training FLOPs per image: {flops / 1e6:.0f} MFLOP")

    out["compile_seconds"] = 0.0
    for name, batch in zip(("b64", "b256"), batches):
        rates = training_rates(device, batch, training_windows[name], log, preset, compile)
        out[f"train_{name}_images_per_s"] = rates["fast"]
        out[f"plain_train_{name}_images_per_s"] = rates["plain"]
        out[f"train_{name}_speedup_vs_plain"] = rates["fast"] / rates["plain"]
        out[f"train_{name}_matmul_utilisation"] = rates["fast"] * flops / (peak * 1e9)
        out["compile_seconds"] += rates["compile_seconds"]

    model.eval()
    generator = make_generator(device, 0)

    def generate() -> None:
        with torch.inference_mode():
            model.generate(64, generator=generator, record=True)
    out["generate_64x64_trace_ms"] = median_seconds(generate, repeats=windows) * 1000
    log(f"  generation, 64 samples with the full trace: {out['generate_64x64_trace_ms']:.0f} ms")

    count = 100 if quick else 500
    images = np.random.default_rng(0).random((count, cfg.channels, cfg.height, cfg.width), dtype=np.float32).round()
    traced = min(200, count)
    inputs = TraceInputs(images=images[:traced])
    out["trace_images_per_s"] = median_rate(lambda: record_trace(model, inputs, batch_size=traced), traced,
                                            windows=max(windows - 2, 2), calls_per_window=1)
    log(f"  trace recording: {out['trace_images_per_s']:.0f} images/s")
    out["eval_images_per_s"] = median_rate(lambda: evaluate(model, images, batch_size=count), count,
                                           windows=max(windows - 2, 2), calls_per_window=1)
    log(f"  eval: {out['eval_images_per_s']:.0f} images/s")
    out.update(explore_speed(log, device, preset, quick))
    if gui:
        out.update(gui_latency(log, seconds=6 if quick else 12, data_dir=data_dir))
        out.update(gui_latency(log, seconds=6 if quick else 12, data_dir=data_dir, scrub_hz=30.0))
        out.update(log_event_loop(log, rows=LOG_ROWS_QUICK if quick else LOG_ROWS))
        out.update(explore_drag(log, seconds=4 if quick else 8, data_dir=data_dir))
    out["peak_memory_mb"] = peak_memory_mb()
    return out


def gui_latency(log: Log, seconds: float, data_dir: str | None = None, scrub_hz: float = 0.0) -> dict:
    """Event-loop latency of the window while its worker trains mnist-paper on MNIST (subprocess, offscreen).

    With ``scrub_hz`` > 0 the timeline is also moved that many steps a second (a user scrubbing
    while it trains) and the keys start with ``gui_scrub_`` instead of ``gui_``.
    """
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    command = [sys.executable, "-m", "draw_studio.gui.latency_run", "--seconds", str(seconds), "--json",
               "--scrub-hz", str(scrub_hz)]
    what = "while scrubbing and training" if scrub_hz > 0 else "while training"
    prefix = "gui_scrub_" if scrub_hz > 0 else "gui_"
    if data_dir:
        command += ["--data-dir", str(data_dir)]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        log(f"  GUI latency {what}: timed out")
        return {f"{prefix}latency_error": "timed out"}
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        log(f"  GUI latency {what}: not measured ({reason})")
        return {f"{prefix}latency_error": reason}
    lines = done.stdout.strip().splitlines()
    if not lines:
        log(f"  GUI latency {what}: not measured (the window printed nothing)")
        return {f"{prefix}latency_error": "no output"}
    values = json.loads(lines[-1])
    log(f"  GUI event-loop latency {what}: p50 {values['gui_latency_p50_ms']:.1f} ms, "
        f"p99 {values['gui_latency_p99_ms']:.1f} ms ({time.perf_counter() - started:.0f} s)")
    return {prefix + key[len("gui_"):]: value for key, value in values.items()}
