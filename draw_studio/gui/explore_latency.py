"""``python -m draw_studio.gui.explore_latency``: the window while a user drags the Edit-a-latent slider.

Used by ``draw-studio bench`` in a subprocess (offscreen). Opens the real main window with isolated
settings on the shipped model (else an untrained mnist-paper model; ``--checkpoint`` another),
selects latent cell (t, k) of the shown image as a click on the Latents heatmap does, and moves the
slider back and forth across its whole range ``--hz`` times a second for ``--seconds`` (each move a
``QSlider.setValue``: the signal path a mouse drag takes, into the panel's own code). It prints one
JSON object; the keys start with ``explore_drag_``:

- ``latency_p50_ms`` / ``p99`` / ``max``: lateness of a 10 ms timer while dragging
  (:class:`~draw_studio.gui.latency.LatencyProbe`): how long the window could not react;
- ``moves``: slider moves made; ``frames``: redraws of the panel that showed a new regeneration,
  and ``frames_per_s``;
- ``move_to_frame_median_ms`` / ``p95``: from a move to the redraw that showed the image drawn
  for it (moves the panel skipped, because a later one was already asked for, have none);
- ``regenerate_median_ms`` / ``p95``: wall time of the regenerations in the background thread;
- ``redraw_median_ms`` / ``p95``: how long the panel's redraw of a new regeneration took.
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

DEFAULT_SECONDS = 8.0
DEFAULT_HZ = 30.0
SWEEP_S = 2.0  # one pass of the slider from one end to the other


class DragMeter:
    """Moves the latent editor's slider on a timer and records what the panel shows and when.

    Parameters
    ----------
    panel : LatentEditPanel
        With a cell selected.
    hz : float
        Slider moves per second.
    """

    def __init__(self, panel, hz: float) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.panel = panel
        self.moves = 0
        self.moved_at: dict[int, float] = {}  # slider position -> time of its latest move
        self.delays: list[float] = []  # seconds from a move to the redraw showing it
        self.regenerations: list[float] = []  # seconds, as the panel's LatestRun measured them
        self.redraws: list[float] = []  # seconds the panel's redraws of a new regeneration took
        self.frames = 0
        self._shown = None
        self._started = 0.0
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(max(1, int(round(1000 / hz))))
        self.timer.timeout.connect(self._move)
        panel.runs.done.connect(self._on_done)
        redraw = panel.redraw

        def redraw_and_record() -> None:
            started = time.perf_counter()
            redraw()
            edited = panel.edited
            if edited is not None and edited is not self._shown and panel.edited_value is not None:
                self.redraws.append(time.perf_counter() - started)
                self._shown = edited
                self.frames += 1
                moved = self.moved_at.get(self._position(panel.edited_value))
                if moved is not None:
                    self.delays.append(time.perf_counter() - moved)

        panel.redraw = redraw_and_record  # this instance only; :meth:`close` puts the class's back

    def _on_done(self, *_) -> None:
        self.regenerations.append(self.panel.runs.last_seconds)

    @staticmethod
    def _position(value: float) -> int:
        from .latent_edit_panel import TICKS

        return int(round(value * TICKS))

    def _move(self) -> None:
        slider = self.panel.slider
        low, high = slider.minimum(), slider.maximum()
        phase = ((time.perf_counter() - self._started) / SWEEP_S) % 2.0  # 0..2: up, then down
        fraction = phase if phase <= 1.0 else 2.0 - phase
        position = int(round(low + (high - low) * fraction))
        if position == slider.value():
            return
        self.moved_at[position] = time.perf_counter()
        self.moves += 1
        slider.setValue(position)

    def start(self) -> None:
        self.frames, self.moves = 0, 0
        self.delays.clear()
        self.regenerations.clear()
        self.redraws.clear()
        self._started = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def close(self) -> None:
        """Stop, and leave the panel as it was."""
        self.timer.stop()
        self.panel.runs.done.disconnect(self._on_done)
        del self.panel.redraw


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    """(median, p95) in ms; NaN without values."""
    if not seconds:
        return float("nan"), float("nan")
    median, p95 = np.percentile(np.asarray(seconds) * 1000, [50, 95])
    return float(median), float(p95)


def measure_drag(window, seconds: float = DEFAULT_SECONDS, hz: float = DEFAULT_HZ, step: int | None = None,
                 latent: int = 0, timeout_s: float = 120.0) -> dict:
    """Drag the latent slider of the open document's shown image; the figures of the module docstring.

    ``step`` (0..T-1, default 0: the longest regeneration, every step) and ``latent`` name the cell.
    """
    from .latency import LatencyProbe, run_event_loop_until

    document = window.document
    if document.trace is None:
        raise RuntimeError("the window shows no trace to edit")
    step = 0 if step is None else step
    window.explore.edit_cell(step, latent)  # what a click on the Latents heatmap does
    panel = window.explore.latent
    if panel.cell != (step, latent):
        raise RuntimeError(f"the latent editor did not take cell ({step}, {latent}): {panel.message.text()}")
    if not run_event_loop_until(lambda: panel.edited is not None, timeout_s):
        raise RuntimeError("the first regeneration did not arrive in time")
    meter = DragMeter(panel, hz)
    probe = LatencyProbe(10)
    try:
        probe.start()
        run_event_loop_until(lambda: False, 0.5)  # settle: the first redraws
        probe.reset()
        meter.start()
        run_event_loop_until(lambda: False, seconds)
        meter.stop()
        dragged = probe.summary()
        probe.stop()
        run_event_loop_until(lambda: not panel.runs.pending, timeout_s)
        run_event_loop_until(lambda: False, 0.1)  # the last redraw
    finally:
        probe.stop()
        meter.close()
    delay_median, delay_p95 = _percentiles(meter.delays)
    regenerate_median, regenerate_p95 = _percentiles(meter.regenerations)
    redraw_median, redraw_p95 = _percentiles(meter.redraws)
    return {"explore_drag_latency_p50_ms": dragged["p50"], "explore_drag_latency_p90_ms": dragged["p90"],
            "explore_drag_latency_p99_ms": dragged["p99"], "explore_drag_latency_max_ms": dragged["max"],
            "explore_drag_ticks": dragged["count"], "explore_drag_moves": meter.moves,
            "explore_drag_frames": meter.frames, "explore_drag_frames_per_s": meter.frames / seconds,
            "explore_drag_move_to_frame_median_ms": delay_median, "explore_drag_move_to_frame_p95_ms": delay_p95,
            "explore_drag_regenerations": len(meter.regenerations),
            "explore_drag_regenerate_median_ms": regenerate_median, "explore_drag_regenerate_p95_ms": regenerate_p95,
            "explore_drag_redraw_median_ms": redraw_median, "explore_drag_redraw_p95_ms": redraw_p95,
            "explore_drag_seconds": seconds, "explore_drag_hz": hz, "explore_drag_step": step,
            "explore_drag_latent": latent}


def drag_figures(window, checkpoint: str | None = None, seconds: float = DEFAULT_SECONDS, hz: float = DEFAULT_HZ,
                 step: int = 0, latent: int = 0) -> dict:
    """Open ``checkpoint`` (default: the startup model) in ``window`` and :func:`measure_drag`; with
    ``explore_drag_model`` (its file name) and ``explore_drag_trace`` (the mode of the edited trace)."""
    if not window.open_startup(checkpoint):
        raise RuntimeError(window.last_error or f"could not open {checkpoint or 'the startup model'}")
    window.redraw_now()
    loaded, trace = window.document.model, window.document.trace
    result = measure_drag(window, seconds, hz, step, latent)
    result["explore_drag_model"] = Path(loaded.path).name if loaded.path else "untrained mnist-paper"
    result["explore_drag_trace"] = trace.mode
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m draw_studio.gui.explore_latency")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="how long to drag")
    parser.add_argument("--hz", type=float, default=DEFAULT_HZ, help="slider moves per second")
    parser.add_argument("--checkpoint", default=None,
                        help="model to open (default: the shipped one, else an untrained mnist-paper model)")
    parser.add_argument("--data-dir", default=None, help="folder with MNIST: the window then shows reconstructions "
                                                         "of test images too (default: the usual search)")
    parser.add_argument("--step", type=int, default=0, help="trace step s of the edited latent z_s (0..T-1)")
    parser.add_argument("--latent", type=int, default=0, help="index k of the edited latent")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    from .app import GUI_SWITCH_INTERVAL_S, ensure_application, offscreen_if_headless
    offscreen_if_headless()
    sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)  # as the window's own start (app.run_window)
    import torch
    from PySide6.QtCore import QSettings

    from .main_window import MainWindow
    from .worker import training_threads

    torch.set_num_threads(training_threads())
    ensure_application()
    folder = Path(tempfile.mkdtemp(prefix="draw-studio-explore-latency-"))
    window = MainWindow(settings=QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat),
                        interactive=False)
    if args.data_dir:
        window.training.data_dir.setText(str(args.data_dir))
    window.resize(1280, 800)
    window.show()
    try:
        result = drag_figures(window, args.checkpoint, args.seconds, args.hz, args.step, args.latent)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        window.explore.wait()
        window.close()
        shutil.rmtree(folder, ignore_errors=True)  # its settings file
    print(json.dumps(result) if args.json else result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
