"""``python -m draw_studio.gui.latency_run``: the window's event-loop latency while it trains.

Used by ``draw-studio bench`` in a subprocess (offscreen). Opens the real main
window with isolated settings, trains the mnist-paper preset at batch 64 in
the window's worker on MNIST (or, when MNIST is not found, on random binary
images of its shape: the speed of a step does not depend on the pixels), and
prints one JSON object with ``gui_latency_p50_ms``, ``gui_latency_p99_ms``
(lateness of a 10 ms timer) and ``gui_latency_data`` (which images).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m draw_studio.gui.latency_run")
    parser.add_argument("--seconds", type=float, default=12.0, help="how long to probe")
    parser.add_argument("--data-dir", default=None, help="folder with MNIST (default: the usual search)")
    parser.add_argument("--preset", default="mnist-paper", help="model preset to train (an MNIST-shaped one)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--scrub-hz", type=float, default=0.0,
                        help="also move the timeline this many steps a second while training (0: don't)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from ..data import locate
    from ..errors import DrawStudioError
    try:
        mnist = locate("mnist", args.data_dir, download=False)
    except DrawStudioError as exc:
        if args.data_dir:  # asked for a folder that does not hold it: say so
            print(exc, file=sys.stderr)
            return 2
        mnist = None

    from .app import GUI_SWITCH_INTERVAL_S, ensure_application, offscreen_if_headless
    offscreen_if_headless()
    sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)
    import torch
    from PySide6.QtCore import QSettings

    from .latency import measure_while_training
    from .main_window import MainWindow
    from .worker import training_threads

    torch.set_num_threads(training_threads())
    ensure_application()
    folder = Path(tempfile.mkdtemp(prefix="draw-studio-latency-"))  # settings and the run's files: removed after
    try:
        window = MainWindow(settings=QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat),
                            interactive=False)
        window.show()
        panel = window.training
        panel.preset.setCurrentText(args.preset)
        panel.batch_size.setValue(args.batch_size)
        if mnist is not None:
            panel.data_dir.setText(str(mnist))
        else:
            panel.set_datasets(random_binary_images(6000), random_binary_images(500))
        panel.checkpoint.setText(str(folder / "latency.ckpt"))
        summary = measure_while_training(window, seconds=args.seconds, scrub_hz=args.scrub_hz)
        window.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = {"gui_latency_p50_ms": summary["p50"], "gui_latency_p90_ms": summary["p90"],
              "gui_latency_p99_ms": summary["p99"], "gui_latency_max_ms": summary["max"],
              "gui_latency_ticks": summary["count"], "gui_latency_train_steps": summary["steps"],
              "gui_train_images_per_s": summary["steps"] * panel.batch_size.value() / args.seconds,
              "gui_latency_seconds": args.seconds, "gui_latency_scrub_hz": args.scrub_hz,
              "gui_latency_scrubbed_steps": summary["scrubbed"],
              "gui_latency_data": "mnist" if mnist is not None else "random"}
    print(json.dumps(result) if args.json else result)
    return 0


def random_binary_images(count: int, seed: int = 0):
    """``count`` random 0/1 images of MNIST's shape (1, 28, 28), as an ImageSet."""
    import numpy as np

    from ..data import ImageSet

    pixels = np.random.default_rng(seed).random((count, 1, 28, 28)) < 0.15  # (count, 1, 28, 28)
    return ImageSet(pixels.astype(np.uint8), None, True, "random binary images (MNIST not found)")


if __name__ == "__main__":
    raise SystemExit(main())
