"""An attention classifier's training log in the window, the runs view and ``draw-studio runs``: named as what it is.

A classifier's log has DRAW's format but not its quantities (``draw_studio.curve_meaning``): the
training curve is the cross-entropy in nats per image (its L_x repeats it, its L_z is 0), the
validation points are the error in percent. The curves draw the cross-entropy alone and the error
against a right axis of its own; the CSV names its columns so; the class probabilities say a log has
no model; the runs table and ``draw-studio runs`` call the best validation figure an error (with %);
runs of the two kinds are never drawn against one y axis.

The classifier is real (tiny, trained 6 steps on real cluttered-MNIST digits, validated every 2 steps);
the DRAW log is written by the real training-log writer.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from tiny_data import mnist_slice  # noqa: E402

from draw_studio.classifier import ClassifierConfig  # noqa: E402
from draw_studio.classifier_setup import classifier_train_config, new_classifier_run  # noqa: E402
from draw_studio.cli import main  # noqa: E402
from draw_studio.config import TrainConfig, get_preset  # noqa: E402
from draw_studio.curve_meaning import CLASSIFIER, DRAW  # noqa: E402
from draw_studio.data import ImageSet  # noqa: E402
from draw_studio.data.cluttered import clutter_digits  # noqa: E402
from draw_studio.runs import summarize_run  # noqa: E402
from draw_studio.training_log import TrainingLogWriter  # noqa: E402
from draw_studio.training_log_reader import read_training_log  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")
DRAW_ROWS = 20


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """``c.log.h5``: a tiny attention classifier's log (6 steps, validated at steps 2, 4, 6); ``d.log.h5``: a DRAW
    log of 20 steps (bound about 200 nats, validation bound every 5 steps)."""
    folder = tmp_path_factory.mktemp("classifier-log")
    digits = clutter_digits(mnist_slice("test", 48), seed=17)
    data = ImageSet(digits.images, digits.labels, False, "cluttered test digits")
    config = classifier_train_config("tiny-classifier", steps=6, batch_size=16, validate_every=2,
                                     validation_limit=32, checkpoint_every=6, seed=3)
    list(new_classifier_run(ClassifierConfig(steps=3, hidden_size=32, read_n=6), config, train_set=data,
                            valid_set=data, out=folder / "c.ckpt", device="cpu").run())
    steps = np.arange(1, DRAW_ROWS + 1)
    bound = 220.0 - steps
    with TrainingLogWriter(folder / "d.log.h5", get_preset("tiny").model, TrainConfig(preset="tiny", steps=DRAW_ROWS),
                           flush_every_s=3600.0) as log:
        log.append_steps([(int(step), 0.5 * step, b, b - 20.0, 20.0, 1e-3) for step, b in zip(steps, bound)])
        for step in range(5, DRAW_ROWS + 1, 5):
            log.append_eval(step, 230.0 - step)
    return folder


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    """One window for the module (each test opens what it shows)."""
    from PySide6.QtCore import QSettings

    from draw_studio.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path_factory.mktemp("settings") / "draw-studio.ini"), QSettings.Format.IniFormat)
    made = MainWindow(settings=settings, interactive=False)
    made.show()
    yield made
    made.jobs.wait(30_000)
    made.close()
    made.deleteLater()


def data_of(item) -> tuple[np.ndarray, np.ndarray]:
    x, y = item.getData()
    return (np.asarray([]), np.asarray([])) if x is None else (np.asarray(x), np.asarray(y))


def test_a_classifier_log_shows_its_cross_entropy_and_its_validation_error_on_an_axis_of_its_own(window, logs,
                                                                                               tmp_path, qtbot):
    from draw_studio.gui.curve_hover import describe_row

    log = read_training_log(logs / "c.log.h5")
    assert len(log.eval_step) == 3 and np.all(log.eval_bound > 10)  # errors in %, far above the cross-entropy
    assert window.open_path(logs / "c.log.h5"), window.last_error
    window.redraw_now()
    curves = window.training.curves
    qtbot.waitUntil(lambda: not curves.busy, timeout=30_000)
    window.redraw_now()
    legend = curves.legend.text()
    assert "cross-entropy (train), nats / image" in legend and "validation error, % (right axis)" in legend
    for drawn_for_draw in ("bound L", "L_x", "L_z", "learning rate"):
        assert drawn_for_draw not in legend
    # the cross-entropy raw (every step: no thinning for 6 rows); no L_x copy, no zero L_z
    np.testing.assert_array_equal(data_of(curves.raw_items["bound"])[0], log.step)
    np.testing.assert_allclose(data_of(curves.raw_items["bound"])[1], log.loss)
    for name in ("nll_x", "kl"):
        assert len(data_of(curves.raw_items[name])[0]) == 0 and len(data_of(curves.smooth_items[name])[0]) == 0
    # the validation error: not on the left axis, against the right one, which says so
    assert len(data_of(curves.valid_item)[0]) == 0 and len(data_of(curves.lr_item)[0]) == 0
    x, y = data_of(curves.lr_axis.error_item)
    np.testing.assert_array_equal(x, log.eval_step)
    np.testing.assert_allclose(y, log.eval_bound)
    right = curves.plot.getPlotItem().getAxis("right")
    assert right.isVisible() and right.labelText == "validation error, %"
    low, high = curves.lr_view.viewRange()[1]
    assert low <= log.eval_bound.min() and log.eval_bound.max() <= high
    assert curves.plot.getViewBox().viewRange()[1][1] < 10  # the left axis fits the cross-entropy (~2.3 nats)
    hover = describe_row(curves.shown, len(log.step) - 1, curves.hover.labels[curves.shown.kind])
    assert f"cross-entropy {log.loss[-1]:.2f}" in hover
    assert f"validation error {log.eval_bound[-1]:.2f}% at step {int(log.eval_step[-1])}" in hover
    # the class probabilities: a log has no model (not "a DRAW model does not classify")
    message = window.class_probabilities.message.text()
    assert message.startswith("a training log has no model: open its checkpoint") and "DRAW" not in message
    # the DRAW panels: a classifier draws nothing (not "open its checkpoint to see samples")
    assert window.document.lacks("samples") == "an attention classifier draws nothing: no samples from a prior"
    assert window.document.lacks("kl") == "an attention classifier has no latents, so no KL per step"
    assert "the classifier's glimpses" in window.document.lacks("trace")

    out = tmp_path / "c.csv"
    assert curves.export_csv(out)
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["split", "step", "wall_time", "cross_entropy", "error_percent", "lr"]
    train = [row for row in rows[1:] if row[0] == "train"]
    valid = [row for row in rows[1:] if row[0] == "valid"]
    assert [float(row[3]) for row in train] == log.loss.astype(float).tolist() and all(row[4] == "" for row in train)
    assert [float(row[4]) for row in valid] == log.eval_bound.astype(float).tolist()
    assert all(row[3] == "" for row in valid)
    assert main(["log-export", str(logs / "c.log.h5"), "--csv", str(tmp_path / "cli.csv")]) == 0
    assert (tmp_path / "cli.csv").read_text() == out.read_text()  # the command line writes the same file

    # a DRAW log after it: DRAW's curves and names again
    assert window.open_path(logs / "d.log.h5"), window.last_error
    window.redraw_now()
    qtbot.waitUntil(lambda: not curves.busy, timeout=30_000)
    window.redraw_now()
    legend = curves.legend.text()
    for name in ("bound L (train)", "L_x (train)", "L_z (train)", "bound L (validation)", "learning rate"):
        assert name in legend
    assert "cross-entropy" not in legend and "validation error" not in legend
    assert len(data_of(curves.lr_axis.error_item)[0]) == 0 and len(data_of(curves.valid_item)[0]) == 4
    assert len(data_of(curves.raw_items["kl"])[0]) == DRAW_ROWS
    assert right.isVisible() and right.labelText == "learning rate"
    assert "a DRAW model does not classify" in window.class_probabilities.message.text()
    assert window.document.lacks("samples") == "a training log has no model: open its checkpoint to see samples"
    curves.export_csv(tmp_path / "d.csv")
    assert (tmp_path / "d.csv").read_text().splitlines()[0] == "split,step,wall_time,bound,nll_x,kl,lr"


def test_a_classifier_history_that_grows_keeps_its_error_on_the_right_axis(qapp, logs):
    from draw_studio.gui.curves import CurvesPlot
    from draw_studio.gui.history import TrainingHistory

    log = read_training_log(logs / "c.log.h5")
    history = TrainingHistory()
    curves = CurvesPlot(history)
    curves.resize(600, 300)
    history.set_kind(CLASSIFIER)
    rows = np.stack([log.step, log.wall_time, log.loss, log.nll_x, log.kl, log.lr], axis=1)  # (6, 6)
    history.add_steps(rows[:3])
    history.add_validation(int(log.eval_step[0]), float(log.wall_time[1]), float(log.eval_bound[0]))
    curves.refresh()
    curves.refresh()
    assert "validation error, %" in curves.legend.text() and "L_z" not in curves.legend.text()
    assert len(data_of(curves.lr_axis.error_item)[0]) == 1 and len(data_of(curves.raw_items["bound"])[0]) == 3
    history.add_steps(rows[3:])  # the run goes on
    for step, bound in zip(log.eval_step[1:], log.eval_bound[1:]):
        history.add_validation(int(step), float(log.wall_time[int(step) - 1]), float(bound))
    curves.refresh()
    curves.refresh()
    np.testing.assert_allclose(data_of(curves.lr_axis.error_item)[1], log.eval_bound)
    np.testing.assert_allclose(data_of(curves.raw_items["bound"])[1], log.loss)
    assert len(data_of(curves.valid_item)[0]) == 0 and len(data_of(curves.raw_items["nll_x"])[0]) == 0
    history.clear()  # a new (DRAW) run: DRAW's curves again
    assert history.kind == DRAW
    curves.refresh()
    curves.refresh()
    assert "bound L (train)" in curves.legend.text() and len(data_of(curves.lr_axis.error_item)[0]) == 0
    curves.deleteLater()


def test_runs_call_a_classifiers_best_validation_figure_an_error_in_percent(logs, capsys):
    classifier, draw = summarize_run(logs / "c.log.h5"), summarize_run(logs / "d.log.h5")
    log = read_training_log(logs / "c.log.h5")
    best = int(np.argmin(log.eval_bound))
    assert classifier.kind == CLASSIFIER and classifier.best_bound is None
    assert classifier.best_error_percent == pytest.approx(float(log.eval_bound[best]))
    assert classifier.best_step == int(log.eval_step[best]) and classifier.best_valid == classifier.best_error_percent
    assert draw.kind == DRAW and draw.best_error_percent is None and draw.best_bound == pytest.approx(210.0)
    assert main(["runs", str(logs / "c.log.h5"), str(logs / "d.log.h5")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "best valid" in lines[0]
    assert f" {log.eval_bound[best]:.2f}% " in lines[1] and " 210.00 " in lines[2] and "%" not in lines[2]
    assert main(["runs", "--json", str(logs / "c.log.h5"), str(logs / "d.log.h5")]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [run["kind"] for run in runs] == [CLASSIFIER, DRAW]
    assert runs[0]["best_bound"] is None and runs[0]["best_error_percent"] == pytest.approx(float(log.eval_bound[best]))
    assert runs[1]["best_bound"] == pytest.approx(210.0) and runs[1]["best_error_percent"] is None


def test_the_runs_view_never_draws_a_classifier_and_a_draw_run_against_one_axis(window, logs, qtbot):
    from draw_studio.gui.run_rows import HEADERS_AFTER, log_key

    panel, curves = window.training, window.training.curves
    assert window.open_path(logs / "c.log.h5"), window.last_error  # the open source's run: the classifier
    panel.open_runs([logs / "d.log.h5"])
    qtbot.waitUntil(lambda: not panel.runs.busy, timeout=30_000)
    panel.runs.table.set_ticked(log_key(logs / "d.log.h5"), True)  # (kept unticked when it was the source before)
    window.redraw_now()
    qtbot.waitUntil(lambda: not panel.runs.busy, timeout=30_000)
    table = panel.runs.table
    log = read_training_log(logs / "c.log.h5")
    best_column = table.columnCount() - len(HEADERS_AFTER) + HEADERS_AFTER.index("best valid")
    assert table.horizontalHeaderItem(best_column).text() == "best valid"
    assert "error" in table.horizontalHeaderItem(best_column).toolTip()
    classifier_row, draw_row = table.row_of(log_key(logs / "c.log.h5")), table.row_of(log_key(logs / "d.log.h5"))
    assert table.item(classifier_row, best_column).text() == f"{log.eval_bound.min():.2f}%"
    assert table.item(draw_row, best_column).text() == "210.00"

    # both ticked: the classifier (first) is drawn, the DRAW run is not, and the legend says so
    assert curves.overlay.active and curves.overlay.kind == CLASSIFIER and curves.overlay.other_kind() == ["d"]
    c_train, c_valid, _ = curves.overlay.items[log_key(logs / "c.log.h5")]
    d_train, d_valid, _ = curves.overlay.items[log_key(logs / "d.log.h5")]
    assert c_train.isVisible() and c_valid.isVisible() and not d_train.isVisible() and not d_valid.isVisible()
    assert c_valid.getViewBox() is curves.lr_view  # the error in % against the right axis
    np.testing.assert_allclose(c_valid.getData()[1], log.eval_bound)
    right = curves.plot.getPlotItem().getAxis("right")
    assert right.isVisible() and right.labelText == "validation error, %"
    legend = curves.legend.text()
    assert "cross-entropy (train, EMA)" in legend and "validation error, % (right axis)" in legend
    assert "not drawn (DRAW runs" in legend and ": d</i>" in legend and "bound L" not in legend

    # the classifier unticked: the DRAW run alone, in nats, its validation bound on the left axis
    table.set_ticked(log_key(logs / "c.log.h5"), False)
    window.redraw_now()
    qtbot.waitUntil(lambda: not curves.busy, timeout=30_000)
    window.redraw_now()
    assert curves.overlay.active and curves.overlay.kind == DRAW and curves.overlay.other_kind() == []
    assert d_train.isVisible() and d_valid.isVisible() and d_valid.getViewBox() is curves.plot.getViewBox()
    assert not right.isVisible() and "bound L (validation)" in curves.legend.text()
    assert "not drawn" not in curves.legend.text()
