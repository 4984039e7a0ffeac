"""Runs are never lost (Start after Stop continues the run; a new run gets a fresh file and replaces
an existing one only when confirmed), and the one background worker that runs training and exports."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QObject, Slot  # noqa: E402
from test_gui_training import button, set_up_tiny  # noqa: E402
from tiny_data import mnist_slice  # noqa: E402

from draw_studio.checkpoint import load_model  # noqa: E402
from draw_studio.errors import DrawStudioError  # noqa: E402
from draw_studio.training_log import default_log_path  # noqa: E402
from draw_studio.training_log_reader import read_training_log  # noqa: E402

FRESH_NAME = re.compile(r"tiny-\d{8}-\d{6}(-\d+)?\.ckpt")


def train_until(window, qtbot, rows: int) -> int:
    """Click Start, wait for ``rows`` points on the curves, click Stop; the step the run stopped at."""
    button(window, "startButton").click()
    qtbot.waitUntil(lambda: window.training.history.train.size >= rows, timeout=30_000)
    button(window, "stopButton").click()
    qtbot.waitUntil(lambda: window.controller.state == "idle", timeout=30_000)
    return window.controller.trainer.step


# ---------------------------------------------------------------------- defect 1: a run is never overwritten
def test_start_after_stop_continues_the_run_its_steps_log_and_checkpoint(window, tmp_path, qtbot):
    panel = set_up_tiny(window, tmp_path, steps=1_000_000)
    checkpoint = tmp_path / "run" / "tiny.ckpt"
    reports = []
    window.controller.reports.connect(reports.extend)
    n = train_until(window, qtbot, 5)
    assert load_model(checkpoint)[1]["step"] == n
    first = read_training_log(default_log_path(checkpoint))
    np.testing.assert_array_equal(first.step, np.arange(1, n + 1))
    assert panel.continue_run.isChecked() and panel.checkpoint.text() == str(checkpoint)

    reports.clear()
    m = train_until(window, qtbot, n + 5)  # Start again
    assert [r.step for r in reports if r.kind == "start"] == [n]  # the step counter goes on from n
    assert [row[0] for r in reports if r.kind == "step" for row in r.step_losses][0] == n + 1
    assert m >= n + 5
    assert load_model(checkpoint)[1]["step"] == m  # the same file, its step never went back
    second = read_training_log(default_log_path(checkpoint))
    np.testing.assert_array_equal(second.step, np.arange(1, m + 1))  # rows 1..n kept, and it grew
    np.testing.assert_array_equal(second.wall_time[:n], first.wall_time)
    np.testing.assert_array_equal(second.loss[:n], first.loss)
    assert second.run_id == first.run_id
    np.testing.assert_array_equal(panel.history.train.column("step"), np.arange(1, m + 1))
    assert panel.checkpoint.text() == str(checkpoint)

    panel.steps.setValue(m)  # nothing left to train: the window says which of its fields to change
    button(window, "startButton").click()
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=30_000)
    assert f"already at step {m:,}" in window.last_error and "set a larger 'steps'" in window.last_error
    assert "--" not in window.last_error  # no command-line option named to a window user
    assert load_model(checkpoint)[1]["step"] == m


def test_a_new_run_writes_a_fresh_file_and_replaces_a_run_only_when_confirmed(window, tmp_path, qtbot):
    panel = set_up_tiny(window, tmp_path, steps=1_000_000)
    checkpoint = tmp_path / "run" / "tiny.ckpt"
    n = train_until(window, qtbot, 3)
    panel.continue_run.setChecked(False)  # the user asks for a new run
    fresh = Path(panel.checkpoint.text())
    assert fresh != checkpoint and fresh.parent == checkpoint.parent and FRESH_NAME.fullmatch(fresh.name)
    assert not fresh.exists() and not default_log_path(fresh).exists()

    messages = []
    panel.message.connect(messages.append)
    panel.checkpoint.setText(str(checkpoint))  # the user types the stopped run's file
    button(window, "startButton").click()
    assert not window.controller.active  # not interactive: refused, with a message
    assert "not started" in messages[-1] and str(checkpoint) in messages[-1]
    asked = []
    panel.replace_prompt = lambda path: asked.append(path) or False  # asked, and the user says no
    button(window, "startButton").click()
    assert asked == [str(checkpoint)] and not window.controller.active
    assert load_model(checkpoint)[1]["step"] == n

    panel.checkpoint.setText(str(fresh))
    panel.steps.setValue(8)
    button(window, "startButton").click()
    qtbot.waitUntil(lambda: window.controller.state == "idle" and window.controller.trainer is not None
                    and window.controller.trainer.step == 8, timeout=30_000)
    assert load_model(fresh)[1]["step"] == 8 and load_model(checkpoint)[1]["step"] == n
    assert asked == [str(checkpoint)]  # the fresh file needed no confirmation

    assert panel.checkpoint.text() == str(fresh) and panel.continue_run.isChecked()  # what was just written
    panel.continue_run.setChecked(False)
    assert Path(panel.checkpoint.text()) not in (fresh, checkpoint)  # never an earlier run's file
    panel.checkpoint.setText(str(checkpoint))
    panel.replace_prompt = lambda path: asked.append(path) or True  # confirmed: the run is replaced
    panel.steps.setValue(4)
    button(window, "startButton").click()
    qtbot.waitUntil(lambda: window.controller.state == "idle" and window.controller.trainer is not None
                    and window.controller.trainer.step == 4, timeout=30_000)
    assert asked == [str(checkpoint)] * 2 and load_model(checkpoint)[1]["step"] == 4


def test_after_a_restart_the_checkpoint_field_holds_a_fresh_name(make_window, gui_settings, tmp_path, qtbot):
    first = make_window()
    set_up_tiny(first, tmp_path, steps=6)
    button(first, "startButton").click()
    qtbot.waitUntil(lambda: first.controller.state == "idle" and first.controller.trainer is not None,
                    timeout=30_000)
    checkpoint = tmp_path / "run" / "tiny.ckpt"
    assert load_model(checkpoint)[1]["step"] == 6
    assert first.training.checkpoint.text() == str(checkpoint)  # what was just written
    first.close()
    gui_settings.setValue("training/checkpoint", str(checkpoint))  # as earlier versions kept it
    second = make_window(gui_settings)
    shown = Path(second.training.checkpoint.text())
    assert shown != checkpoint and FRESH_NAME.fullmatch(shown.name) and shown.parent == checkpoint.parent
    assert not shown.exists() and not second.training.continue_run.isChecked()


def test_opening_another_source_keeps_a_typed_new_file_but_never_an_earlier_runs(window, tmp_path):
    panel = window.training
    panel.preset.setCurrentText("tiny")
    earlier = tmp_path / "earlier.ckpt"
    earlier.write_bytes(b"a run")
    mine = tmp_path / "mine.ckpt"
    panel.checkpoint.setText(str(mine))
    panel.offer_resume(None)  # as opening a trace or a shipped model does
    assert panel.checkpoint.text() == str(mine) and not panel.resuming
    panel.checkpoint.setText(str(earlier))
    panel.offer_resume(None)
    assert FRESH_NAME.fullmatch(Path(panel.checkpoint.text()).name)


def test_fresh_names_skip_files_that_exist(tmp_path):
    from datetime import datetime

    from draw_studio.gui.training_controller import fresh_checkpoint_path

    when = datetime(2024, 1, 2, 3, 4, 5)
    (tmp_path / "tiny-20240102-030405.ckpt").write_bytes(b"x")
    default_log_path(tmp_path / "tiny-20240102-030405-2.ckpt").write_bytes(b"x")  # only a log
    taken = {str(tmp_path / "tiny-20240102-030405-3.ckpt")}
    assert fresh_checkpoint_path(tmp_path, "tiny", taken, when) == str(tmp_path / "tiny-20240102-030405-4.ckpt")


# ---------------------------------------------------------------------- the generic background worker
class Recorder(QObject):
    """Receives a worker's signals in the GUI thread, in order, with the thread they arrived in."""

    def __init__(self, worker) -> None:
        super().__init__()
        self.events: list[tuple[str, object]] = []
        self.threads: set[int] = set()
        worker.yielded.connect(self.on_yielded)
        worker.returned.connect(self.on_returned)
        worker.failed.connect(self.on_failed)
        worker.stopped.connect(self.on_stopped)
        worker.paused.connect(self.on_paused)
        worker.resumed.connect(self.on_resumed)
        worker.finished.connect(self.on_finished)

    def _add(self, name: str, value=None) -> None:
        self.threads.add(threading.get_ident())
        self.events.append((name, value))

    @Slot(object)
    def on_yielded(self, items) -> None:
        self._add("yielded", list(items))

    @Slot(object)
    def on_returned(self, value) -> None:
        self._add("returned", value)

    @Slot(str)
    def on_failed(self, text) -> None:
        self._add("failed", text)

    @Slot()
    def on_stopped(self) -> None:
        self._add("stopped")

    @Slot()
    def on_paused(self) -> None:
        self._add("paused")

    @Slot()
    def on_resumed(self) -> None:
        self._add("resumed")

    @Slot()
    def on_finished(self) -> None:
        self._add("finished")

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def items(self) -> list:
        return [item for name, batch in self.events if name == "yielded" for item in batch]


def start_worker(qtbot, function, **options):
    from draw_studio.gui.background import BackgroundWorker, WorkerThread

    worker = BackgroundWorker(function, **options)
    recorder = Recorder(worker)
    thread = WorkerThread(worker)
    thread.start()
    return worker, recorder, thread


def finish(qtbot, recorder, thread) -> None:
    qtbot.waitUntil(lambda: "finished" in recorder.names(), timeout=10_000)
    assert thread.wait(10_000)


def test_yields_arrive_as_signals_in_order_then_the_return_value(qtbot):
    def numbers(control):
        yield from range(50)
        return "done"

    worker, recorder, thread = start_worker(qtbot, numbers)
    finish(qtbot, recorder, thread)
    assert recorder.items() == list(range(50))
    assert all(len(batch) == 1 for name, batch in recorder.events if name == "yielded")  # one signal a yield
    assert recorder.names()[-2:] == ["returned", "finished"] and recorder.events[-2][1] == "done"
    assert recorder.threads == {threading.get_ident()}  # delivered in the GUI thread


def test_high_rate_yields_are_coalesced_and_urgent_ones_go_at_once(qtbot):
    def many(control):
        yield from range(20_000)

    worker, recorder, thread = start_worker(qtbot, many, coalesce_s=0.05, urgent=lambda i: i == 12_345)
    finish(qtbot, recorder, thread)
    batches = [batch for name, batch in recorder.events if name == "yielded"]
    assert recorder.items() == list(range(20_000)) and len(batches) < 200
    assert any(batch[-1] == 12_345 for batch in batches)


def test_pause_holds_the_generator_and_stop_ends_it_between_yields(qtbot):
    closed_at = []

    def counting(control):
        i = 0
        try:
            while True:
                yield i
                i += 1
                time.sleep(0.002)
        finally:
            closed_at.append(i)  # GeneratorExit at the yield of item i

    worker, recorder, thread = start_worker(qtbot, counting)
    qtbot.waitUntil(lambda: len(recorder.items()) >= 5, timeout=10_000)
    worker.pause()
    qtbot.waitUntil(lambda: "paused" in recorder.names(), timeout=10_000)
    held = len(recorder.items())
    qtbot.wait(300)
    assert len(recorder.items()) == held and worker.is_paused
    worker.resume()
    qtbot.waitUntil(lambda: len(recorder.items()) >= held + 5, timeout=10_000)
    assert "resumed" in recorder.names()
    worker.stop()
    finish(qtbot, recorder, thread)
    items = recorder.items()
    assert items == list(range(len(items)))  # none lost, none after the stop
    assert closed_at == [items[-1]]
    assert "stopped" in recorder.names() and "returned" not in recorder.names()


@pytest.mark.parametrize("error, message", [(ValueError("boom\n  at line 3"), "ValueError: boom"),
                                            (DrawStudioError("the data folder is empty"),
                                             "the data folder is empty")])
def test_an_exception_becomes_one_failed_line_without_a_traceback(qtbot, capfd, error, message):
    def broken(control):
        yield 1
        raise error

    worker, recorder, thread = start_worker(qtbot, broken)
    finish(qtbot, recorder, thread)
    assert recorder.events == [("yielded", [1]), ("failed", message), ("finished", None)]
    assert "Traceback" not in capfd.readouterr().err


def write_tiny_trace(path: Path) -> Path:
    import torch

    from draw_studio.config import get_preset
    from draw_studio.data import model_inputs
    from draw_studio.model import DRAW
    from draw_studio.trace import TraceInputs, record_trace
    from draw_studio.trace_file import write_trace

    torch.manual_seed(3)
    images = mnist_slice("test", 6)
    pixels, _, _ = model_inputs(images, "bernoulli")
    write_trace(path, record_trace(DRAW(get_preset("tiny").model), TraceInputs(images=pixels, labels=images.labels,
                                                                              seed=1, source="mnist/test")))
    return path


def test_an_export_and_a_training_run_both_run_on_the_generic_worker(window, tmp_path, qtbot):
    from draw_studio.gui.background import BackgroundWorker

    assert window.open_path(write_tiny_trace(tmp_path / "tiny.h5"))
    jobs = window.jobs
    workers, progress, done, stopped = [], [], [], []
    jobs.started.connect(lambda _: (workers.append(jobs.worker), jobs.pause()))  # before its first frame
    jobs.progress.connect(lambda a, b: progress.append((a, b)))
    jobs.done.connect(done.append)
    jobs.stopped.connect(lambda: stopped.append(True))

    gif = tmp_path / "held.gif"
    assert window.export_trace("gif", gif)
    qtbot.waitUntil(lambda: progress == [(1, 5)], timeout=10_000)  # held at its first progress point
    qtbot.wait(300)
    assert progress == [(1, 5)] and not gif.exists() and jobs.busy
    jobs.resume()
    qtbot.waitUntil(lambda: not jobs.busy, timeout=20_000)
    assert gif.is_file() and progress[-1] == (5, 5) and done == [f"wrote {gif}"]

    stopped_gif = tmp_path / "stopped.gif"
    assert window.export_trace("gif", stopped_gif)
    qtbot.waitUntil(lambda: progress[-1] == (1, 5), timeout=10_000)
    jobs.stop()
    qtbot.waitUntil(lambda: not jobs.busy, timeout=20_000)
    assert stopped == [True] and len(done) == 1 and not stopped_gif.exists()
    assert not list(tmp_path.glob(".stopped.gif.*"))  # no temporary file left behind
    assert all(isinstance(worker, BackgroundWorker) for worker in workers) and len(workers) == 2

    set_up_tiny(window, tmp_path, steps=1_000_000)
    button(window, "startButton").click()
    assert isinstance(window.controller.worker, BackgroundWorker)
    qtbot.waitUntil(lambda: window.training.history.train.size >= 3, timeout=30_000)
    button(window, "pauseButton").click()
    qtbot.waitUntil(lambda: window.controller.state == "paused", timeout=10_000)
    assert window.controller.worker.is_paused
    button(window, "stopButton").click()
    qtbot.waitUntil(lambda: window.controller.state == "idle", timeout=30_000)
    assert load_model(tmp_path / "run" / "tiny.ckpt")[1]["step"] == window.controller.trainer.step


def test_a_run_planned_in_epochs_opens_with_its_length_in_steps_and_continues_to_its_end(window, tmp_path, qtbot):
    """The form sets steps: a checkpoint of a run planned in epochs shows the steps those epochs make, so Start
    goes on to the run's end on its learning-rate schedule (not to the form's last value)."""
    import math

    from draw_studio.config import TrainConfig, get_preset
    from draw_studio.progress import TrainingControl
    from draw_studio.train import Trainer

    train_set, valid_set = mnist_slice("train", 300), mnist_slice("test", 60)
    config = TrainConfig(preset="tiny", batch_size=20, epochs=1.5, seed=3, validate_every=0, checkpoint_every=0,
                         report_every=1, lr_schedule="cosine")
    run = Trainer.from_options(get_preset("tiny").model, config, train_set=train_set, valid_set=valid_set,
                               device="cpu", out=tmp_path / "e.ckpt")
    control = TrainingControl()
    for report in run.run(control):
        if report.kind == "step" and report.step == 4:
            control.stop()
    planned = math.ceil(1.5 * (300 // 20))
    assert run.total_steps == planned and load_model(tmp_path / "e.ckpt")[1]["step"] == 4

    assert window.open_path(tmp_path / "e.ckpt")
    panel = window.training
    assert panel.continue_run.isChecked() and panel.steps.value() == planned
    panel.set_datasets(train_set, valid_set)
    panel.device.setCurrentText("cpu")
    panel.threads.setValue(1)
    button(window, "startButton").click()
    qtbot.waitUntil(lambda: window.controller.state == "idle" and window.controller.trainer is not None
                    and window.controller.trainer.step == planned, timeout=60_000)
    assert window.last_error is None
    assert load_model(tmp_path / "e.ckpt")[1]["step"] == planned


def test_a_remembered_data_folder_that_was_deleted_is_not_restored(make_window, gui_settings, tmp_path):
    from draw_studio.gui.model_service import default_data_dir

    kept = tmp_path / "data"
    kept.mkdir()
    gui_settings.setValue("training/data_dir", str(kept))
    assert make_window(gui_settings).training.data_dir.text() == str(kept)
    gui_settings.setValue("training/data_dir", str(tmp_path / "a clone deleted since" / "data"))
    assert make_window(gui_settings).training.data_dir.text() == default_data_dir()
