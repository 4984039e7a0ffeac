"""How long a big training log blocks the window's event loop (``draw-studio bench``; no Qt here).

The measuring runs in a subprocess, ``python -m draw_studio.gui.log_latency``, offscreen: this
module only starts it and reads its JSON line, so the benchmark stays headless and imports no Qt.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

Log = Callable[[str], None]
KEYS = ("log_open_block_ms", "log_smoothing_block_ms", "log_csv_export_block_ms")
QT_PACKAGES = ("PySide6", "pyqtgraph")


def missing_qt() -> str | None:
    """The first package the window needs that is not installed (None: all are)."""
    for name in QT_PACKAGES:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None


def log_event_loop(log: Log, rows: int = 1_000_000, timeout_s: float = 600.0) -> dict:
    """Longest event-loop block (ms) of the window opening a ``rows``-row training log, changing the
    smoothing and exporting the curves as CSV.

    Returns
    -------
    dict
        ``log_open_block_ms``, ``log_smoothing_block_ms``, ``log_csv_export_block_ms``, the
        seconds each took (``log_open_s``...) and ``log_rows``; or only ``log_event_loop_error``
        (one line) when it could not be measured, e.g. without PySide6.
    """
    missing = missing_qt()
    if missing is not None:
        reason = f"{missing} is not installed (pip install 'draw-studio[gui]')"
        log(f"  window on a big training log: not measured ({reason})")
        return {"log_event_loop_error": reason}
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    command = [sys.executable, "-m", "draw_studio.gui.log_latency", "--rows", str(rows), "--json"]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log("  window on a big training log: timed out")
        return {"log_event_loop_error": "timed out"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        log(f"  window on a big training log: not measured ({reason})")
        return {"log_event_loop_error": reason}
    values = json.loads(lines[-1])
    log(f"  window on a {rows:,}-row training log, longest event-loop block: opening "
        f"{values['log_open_block_ms']:.0f} ms, smoothing change {values['log_smoothing_block_ms']:.0f} ms, "
        f"CSV export {values['log_csv_export_block_ms']:.0f} ms ({time.perf_counter() - started:.0f} s)")
    return values
