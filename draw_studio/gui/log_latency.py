"""``python -m draw_studio.gui.log_latency``: how long a big training log blocks the window's event loop.

Used by ``draw-studio bench`` in a subprocess (offscreen). Writes a training log of ``--rows`` rows
with the real writer (``TrainingLogWriter``) in a temporary folder, opens the real main window with
isolated settings at 1280x800, and measures with a 10 ms timer (:class:`~draw_studio.gui.latency.LatencyProbe`)
the longest the event loop could not react while the window opens the log, while a smoothing change
is drawn and while the curves are exported as CSV. Prints one JSON object: ``log_open_block_ms``,
``log_smoothing_block_ms``, ``log_csv_export_block_ms`` (the longest lateness of a tick, in ms) and
``log_open_s``, ``log_smoothing_s``, ``log_csv_export_s`` (until the work was done), ``log_rows``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SETTLE_S = 0.5  # the probe keeps running this long after the work is done (the redraws that follow count)


def write_big_log(path: Path, rows: int, seed: int = 0) -> None:
    """A training log of ``rows`` steps (a decaying noisy bound, validation every 1,000 steps, a cosine
    learning rate), written by the real writer in one flush."""
    from ..config import TrainConfig, get_preset
    from ..training_log import TrainingLogWriter

    rng = np.random.default_rng(seed)
    steps = np.arange(1, rows + 1)  # (rows,)
    bound = 200.0 * np.exp(-steps / max(rows / 5, 1)) + 90.0 + rng.normal(0.0, 3.0, rows)
    kl = 20.0 + rng.normal(0.0, 1.0, rows)
    lr = 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + np.cos(np.pi * steps / rows))
    table = list(zip(steps.tolist(), (0.05 * steps).tolist(), bound.tolist(), (bound - kl).tolist(), kl.tolist(),
                     lr.tolist()))
    config = TrainConfig(preset="tiny", steps=rows, lr_schedule="cosine")
    with TrainingLogWriter(path, get_preset("tiny").model, config, flush_every_s=3600.0) as log:
        log.append_steps(table)
        for step in range(1000, rows + 1, 1000):
            log.append_eval(step, float(bound[step - 1]) + 2.0)


def measure(window, action, done, timeout_s: float = 300.0) -> tuple[float, float]:
    """(longest lateness in ms, seconds until ``done()``) of the event loop while ``action()`` runs in it."""
    from PySide6.QtCore import QTimer

    from .latency import LatencyProbe, run_event_loop_until

    probe = LatencyProbe(10)
    probe.start()
    run_event_loop_until(lambda: False, 0.2)
    probe.reset()
    fired: list[float] = []
    QTimer.singleShot(0, lambda: (fired.append(time.perf_counter()), action()))
    if not run_event_loop_until(lambda: bool(fired) and done(), timeout_s):
        raise RuntimeError("the window did not finish in time")
    took = time.perf_counter() - fired[0]
    run_event_loop_until(lambda: False, SETTLE_S)
    probe.stop()
    return probe.summary()["max"], took


def measure_log(rows: int, folder: Path) -> dict:
    """The three figures for a log of ``rows`` rows (see the module's docstring)."""
    from PySide6.QtCore import QSettings

    from .app import GUI_SWITCH_INTERVAL_S, ensure_application, settle_heap
    from .latency import run_event_loop_until
    from .main_window import MainWindow

    sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)
    path = folder / "big.log.h5"
    write_big_log(path, rows)
    ensure_application()
    window = MainWindow(settings=QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat),
                        interactive=False)
    window.resize(1280, 800)
    window.show()
    run_event_loop_until(lambda: False, 1.0)
    settle_heap()  # as the window's own start (app.run_window)
    panel = window.training
    curves = panel.curves
    try:
        open_ms, open_s = measure(window, lambda: window.open_path(path),
                                  lambda: panel.history.train.size == rows and not curves.busy)
        weight = curves.smoothing.value()
        smoothing_ms, smoothing_s = measure(window, lambda: curves.smoothing.setValue(90 if weight != 90 else 80),
                                            lambda: not curves.busy)
        target = folder / "curves.csv"
        csv_ms, csv_s = measure(window, lambda: panel.export_csv(str(target)),
                                lambda: target.is_file() and not curves.busy)
    finally:
        window.close()
    return {"log_rows": rows, "log_open_block_ms": open_ms, "log_smoothing_block_ms": smoothing_ms,
            "log_csv_export_block_ms": csv_ms, "log_open_s": open_s, "log_smoothing_s": smoothing_s,
            "log_csv_export_s": csv_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m draw_studio.gui.log_latency")
    parser.add_argument("--rows", type=int, default=1_000_000, help="training rows of the log")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    from .app import offscreen_if_headless

    offscreen_if_headless()
    folder = Path(tempfile.mkdtemp(prefix="draw-studio-log-latency-"))
    try:
        result = measure_log(args.rows, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result) if args.json else result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
