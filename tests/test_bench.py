"""The benchmark's measurements run and give finite, positive numbers (no timing assertions)."""

import math

import torch

from draw_studio.bench.measure import count_flops, matmul_gflops, median_rate
from draw_studio.bench.run import training_rates
from draw_studio.config import get_preset
from draw_studio.model import DRAW


def test_flops_of_a_training_step_grow_with_the_batch():
    model = DRAW(get_preset("tiny").model)
    one = count_flops(lambda: model(torch.ones(1, 1, 28, 28))[0].bound.mean().backward())
    four = count_flops(lambda: model(torch.ones(4, 1, 28, 28))[0].bound.mean().backward())
    assert one > 0 and 3.5 * one < four < 4.5 * one


def test_rates_and_matmul_throughput_are_positive():
    assert matmul_gflops(size=128, repeats=2) > 0
    rate = median_rate(lambda: sum(range(1000)), 10, windows=2, calls_per_window=1, warmup=0)
    assert math.isfinite(rate) and rate > 0


def test_training_rates_measure_fast_and_plain_paths():
    rates = training_rates(torch.device("cpu"), batch=4, windows=1, log=lambda _: None)
    assert set(rates) == {"fast", "plain"}
    assert all(math.isfinite(v) and v > 0 for v in rates.values())
