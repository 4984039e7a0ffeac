"""The runs view of the Training dock: several real training logs in a table, their curves overlaid in one plot.

The logs are written by the real trainer (a tiny model, a few steps on real MNIST images); the
curves are checked against the logs' own values.
"""

from __future__ import annotations

import dataclasses
import shutil

import h5py
import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtWidgets import QGraphicsObject  # noqa: E402
from tiny_data import MNIST_DIR, REPO, mnist_slice  # noqa: E402

from draw_studio.config import TrainConfig, get_preset  # noqa: E402
from draw_studio.gui.curve_data import exponential_moving_average  # noqa: E402
from draw_studio.gui.run_rows import log_key  # noqa: E402
from draw_studio.gui.runs_overlay import WIDTH, Z_VALUE  # noqa: E402
from draw_studio.gui.runs_table import HOVER_TINT  # noqa: E402
from draw_studio.train import Trainer, TrainingControl  # noqa: E402
from draw_studio.training_log_reader import read_training_log  # noqa: E402

TINY = get_preset("tiny").model
BASE = TrainConfig(preset="tiny", batch_size=16, steps=8, seed=2, validate_every=2, checkpoint_every=0,
                   report_every=1, validation_limit=64, snapshot_every=0)
STEPS_PER_EPOCH = 200 // 16  # 12

pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


def train(out, **changes):
    trainer = Trainer.from_options(TINY, dataclasses.replace(BASE, **changes), train_set=mnist_slice("train", 200),
                                   valid_set=mnist_slice("valid", 64), device="cpu", out=out)
    for _ in trainer.run(TrainingControl()):
        pass


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two runs that differ in their learning rate only."""
    folder = tmp_path_factory.mktemp("runs")
    train(folder / "slow.ckpt", lr=1e-3)
    train(folder / "fast.ckpt", lr=3e-3)
    return folder


def named(window, name: str):
    """The plot item called ``name`` (e.g. ``runCurve:fast:train``), or None."""
    for item in window.training.curves.plot.scene().items():
        if isinstance(item, QGraphicsObject) and item.objectName() == name:
            return item
    return None


def opened(window, qtbot, paths):
    panel = window.training
    panel.open_runs(paths)
    qtbot.waitUntil(lambda: not panel.runs.busy, timeout=30_000)
    window.redraw_now()
    qtbot.waitUntil(lambda: not panel.runs.busy, timeout=30_000)
    return panel.runs


def test_two_runs_differing_in_learning_rate_show_exactly_that_column(window, two_runs, qtbot):
    runs = opened(window, qtbot, [two_runs])  # a folder, scanned for *.log.h5
    table = runs.table
    assert table.rowCount() == 2 and table.differing == ["lr"]
    titles = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert titles == ["run", "preset", "lr", "steps", "epochs", "wall time", "best valid", "at step", "state"]
    cells = {table.item(r, 0).text(): [table.item(r, c).text() for c in range(table.columnCount())]
             for r in range(2)}
    assert cells["fast"][1:5] == ["tiny", "0.003", "8", f"{8 / STEPS_PER_EPOCH:.2f}"]
    assert cells["slow"][2] == "0.001" and cells["slow"][-1] == "finished"
    log = read_training_log(two_runs / "slow.log.h5")
    best = int(np.argmin(log.eval_bound))
    assert cells["slow"][6:8] == [f"{log.eval_bound[best]:.2f}", f"{int(log.eval_step[best]):,}"]
    assert "differ in lr" in runs.note.text()


def test_ticked_runs_overlay_in_one_plot_each_in_its_colour_and_a_selected_one_is_highlighted(window, two_runs,
                                                                                              qtbot):
    runs = opened(window, qtbot, [two_runs / "slow.log.h5", two_runs / "fast.log.h5"])
    curves = window.training.curves
    assert curves.overlay.active and not curves.smooth_items["bound"].isVisible()  # the detail view gives way
    weight = curves.smoothing_weight
    for name in ("slow", "fast"):
        log = read_training_log(two_runs / f"{name}.log.h5")
        train, valid = named(window, f"runCurve:{name}:train"), named(window, f"runCurve:{name}:valid")
        assert train.isVisible() and valid.isVisible()
        x, y = train.getData()
        np.testing.assert_array_equal(x, log.step)  # every step: 8 points need no thinning
        np.testing.assert_allclose(y, exponential_moving_average(log.loss, weight))
        np.testing.assert_array_equal(valid.getData()[0], log.eval_step)
        np.testing.assert_allclose(valid.getData()[1], log.eval_bound)
        swatch = runs.table.colour_of(log_key(two_runs / f"{name}.log.h5"))
        assert train.opts["pen"].color().name() == swatch and valid.opts["pen"].color().name() == swatch
    assert runs.table.colour_of(log_key(two_runs / "slow.log.h5")) != runs.table.colour_of(
        log_key(two_runs / "fast.log.h5"))
    runs.series.setCurrentIndex(2)  # "curve: L_z": that training curve of every run
    log = read_training_log(two_runs / "fast.log.h5")
    np.testing.assert_allclose(named(window, "runCurve:fast:train").getData()[1],
                               exponential_moving_average(log.kl, weight))
    assert "L_z (train, EMA)" in curves.legend.text()
    runs.series.setCurrentIndex(0)

    slow, fast = named(window, "runCurve:slow:train"), named(window, "runCurve:fast:train")
    assert slow.opts["pen"].widthF() == fast.opts["pen"].widthF() == WIDTH["normal"]
    runs.table.selectRow(runs.table.row_of(log_key(two_runs / "slow.log.h5")))
    assert slow.opts["pen"].widthF() == WIDTH["highlighted"] and slow.zValue() == Z_VALUE["highlighted"]
    assert fast.opts["pen"].widthF() == WIDTH["dimmed"] and fast.zValue() == Z_VALUE["dimmed"]
    assert fast.opts["pen"].color().alpha() < 255 == slow.opts["pen"].color().alpha()
    runs.table.clearSelection()
    assert fast.opts["pen"].widthF() == WIDTH["normal"] and fast.opts["pen"].color().alpha() == 255

    runs.table.set_ticked(log_key(two_runs / "fast.log.h5"), False)  # as a click on its tick box
    assert named(window, "runCurve:fast:train") is None and named(window, "runCurve:slow:train").isVisible()


def test_the_mouse_over_a_curve_highlights_its_row(window, two_runs, qtbot):
    runs = opened(window, qtbot, [two_runs])
    runs.table.set_ticked(log_key(two_runs / "slow.log.h5"), False)  # the fast run alone: nothing covers it
    curves = window.training.curves
    qtbot.waitUntil(lambda: curves.plot.width() > 100)
    qtbot.wait(600)  # the view takes its new range (the fast run's alone; set and painted over a few turns)
    fast = named(window, "runCurve:fast:train")
    x, y = fast.getData()
    view = curves.plot.getViewBox()
    where = curves.plot.mapFromScene(view.mapViewToScene(QPointF(x[4], y[4])))
    with qtbot.waitSignal(curves.overlay.run_hovered, timeout=5_000) as hovered:
        qtbot.mouseMove(curves.plot.viewport(), where)  # pyqtgraph sends the curve its hover event
    key = log_key(two_runs / "fast.log.h5")
    assert hovered.args == [key] and runs.table.hovered_key == key
    row = runs.table.row_of(key)
    assert runs.table.item(row, 0).background().color() == HOVER_TINT
    assert runs.table.item(1 - row, 0).background().style() == Qt.BrushStyle.NoBrush


def test_the_x_axis_is_step_epoch_wall_time_or_images_seen(window, two_runs, qtbot):
    opened(window, qtbot, [two_runs])
    curves = window.training.curves
    log = read_training_log(two_runs / "fast.log.h5")
    expected = {"epoch": log.step / STEPS_PER_EPOCH, "wall_time": log.wall_time, "images": log.step * 16.0,
                "step": log.step}
    for axis, values in expected.items():
        curves.set_x_axis(axis)
        qtbot.waitUntil(lambda: not curves.busy, timeout=10_000)
        np.testing.assert_allclose(named(window, "runCurve:fast:train").getData()[0], values, rtol=1e-6)
        assert curves.plot.getPlotItem().getAxis("bottom").labelText.startswith(
            {"epoch": "epoch", "wall_time": "wall time", "images": "images seen", "step": "step"}[axis])
    curves.set_x_axis("epoch")
    valid = named(window, "runCurve:fast:valid").getData()[0]
    np.testing.assert_allclose(valid, log.eval_step / STEPS_PER_EPOCH)


def test_an_old_log_alone_opens_and_says_what_its_axes_lack(window, two_runs, tmp_path, qtbot):
    old = tmp_path / "old.log.h5"  # no checkpoint beside it, as a log copied elsewhere
    shutil.copy(two_runs / "slow.log.h5", old)
    with h5py.File(old, "a") as f:  # as a log of an older version: no learning rate, no steps per epoch
        del f["history/lr"]
        for name in ("steps_per_epoch", "total_steps", "run_id"):
            if name in f.attrs:
                del f.attrs[name]
        assert not any("snapshot" in name for name in f)  # and no snapshots
    assert window.open_path(old)
    window.redraw_now()
    panel, curves = window.training, window.training.curves
    qtbot.waitUntil(lambda: not panel.runs.busy and bool(panel.runs.current.settings), timeout=10_000)
    table = panel.runs.table
    assert table.rowCount() == 1 and table.differing == [] and table.item(0, 0).text() == "old"
    titles = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert table.item(0, 0).font().bold() and table.item(0, titles.index("epochs")).text() == "-"  # not known
    assert not curves.overlay.active  # one run: shown in detail, as before
    x, _ = curves.smooth_items["bound"].getData()
    np.testing.assert_array_equal(x, np.arange(1, 9))
    curves.set_x_axis("epoch")
    window.redraw_now()
    assert curves.empty_note.isVisible() and "epoch" in curves.empty_note.textItem.toPlainText()
    curves.set_x_axis("images")  # the batch size is in the configuration
    window.redraw_now()
    np.testing.assert_array_equal(curves.smooth_items["bound"].getData()[0], np.arange(1, 9) * 16.0)


def test_opening_another_source_keeps_the_earlier_log_as_an_unticked_row(window, two_runs, qtbot):
    panel = window.training
    assert window.open_path(two_runs / "slow.log.h5")
    assert window.open_path(two_runs / "fast.log.h5")
    window.redraw_now()
    qtbot.waitUntil(lambda: not panel.runs.busy, timeout=10_000)
    rows = panel.runs.rows()
    assert [(row.name, row.current, row.ticked) for row in rows] == [("fast", True, True), ("slow", False, False)]
    assert not window.training.curves.overlay.active  # the earlier run waits to be ticked
    panel.runs.table.set_ticked(rows[1].key, True)
    slow = named(window, "runCurve:slow:train")
    np.testing.assert_array_equal(slow.getData()[0], np.arange(1, 9))  # its points were kept, not read again
    assert panel.runs.table.differing == ["lr"]


def test_a_log_opened_again_is_shown_in_detail(window, two_runs, qtbot):
    """slow, then fast, then slow again: slow's row had been left unticked by fast; opened again it is the open
    source, drawn in detail (it used to stay unticked: an empty plot with the previous run's range)."""
    panel, curves = window.training, window.training.curves
    for name in ("slow", "fast", "slow"):
        assert window.open_path(two_runs / f"{name}.log.h5")
        qtbot.waitUntil(lambda: not panel.runs.busy and not curves.busy, timeout=10_000)
        window.redraw_now()
    rows = panel.runs.rows()
    assert [(row.name, row.current, row.ticked) for row in rows][0] == ("slow", True, True)
    assert not curves.overlay.active
    x, _ = curves.raw_items["bound"].getOriginalDataset()
    np.testing.assert_array_equal(x, np.arange(1, 9))


def test_the_shipped_runs_are_one_click_away(window, qtbot):
    if not (REPO / "models" / "mnist-attention.log.h5").is_file():
        pytest.skip("no shipped logs in models/")
    runs = window.training.runs
    runs.shipped_button.click()
    qtbot.waitUntil(lambda: not runs.busy, timeout=60_000)
    names = [runs.table.item(r, 0).text() for r in range(runs.table.rowCount())]
    assert {"mnist-attention", "mnist-noattention"} <= set(names)
    assert {"read_attention", "write_attention", "lr"} <= set(runs.table.differing)
    assert named(window, "runCurve:mnist-attention:train").isVisible()
    if "cluttered-classifier" in names:  # the window shows a DRAW model: DRAW's runs are drawn, the classifier's not
        assert window.training.curves.overlay.other_kind() == ["cluttered-classifier"]
        assert not named(window, "runCurve:cluttered-classifier:train").isVisible()
        assert "not drawn" in window.training.curves.legend.text()


def test_a_live_run_is_one_row_whose_curves_keep_growing(window, two_runs, tmp_path, qtbot):
    panel = window.training
    opened(window, qtbot, [two_runs / "slow.log.h5"])
    panel.preset.setCurrentText("tiny")
    panel.steps.setValue(30)
    panel.batch_size.setValue(20)
    panel.validate_every.setValue(10)
    panel.device.setCurrentText("cpu")
    panel.data_dir.setText(str(MNIST_DIR))
    panel.checkpoint.setText(str(tmp_path / "live.ckpt"))
    panel.threads.setValue(1)
    panel.follow_live.setChecked(False)
    panel.set_datasets(mnist_slice("train", 300), mnist_slice("test", 60))
    panel.start_button.click()
    qtbot.waitUntil(lambda: panel.history.train.size >= 3, timeout=30_000)
    window.redraw_now()
    live = panel.runs.current
    assert live.live and live.name == "live" and live.state in ("running", "finished")
    assert [row.name for row in panel.runs.rows()] == ["live", "slow"]
    assert window.training.curves.overlay.active  # the slow run is ticked: both are drawn
    qtbot.waitUntil(lambda: window.controller.state == "idle", timeout=60_000)
    window.redraw_now()
    qtbot.waitUntil(lambda: not panel.runs.busy, timeout=10_000)
    x, _ = named(window, "runCurve:live:train").getData()
    np.testing.assert_array_equal(x, np.arange(1, 31))  # every step of the run, drawn as it came
    row = panel.runs.current
    assert (row.step, row.state, row.epochs) == (30, "finished", pytest.approx(30 / (300 // 20)))
    assert row.settings["batch_size"] == 20 and "batch_size" in panel.runs.table.differing  # the slow run's: 16


def test_the_command_line_takes_more_logs_and_refuses_anything_else_in_one_line(two_runs, capsys):
    from draw_studio.cli import main

    assert main(["gui", str(two_runs / "slow.log.h5"), str(two_runs / "slow.ckpt"), "--screenshot", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "slow.ckpt is not a training log" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["gui", str(two_runs / "slow.log.h5"), str(two_runs / "missing"), "--screenshot", "x.png"]) == 2
    assert "does not exist" in capsys.readouterr().err
