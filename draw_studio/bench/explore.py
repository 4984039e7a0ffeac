"""Speed of the explore tools (``draw_studio.explore``) at the mnist-paper preset.

What the window needs to feel live: regenerating steps t..T-1 of one image after an edit of z_t
(p95, target 30 ms: a dragged slider at 30 frames per second), a fork of K = 16 continuations
(target 100 ms), the commitment curve over every t with K = 16 (target 2 s) and a drawing (a PNG
file) to its reconstruction trace (target 100 ms). Measured on one PyTorch thread, as
``draw-studio explore`` runs by default (these small steps gain nothing from more). Also the time
to run steps s..T-1 again after a window of step s moved (:class:`WindowMover`, a dragged window).

:func:`explore_drag` measures the window itself while a user drags the Edit-a-latent slider, in a
subprocess (``python -m draw_studio.gui.explore_latency``, offscreen): this module imports no Qt.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import default_checkpoint, load_model
from ..config import get_preset
from ..explore import LatentEditor, WindowMover, commitment, fork, reconstruct_image
from ..model import DRAW
from ..trace import TraceInputs, record_trace
from .event_loop import missing_qt
from .measure import wall_times

Log = Callable[[str], None]
K = 16


def _times(work: Callable[[], None], repeats: int, warmup: int = 2) -> list[float]:
    """Wall times (s) of ``repeats`` calls after ``warmup`` calls."""
    return wall_times(work, repeats, warmup)


def _p95(times: list[float]) -> float:
    return float(np.percentile(times, 95))


def _stroke_png(folder: Path, side: int = 120) -> Path:
    """A hand-drawn-like picture: a dark ring and a bar on white paper, ``side`` pixels square."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(image)
    draw.ellipse((side * 0.3, side * 0.15, side * 0.7, side * 0.55), outline=0, width=side // 12)
    draw.line((side * 0.62, side * 0.4, side * 0.45, side * 0.9), fill=0, width=side // 12)
    path = folder / "drawing.png"
    image.save(path)
    return path


def bench_model(preset: str, device: torch.device) -> tuple[DRAW, str]:
    """The shipped model when it has this preset's settings (real attention), else a fresh one."""
    shipped = default_checkpoint()
    wanted = get_preset(preset).model
    if shipped is not None:
        model, _ = load_model(shipped, device)
        if model.config == wanted:
            return model, "shipped"
    torch.manual_seed(0)
    return DRAW(wanted).to(device).eval(), "fresh"


def explore_speed(log: Log, device: torch.device, preset: str = "mnist-paper", quick: bool = False) -> dict:
    """The four explore figures (module docstring) and a few more; keys start with ``explore_``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(log, device, preset, quick)
    finally:
        torch.set_num_threads(threads)


def _measure(log: Log, device: torch.device, preset: str, quick: bool) -> dict:
    model, which = bench_model(preset, device)
    cfg = model.config
    x = torch.zeros(1, cfg.channels, cfg.height, cfg.width).bernoulli_(0.15, generator=torch.Generator().manual_seed(0))
    trace = record_trace(model, TraceInputs(images=x.numpy(), seed=0), batch_size=1)
    rng = np.random.default_rng(0)
    editor = LatentEditor(model, trace, 0)
    edits = [(int(rng.integers(cfg.steps)), int(rng.integers(cfg.z_size)), float(rng.normal(0, 2)))
             for _ in range(40 if quick else 120)]
    queue = iter(edits * 2)
    times = _times(lambda: editor.regenerate(*next(queue)), len(edits) - 2)
    out = {"explore_model": which, "explore_threads": 1,
           "explore_edit_regenerate_p95_ms": _p95(times) * 1000,
           "explore_edit_regenerate_median_ms": statistics.median(times) * 1000}
    times = _times(lambda: editor.regenerate(0, 0, 2.5), 10 if quick else 30)
    out["explore_edit_regenerate_from_step0_p95_ms"] = _p95(times) * 1000
    log(f"  explore: regenerate after an edit, p95 {out['explore_edit_regenerate_p95_ms']:.1f} ms (random step), "
        f"{out['explore_edit_regenerate_from_step0_p95_ms']:.1f} ms (from step 0)")
    if cfg.write_attention or cfg.read_attention:
        out.update(_window_speed(log, model, trace, rng, 40 if quick else 120))
    times = _times(lambda: fork(model, trace, 0, cfg.steps // 4, K, seed=0), 5 if quick else 15)
    out["explore_fork16_ms"] = statistics.median(times) * 1000
    out["explore_fork16_p95_ms"] = _p95(times) * 1000
    log(f"  explore: fork of K={K}: {out['explore_fork16_ms']:.0f} ms (p95 {out['explore_fork16_p95_ms']:.0f} ms)")
    times = _times(lambda: commitment(model, trace, 0, K, seed=0), 1 if quick else 3, warmup=1)
    out["explore_commitment16_s"] = statistics.median(times)
    log(f"  explore: commitment curve, every t, K={K}: {out['explore_commitment16_s']:.2f} s")
    with tempfile.TemporaryDirectory() as folder:
        picture = _stroke_png(Path(folder))
        times = _times(lambda: reconstruct_image(model, picture), 5 if quick else 15)
    out["explore_drawing_to_trace_ms"] = statistics.median(times) * 1000
    out["explore_drawing_to_trace_p95_ms"] = _p95(times) * 1000
    log(f"  explore: drawing to reconstruction trace: {out['explore_drawing_to_trace_ms']:.0f} ms "
        f"(p95 {out['explore_drawing_to_trace_p95_ms']:.0f} ms)")
    return out


def _window_speed(log: Log, model: DRAW, trace, rng: np.random.Generator, count: int) -> dict:
    """p95 and median of running steps s..T-1 again after the window of a random step s moved."""
    cfg = model.config
    mover = WindowMover(model, trace, 0)
    head = "write" if cfg.write_attention else "read"
    moves = [(int(rng.integers(cfg.steps)), float(rng.uniform(1, cfg.width)), float(rng.uniform(1, cfg.height)))
             for _ in range(count)]
    queue = iter(moves * 2)

    def move_one() -> None:
        step, gx, gy = next(queue)
        mover.regenerate(step, **{head: {"gx": gx, "gy": gy}})
    times = _times(move_one, count - 2)
    out = {"explore_window_regenerate_p95_ms": _p95(times) * 1000,
           "explore_window_regenerate_median_ms": statistics.median(times) * 1000}
    log(f"  explore: run again after a moved {head} window, p95 {out['explore_window_regenerate_p95_ms']:.1f} ms "
        "(random step; the encoder too for a reconstruction)")
    return out


def explore_drag(log: Log, seconds: float = 8.0, checkpoint: str | None = None, data_dir: str | None = None,
                 timeout_s: float = 240.0) -> dict:
    """The window while a user drags the Edit-a-latent slider (subprocess, offscreen).

    Parameters
    ----------
    seconds : float
        How long the slider is dragged (30 moves a second).
    checkpoint : str, optional
        The model the window opens (default: the shipped one, else an untrained mnist-paper model).
    data_dir : str, optional
        Where the window finds MNIST (then it edits a reconstruction of a test image).

    Returns
    -------
    dict
        The keys of :mod:`draw_studio.gui.explore_latency` (``explore_drag_latency_p99_ms``,
        ``explore_drag_frames``...), or only ``explore_drag_error`` (one line) when it could not be measured.
    """
    missing = missing_qt()
    if missing is not None:
        reason = f"{missing} is not installed (pip install 'draw-studio[gui]')"
        log(f"  window while dragging a latent: not measured ({reason})")
        return {"explore_drag_error": reason}
    command = [sys.executable, "-m", "draw_studio.gui.explore_latency", "--seconds", str(seconds), "--json"]
    command += ["--checkpoint", str(checkpoint)] if checkpoint else []
    command += ["--data-dir", str(data_dir)] if data_dir else []
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + timeout_s,
                              env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    except subprocess.TimeoutExpired:
        log("  window while dragging a latent: timed out")
        return {"explore_drag_error": "timed out"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        log(f"  window while dragging a latent: not measured ({reason})")
        return {"explore_drag_error": reason}
    values = json.loads(lines[-1])
    log(f"  window while dragging a latent (from step {values['explore_drag_step']}): "
        f"{values['explore_drag_frames_per_s']:.1f} frames/s, move to frame median "
        f"{values['explore_drag_move_to_frame_median_ms']:.0f} ms "
        f"(p95 {values['explore_drag_move_to_frame_p95_ms']:.0f}), "
        f"regenerate p95 {values['explore_drag_regenerate_p95_ms']:.0f} ms, event-loop p99 "
        f"{values['explore_drag_latency_p99_ms']:.1f} ms ({time.perf_counter() - started:.0f} s)")
    return values
