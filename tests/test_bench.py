"""The benchmark's measurements run and report sensible numbers (no timing assertions: tiny inputs)."""

import functools
import json
import math

import pytest
import torch

from draw_studio.bench import measure, run
from draw_studio.cli import main

JSON_KEYS = ("train_b64_images_per_s", "train_b256_images_per_s", "plain_train_b64_images_per_s",
             "plain_train_b256_images_per_s", "train_b64_speedup_vs_plain", "train_b256_matmul_utilisation",
             "matmul_gflops", "train_flops_per_image", "generate_64x64_trace_ms", "trace_images_per_s",
             "eval_images_per_s", "peak_memory_mb", "compile_seconds", "device", "torch_version", "threads")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_timing_helpers_return_finite_positive_numbers():
    work = functools.partial(torch.randn, 50, 50)
    assert positive(measure.median_rate(work, 10, windows=2, calls_per_window=1))
    assert positive(measure.median_seconds(work, repeats=2))
    rates, first = measure.alternating_rates({"a": work, "b": work}, 10, windows=2)
    assert set(rates) == set(first) == {"a", "b"} and all(map(positive, [*rates.values(), *first.values()]))
    assert positive(measure.matmul_gflops(size=64, repeats=2))
    assert measure.count_flops(lambda: torch.ones(8, 8) @ torch.ones(8, 8)) == 2 * 8 ** 3
    assert positive(measure.peak_memory_mb())


def test_training_rates_of_both_paths():
    rates = run.training_rates(torch.device("cpu"), 4, windows=1, log=lambda _: None, preset="tiny", compile=False)
    assert positive(rates["fast"]) and positive(rates["plain"]) and rates["compile_seconds"] == 0.0


def test_bench_command_prints_the_table_and_json_with_every_key(monkeypatch, capsys):
    tiny = functools.partial(run.run_benchmark, batches=(4, 8), preset="tiny")
    monkeypatch.setattr(run, "run_benchmark", lambda *args, **kwargs: tiny(*args, **kwargs))
    assert main(["bench", "--json", "--quick", "--no-gui", "--device", "cpu", "--threads", "1", "--no-compile"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert set(JSON_KEYS) <= set(result)
    assert "train_b64_speedup_vs_plain" in captured.err  # the table, on stderr with --json
    for key in JSON_KEYS:
        if key not in ("device", "torch_version", "compile_seconds"):
            assert positive(result[key]), key
    assert result["compile_seconds"] == 0.0 and result["threads"] == 1 and result["device"] == "cpu"
    assert not any(key.startswith("gui_") for key in result)


def test_the_bench_measures_how_long_a_big_training_log_blocks_the_window():
    pytest.importorskip("PySide6")
    from draw_studio.bench.event_loop import KEYS, log_event_loop

    lines: list[str] = []
    result = log_event_loop(lines.append, rows=20_000, timeout_s=300)
    assert "log_event_loop_error" not in result, result
    assert result["log_rows"] == 20_000
    for key in KEYS:
        assert isinstance(result[key], float) and 0 <= result[key] < 60_000, key
    assert "20,000-row training log" in lines[-1] and "CSV export" in lines[-1]


def test_the_bench_says_so_and_goes_on_when_qt_is_missing():
    import subprocess
    import sys

    code = ("import sys, json\n"
            "sys.modules['PySide6'] = None  # as if PySide6 were not installed\n"
            "from draw_studio.bench.event_loop import log_event_loop\n"
            "print(json.dumps(log_event_loop(lambda line: print(line, file=sys.stderr), rows=10)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    reason = "PySide6 is not installed (pip install 'draw-studio[gui]')"
    assert json.loads(done.stdout) == {"log_event_loop_error": reason}
    assert "not measured (PySide6 is not installed" in done.stderr


def test_the_help_states_no_duration_that_was_not_measured():
    import argparse

    from draw_studio.cli import build_parser

    commands = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    bench = commands.choices["bench"]
    assert "minute" not in bench.description  # it once said 2-3 minutes and the README about one: neither measured
    assert "--quick and --no-gui make it shorter" in bench.description
