"""The curves: big logs never block the window, a new run shows at once, hover read-out, learning rate, layout.

Logs are written by the real writer. No timing is asserted: "off the window thread" is checked by
what has (not) happened when a call returns, and by the thread the work ran in.
"""

from __future__ import annotations

import csv
import math
import threading

import h5py
import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QPointF  # noqa: E402

from draw_studio.config import TrainConfig, get_preset  # noqa: E402
from draw_studio.progress import Report  # noqa: E402
from draw_studio.training_log import TrainingLogWriter  # noqa: E402
from draw_studio.training_log_reader import read_training_log  # noqa: E402

BIG = 200_000  # rows: several MB, read, smoothed and exported in the background
EVALS = 100
MAIN = threading.main_thread().name


def write_log(path, rows: int, lr: bool = True):
    """A log of ``rows`` steps: bound 300 - 100 step / rows (+ a spike at row 1000), L_z 20, cosine-like lr."""
    steps = np.arange(1, rows + 1)
    bound = 300.0 - 100.0 * steps / rows
    bound[999 % rows] = 900.0
    rates = 1e-3 * (0.5 + 0.5 * np.cos(np.pi * steps / rows))
    table = zip(steps.tolist(), (0.5 * steps).tolist(), bound.tolist(), (bound - 20.0).tolist(), [20.0] * rows)
    with TrainingLogWriter(path, get_preset("tiny").model, TrainConfig(preset="tiny", steps=rows),
                           flush_every_s=3600.0) as log:
        if lr:
            log.append_steps([(*row, rate) for row, rate in zip(table, rates.tolist())])
        else:
            log.append_steps(table)
        every = max(rows // EVALS, 1)
        for step in range(every, rows + 1, every):
            log.append_eval(step, 310.0 - 100.0 * step / rows)
    return path


@pytest.fixture(scope="module")
def big_log(tmp_path_factory):
    return write_log(tmp_path_factory.mktemp("big-log") / "big.log.h5", BIG)


def plain_ema(values: np.ndarray, weight: float) -> np.ndarray:
    """The recurrence written out: s_i = w s_{i-1} + (1 - w) v_i, seeded with the first value."""
    out, last = np.empty(len(values)), math.nan
    for i, value in enumerate(values.tolist()):
        last = value if last != last else weight * last + (1.0 - weight) * value
        out[i] = last
    return out


def test_a_big_log_opens_smooths_and_exports_off_the_window_thread(window, big_log, tmp_path, qtbot):
    panel, curves = window.training, window.training.curves
    assert window.open_path(big_log)
    assert panel.history.train.size == 0  # open_path returned before the log was read: it is read elsewhere
    qtbot.waitUntil(lambda: panel.history.train.size == BIG and not curves.busy, timeout=60_000)
    window.redraw_now()
    assert curves.shown.rows == BIG and curves.shown.computed_in != MAIN
    assert panel.steps.value() == BIG and panel.preset.currentText() == "tiny"  # the form shows the log's run
    x, y = curves.raw_items["bound"].getOriginalDataset()
    assert len(x) < 10_000 and y.max() == 900.0  # a few thousand points drawn, the spike among them

    curves.smoothing.setValue(90)
    assert curves.busy and curves.shown.weight == 0.6  # the slider's slot returned without smoothing anything
    qtbot.waitUntil(lambda: not curves.busy, timeout=60_000)
    assert curves.shown.weight == 0.9 and curves.shown.computed_in != MAIN
    np.testing.assert_allclose(curves.shown.smooth["bound"], plain_ema(panel.history.train.column("bound"), 0.9),
                               rtol=1e-9)

    target = tmp_path / "curves.csv"
    messages: list[str] = []
    panel.message.connect(messages.append)
    panel.export_csv(str(target))
    assert not target.exists() and curves.busy  # being written in the background
    qtbot.waitUntil(lambda: target.exists() and not curves.busy, timeout=120_000)
    with open(target, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == BIG + EVALS and rows[0]["split"] == "train" and rows[-1]["split"] == "valid"
    assert float(rows[999]["bound"]) == 900.0 and float(rows[-1]["bound"]) == 210.0
    assert any(text.startswith("writing ") for text in messages)  # progress in the status bar
    assert messages[-1] == f"wrote {BIG + EVALS} points to {target}"


def test_a_new_run_is_shown_at_once_after_a_long_log(window, tmp_path, qtbot):
    panel, curves = window.training, window.training.curves
    assert window.open_path(write_log(tmp_path / "long.log.h5", 20_000))
    qtbot.waitUntil(lambda: panel.history.train.size == 20_000, timeout=30_000)
    window.redraw_now()
    qtbot.waitUntil(lambda: curves.plot.getViewBox().viewRange()[0][1] > 19_000, timeout=5_000)
    panel.history.clear()  # what Start does for a new run; then its reports come in
    panel.on_reports([Report(kind="start", step=0, total_steps=1000),
                      Report(kind="step", step=10, total_steps=1000, lr=1e-3,
                             step_losses=[(s, 0.1 * s, 250.0 - s, 230.0 - s, 20.0) for s in range(1, 11)])])
    window.redraw_now()
    qtbot.waitUntil(lambda: curves.plot.getViewBox().viewRange()[0][1] < 100, timeout=5_000)
    low, high = curves.plot.getViewBox().viewRange()[0]
    assert low <= 1 and high >= 10 and not curves.user_zoomed


def test_the_first_steps_of_a_run_do_not_flatten_its_curves(window, tmp_path, qtbot):
    path = tmp_path / "spike.log.h5"  # a 60x60 run starts near 2,500 nats and settles near 200
    with TrainingLogWriter(path, get_preset("tiny").model, TrainConfig(preset="tiny", steps=2000)) as log:
        log.append_steps([(s, 0.1 * s, 2500.0 if s <= 10 else 200.0 + 100.0 / s, 180.0, 20.0)
                          for s in range(1, 2001)])
    curves = window.training.curves
    assert window.open_path(path)
    window.redraw_now()
    qtbot.waitUntil(lambda: curves.point_counts()["train"] == 2000, timeout=5_000)
    qtbot.waitUntil(lambda: curves.plot.getViewBox().viewRange()[0][1] > 1900, timeout=5_000)
    low, high = curves.plot.getViewBox().viewRange()[1]
    assert high < 500 and low < 20  # the bound near 200 and L_z at 20 fill the plot, not 2,500 nats
    curves.log_y.setChecked(True)  # log y: the first steps are in view too
    window.redraw_now()
    qtbot.waitUntil(lambda: curves.plot.getViewBox().viewRange()[1][1] > math.log10(2000), timeout=5_000)


def test_hovering_reads_out_the_step_and_its_values(window, tmp_path, qtbot):
    curves = window.training.curves
    assert window.open_path(write_log(tmp_path / "short.log.h5", 50))
    window.redraw_now()
    qtbot.waitUntil(lambda: curves.point_counts()["train"] == 50)
    view = curves.plot.getViewBox()
    qtbot.waitUntil(lambda: view.viewRange()[0][1] >= 50)
    where = curves.plot.mapFromScene(view.mapViewToScene(QPointF(25.2, 250.0)))
    with qtbot.waitSignal(curves.hover_text, timeout=5_000) as hovered:
        qtbot.mouseMove(curves.plot.viewport(), where)
    text = hovered.args[0]
    assert text.startswith("step 25 ") and "bound L 250.00" in text and "L_z 20.00" in text, text
    assert f"lr {1e-3 * (0.5 + 0.5 * math.cos(math.pi * 25 / 50)):.3g}" in text, text
    assert "validation 260.00 at step 25" in text, text
    assert curves.cursor.isVisible() and curves.cursor.value() == 25


def test_the_learning_rate_is_logged_and_drawn_against_its_own_axis(window, tmp_path, qtbot):
    path = tmp_path / "lr.log.h5"
    rates = [1e-3 * 0.9 ** s for s in range(1, 41)]
    with TrainingLogWriter(path, get_preset("tiny").model, TrainConfig(preset="tiny", steps=40)) as log:
        for step, rate in zip(range(1, 41), rates):  # as the trainer hands its reports to the log
            log.handle(Report(kind="step", step=step, total_steps=40, lr=rate,
                              step_losses=[(step, 0.1 * step, 200.0 - step, 180.0 - step, 20.0)]))
    np.testing.assert_allclose(read_training_log(path).lr, rates, rtol=1e-6)
    curves = window.training.curves
    assert window.open_path(path)
    window.redraw_now()
    x, y = curves.lr_item.getOriginalDataset()
    np.testing.assert_array_equal(x, np.arange(1, 41))
    np.testing.assert_allclose(y, rates, rtol=1e-6)
    right = curves.plot.getPlotItem().getAxis("right")
    assert right.isVisible() and "learning rate" in curves.legend.text()
    # the power of ten is in the ticks, not a "(x0.0001)" in the label that a short plot cuts off
    assert "(x" not in right.labelString() and "learning rate" in right.labelString()
    low, high = curves.lr_view.viewRange()[1]
    for spacing, ticks in right.tickValues(low, high, 200):  # each level of ticks (major, minor)
        labels = right.tickStrings(ticks, 1.0, spacing)
        assert all(label == "0" or "e-" in label for label in labels), labels
        np.testing.assert_allclose([float(label) for label in labels], ticks, rtol=1e-6, atol=1e-12)

    older = tmp_path / "older.log.h5"  # a log written before the learning rate was: it opens, without the curve
    write_log(older, 30, lr=False)
    with h5py.File(older, "r+") as f:
        del f["history/lr"]
    assert np.isnan(read_training_log(older).lr).all() and len(read_training_log(older).step) == 30
    assert window.open_path(older)
    window.redraw_now()
    assert curves.point_counts()["train"] == 30
    assert not curves.plot.getPlotItem().getAxis("right").isVisible() and "learning rate" not in curves.legend.text()


def test_at_1280x800_the_controls_are_not_clipped_and_the_legend_is_off_the_data(window, qtbot):
    window.resize(1280, 800)
    curves = window.training.curves
    qtbot.waitUntil(lambda: curves.plot.width() > 100)
    curves.x_axis.setCurrentIndex(1)  # "x: wall time"
    qtbot.wait(50)
    needed = curves.x_axis.fontMetrics().horizontalAdvance(curves.x_axis.currentText())
    assert curves.x_axis.width() >= needed + 20  # the text and the arrow
    assert curves.plot.getPlotItem().legend is None  # no legend drawn inside the plot, over the curves
    assert curves.legend.isVisible() and curves.legend.geometry().bottom() < curves.plot.geometry().top()


def test_points_of_a_resumed_run_that_come_while_its_log_is_read_are_kept(window, big_log, qtbot):
    panel = window.training
    panel.history.clear()
    panel.load_log(big_log)  # as Start does when it continues a run: the curves so far, read in the background
    live = [(s, 0.5 * s, 123.0, 103.0, 20.0) for s in range(150_001, 150_011)]  # it resumed at step 150,000
    panel.on_reports([Report(kind="step", step=150_010, total_steps=BIG, lr=1e-4, step_losses=live)])
    qtbot.waitUntil(lambda: panel.history.train.size > 10, timeout=60_000)  # the log is in
    steps = panel.history.train.column("step")
    np.testing.assert_array_equal(steps, np.arange(1, 150_011))  # the log up to the resumed step, then the run
    assert (panel.history.train.column("bound")[-10:] == 123.0).all()
    assert panel.history.valid.column("step")[-1] == 150_000  # the log's validations after it are dropped
    window.redraw_now()
    qtbot.waitUntil(lambda: not panel.curves.busy and panel.curves.shown.rows == 150_010, timeout=60_000)
    again = [(s, 0.5 * s, 99.0, 79.0, 20.0) for s in range(100_001, 100_006)]  # resumed from an earlier checkpoint
    panel.on_reports([Report(kind="step", step=100_005, total_steps=BIG, lr=1e-4, step_losses=again)])
    np.testing.assert_array_equal(panel.history.train.column("step"), np.arange(1, 100_006))
    assert panel.history.valid.column("step")[-1] == 100_000
