"""Timing helpers: warm-up, then the median of several timed windows."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..device import synchronize


def median_rate(work: Callable[[], None], items_per_call: int, windows: int = 5, calls_per_window: int = 2,
                warmup: int = 1) -> float:
    """Items per second: median over ``windows`` timed windows after ``warmup`` calls."""
    for _ in range(warmup):
        work()
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(calls_per_window):
            work()
        rates.append(items_per_call * calls_per_window / (time.perf_counter() - start))
    return statistics.median(rates)


def alternating_rates(works: dict[str, Callable[[], None]], items_per_call: int, windows: int = 5,
                      calls_per_window: int = 1) -> tuple[dict[str, float], dict[str, float]]:
    """Items per second of several ways to do the same work, timed in turns (A B A B ...).

    Each work is called once first (warm-up: compiling, allocating); then ``windows`` rounds time
    ``calls_per_window`` calls of each in turn, so a change in the machine's load hits all alike.

    Returns
    -------
    rates : dict
        Median items/s per work.
    first_call_seconds : dict
        Wall time of each work's first call.
    """
    first = {}
    for name, work in works.items():
        start = time.perf_counter()
        work()
        first[name] = time.perf_counter() - start
    rates: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(windows):
        for name, work in works.items():
            start = time.perf_counter()
            for _ in range(calls_per_window):
                work()
            rates[name].append(items_per_call * calls_per_window / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}, first


def wall_times(work: Callable[[], None], repeats: int, warmup: int = 1) -> list[float]:
    """Wall times (s) of ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return times


def median_seconds(work: Callable[[], None], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of one call, after ``warmup`` calls."""
    return statistics.median(wall_times(work, repeats, warmup))


def matmul_gflops(size: int = 2048, repeats: int = 7, device: torch.device | None = None) -> float:
    """The machine's fp32 matrix-multiply throughput (GFLOP/s): median of square products."""
    device = device or torch.device("cpu")
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)

    def product() -> None:
        a @ b
        synchronize(device)

    seconds = median_seconds(product, repeats=repeats, warmup=2)
    return 2 * size ** 3 / seconds / 1e9


def count_flops(work: Callable[[], None]) -> int:
    """Floating-point operations of one call, counted by PyTorch's FLOP counter."""
    with FlopCounterMode(display=False) as counter:
        work()
    return int(counter.get_total_flops())


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
