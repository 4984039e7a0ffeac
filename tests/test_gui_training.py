"""Training from the window: Start / Pause / Resume / Stop, live curves and traces, errors, closing."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtWidgets import QMessageBox, QPushButton  # noqa: E402
from tiny_data import MNIST_DIR, mnist_slice  # noqa: E402

from draw_studio.checkpoint import load_model  # noqa: E402
from draw_studio.gui.history import TrainingHistory, exponential_moving_average  # noqa: E402
from draw_studio.gui.latency import LatencyProbe  # noqa: E402


def set_up_tiny(window, tmp_path, steps: int, given_data: bool = True):
    panel = window.training
    panel.preset.setCurrentText("tiny")
    panel.steps.setValue(steps)
    panel.batch_size.setValue(20)
    panel.validate_every.setValue(20)
    panel.device.setCurrentText("cpu")
    panel.data_dir.setText(str(MNIST_DIR))
    panel.checkpoint.setText(str(tmp_path / "run" / "tiny.ckpt"))
    panel.trace_every_s = 0.2
    panel.threads.setValue(1)  # tiny models: one thread is fastest
    if given_data:
        panel.set_datasets(mnist_slice("train", 300), mnist_slice("test", 60))
    return panel


def button(window, name: str) -> QPushButton:
    return window.findChild(QPushButton, name)


def test_start_trains_and_every_point_reaches_the_curves(window, tmp_path, qtbot):
    panel = set_up_tiny(window, tmp_path, steps=40)
    button(window, "startButton").click()
    qtbot.waitUntil(lambda: window.controller.state == "idle" and window.controller.trainer is not None,
                    timeout=30_000)
    window.redraw_now()
    assert panel.history.train.size == 40
    np.testing.assert_array_equal(panel.history.train.column("step"), np.arange(1, 41))
    x, _ = panel.curves.raw_items["bound"].getOriginalDataset()
    assert len(x) == 40
    assert panel.history.valid.size == 2  # steps 20 and 40
    assert panel.step_label.text() == "step 40 / 40" and panel.progress.value() == 40
    assert (tmp_path / "run" / "tiny.ckpt").is_file()
    assert window.information.kl_over_training  # live traces fed the KL-over-training heatmap
    assert window.information.heatmap.image.shape[1] == 4  # (traces, T)
    assert window.state.trace.mode == "reconstruct" and window.state.trace.n == 8
    assert button(window, "startButton").isEnabled() and button(window, "saveButton").isEnabled()
    panel.export_csv(str(tmp_path / "curves.csv"))
    with open(tmp_path / "curves.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sum(r["split"] == "train" for r in rows) == 40 and sum(r["split"] == "valid" for r in rows) == 2
    assert window.findChild(QMessageBox, "errorDialog") is None


def test_pause_resume_stop_and_save_while_paused(window, tmp_path, qtbot):
    set_up_tiny(window, tmp_path, steps=1_000_000)
    controller = window.controller
    button(window, "startButton").click()
    qtbot.waitUntil(lambda: window.training.history.train.size >= 5, timeout=30_000)
    pause = button(window, "pauseButton")
    pause.click()
    qtbot.waitUntil(lambda: controller.state == "paused", timeout=10_000)
    assert pause.text() == "Resume"
    held = controller.step
    qtbot.wait(300)
    assert controller.step == held
    window.training.save_checkpoint(str(tmp_path / "paused.ckpt"))  # served by the worker while paused
    qtbot.waitUntil(lambda: (tmp_path / "paused.ckpt").is_file(), timeout=10_000)
    assert load_model(tmp_path / "paused.ckpt")[1]["step"] == held
    window.gallery.ask_new_samples()  # the worker records samples from the model being trained
    qtbot.waitUntil(lambda: window.gallery.samples is not None, timeout=10_000)
    pause.click()
    qtbot.waitUntil(lambda: controller.state == "running" and controller.step > held + 3,
                    timeout=10_000)
    button(window, "stopButton").click()
    qtbot.waitUntil(lambda: controller.state == "idle", timeout=20_000)
    assert controller.trainer.step < 1_000_000
    assert load_model(tmp_path / "run" / "tiny.ckpt")[1]["step"] == controller.trainer.step


def test_a_corrupt_dataset_shows_a_message_and_the_window_stays_usable(window, tmp_path, qtbot):
    corrupt = tmp_path / "corrupt" / "mnist"
    corrupt.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (corrupt / name).write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 7)  # an IDX header cut short
    panel = set_up_tiny(window, tmp_path, steps=20, given_data=False)
    panel.data_dir.setText(str(corrupt.parent))
    button(window, "startButton").click()
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorDialog") is not None, timeout=20_000)
    qtbot.waitUntil(lambda: window.controller.state == "idle", timeout=10_000)
    box = window.findChild(QMessageBox, "errorDialog")
    assert "Training stopped" in box.text() and "truncated" in box.text()
    assert "truncated" in window.statusBar().currentMessage()
    assert button(window, "startButton").isEnabled()
    box.accept()
    set_up_tiny(window, tmp_path, steps=10)  # the same window trains fine afterwards
    button(window, "startButton").click()
    qtbot.waitUntil(lambda: window.controller.state == "idle" and window.training.history.train.size == 10,
                    timeout=30_000)


def test_closing_while_training_stops_the_worker_and_saves(make_window, tmp_path, qtbot):
    window = make_window()
    set_up_tiny(window, tmp_path, steps=1_000_000)
    window.close_prompt = lambda: "cancel"
    button(window, "startButton").click()
    qtbot.waitUntil(lambda: window.training.history.train.size >= 3, timeout=30_000)
    window.close()
    assert window.isVisible() and window.controller.active  # cancelled
    window.close_prompt = lambda: "save"
    window.close()
    assert not window.controller.active and not window.isVisible()
    assert load_model(tmp_path / "run" / "tiny.ckpt")[1]["step"] == window.controller.trainer.step


def test_closing_and_discarding_writes_no_final_checkpoint(make_window, tmp_path, qtbot):
    window = make_window()
    set_up_tiny(window, tmp_path, steps=1_000_000)
    window.close_prompt = lambda: "discard"
    button(window, "startButton").click()
    qtbot.waitUntil(lambda: window.training.history.train.size >= 3, timeout=30_000)
    window.close()
    assert not window.controller.active and window.controller.trainer.step >= 3
    assert not (tmp_path / "run" / "tiny.ckpt").exists()  # the run never reached a periodic checkpoint


def test_zoom_is_kept_while_points_arrive(window):
    curves = window.training.curves
    history = window.training.history
    history.add_steps([(s, s * 0.1, 100.0 - s * 0.01, 90.0, 10.0) for s in range(1, 101)])
    curves.refresh()
    assert not curves.user_zoomed
    curves.plot.setXRange(10, 20, padding=0)  # as a mouse zoom does
    assert curves.user_zoomed
    before = curves.plot.getViewBox().viewRange()[0]
    history.add_steps([(s, s * 0.1, 99.0, 90.0, 9.0) for s in range(101, 201)])
    curves.refresh()
    assert curves.plot.getViewBox().viewRange()[0] == before
    curves.fit()
    assert not curves.user_zoomed


def test_smoothing_extends_incrementally():
    values = np.random.default_rng(0).normal(size=500)
    values[17] = np.nan
    full = exponential_moving_average(values, 0.9)
    head = exponential_moving_average(values[:300], 0.9)
    np.testing.assert_allclose(exponential_moving_average(values, 0.9, 300, head), full)
    assert full[0] == values[0] and full[17] == full[16]
    history = TrainingHistory()
    history.add_steps([(1, 0.0, 1.0, 0.5, 0.5)] * 3000)  # grows past the first allocation
    assert history.train.size == 3000


def test_latency_probe_records_ticks(qtbot):
    probe = LatencyProbe(10)
    probe.start()
    qtbot.wait(250)
    probe.stop()
    summary = probe.summary()
    assert summary["count"] >= 10 and summary["p50"] >= 0 and summary["p99"] >= summary["p50"]


def run_latency(tmp_path, *arguments):
    import json
    import os
    import subprocess
    import sys

    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "DRAW_STUDIO_DATA": str(tmp_path / "data"), "TMPDIR": str(temp)}
    done = subprocess.run([sys.executable, "-m", "draw_studio.gui.latency_run", "--json", "--preset", "tiny",
                           "--batch-size", "16", *arguments], capture_output=True, text=True, env=env,
                          timeout=300)
    assert not any(temp.glob("draw-studio-latency-*"))  # its settings and run files are gone
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return done, (json.loads(lines[-1]) if lines else None)


def test_latency_run_trains_in_the_window_and_reports_the_event_loop_lateness(tmp_path):
    # no MNIST anywhere: random images of its shape; the timeline is scrubbed at 30 steps a second meanwhile
    done, result = run_latency(tmp_path, "--seconds", "2", "--scrub-hz", "30")
    assert done.returncode == 0, done.stderr[-2000:]
    assert result["gui_latency_scrub_hz"] == 30
    assert result["gui_latency_scrubbed_steps"] > 5  # the timeline moved while it trained
    assert result["gui_latency_data"] == "random" and result["gui_latency_train_steps"] > 0
    assert result["gui_latency_ticks"] > 0  # a 10 ms timer over 2 s (fewer ticks where redraws fill the loop)
    assert 0 <= result["gui_latency_p50_ms"] <= result["gui_latency_p99_ms"] <= result["gui_latency_max_ms"]
    assert result["gui_train_images_per_s"] == result["gui_latency_train_steps"] * 16 / 2


def test_latency_run_with_a_folder_without_mnist_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    done, result = run_latency(tmp_path, "--seconds", "1", "--data-dir", str(tmp_path / "empty"))
    assert done.returncode == 2 and result is None
    assert "mnist" in done.stderr.lower() and "Traceback" not in done.stderr


def test_an_opened_training_checkpoint_continues_exactly_and_its_curves_go_on(window, tmp_path, qtbot):
    from draw_studio.config import TrainConfig, get_preset
    from draw_studio.train import Trainer

    train_set, valid_set = mnist_slice("train", 300), mnist_slice("test", 60)
    config = TrainConfig(preset="tiny", batch_size=20, steps=6, seed=5, validate_every=0, checkpoint_every=0,
                         report_every=1, validation_limit=60)

    def run(steps, **kwargs):
        trainer = Trainer.from_options(get_preset("tiny").model, dataclasses.replace(config, steps=steps),
                                       device="cpu", train_set=train_set, valid_set=valid_set, **kwargs)
        return [row[2] for report in trainer.run() if report.kind == "step" for row in report.step_losses]

    whole = run(10)
    first = run(6, out=tmp_path / "run.ckpt")  # the CLI's training, with its log beside
    assert window.open_path(tmp_path / "run.ckpt")
    panel = window.training
    assert panel.continue_run.isEnabled() and panel.continue_run.isChecked()
    assert panel.checkpoint.text() == str(tmp_path / "run.ckpt") and not panel.batch_size.isEnabled()
    assert panel.history.train.size == 6  # the log beside the checkpoint
    panel.steps.setValue(10)
    panel.set_datasets(train_set, valid_set)
    button(window, "startButton").click()
    qtbot.waitUntil(lambda: window.controller.state == "idle" and window.controller.trainer is not None,
                    timeout=30_000)
    np.testing.assert_array_equal(panel.history.train.column("step"), np.arange(1, 11))
    np.testing.assert_allclose(panel.history.train.column("bound"), first + whole[6:], rtol=0, atol=0)
    assert first == whole[:6]
    assert load_model(tmp_path / "run.ckpt")[1]["step"] == 10


def test_a_published_model_offers_no_continuation(window, tmp_path):
    from draw_studio.checkpoint import save_checkpoint
    from draw_studio.config import TrainConfig, get_preset
    from draw_studio.model import DRAW

    save_checkpoint(tmp_path / "shipped.ckpt", DRAW(get_preset("tiny").model), TrainConfig(preset="tiny"), None, 3)
    assert window.open_path(tmp_path / "shipped.ckpt")
    assert not window.training.continue_run.isEnabled() and not window.training.resuming
    assert "optimiser state" in window.training.continue_run.toolTip()
