"""The Compare dock: two models on the same test images, one step slider.

Two real small models saved as checkpoints (A: attention, T = 6; B: no attention, T = 4), A opened in
the window with the real MNIST test images, B opened in the Compare dock. What it shows is compared
with each model's own trace (``record_trace``) of the same binarised input.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QPointF, Qt  # noqa: E402
from tiny_data import MNIST_DIR, mnist_split  # noqa: E402

from draw_studio.config import TrainConfig, get_preset  # noqa: E402
from draw_studio.explore.compare import split_inputs  # noqa: E402
from draw_studio.trace import record_trace  # noqa: E402
from draw_studio.window_style import window_shape  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
IMAGES = 12


@pytest.fixture(scope="module")
def compared(qapp, tmp_path_factory, tiny_models):
    """One window with A open and B compared on the first IMAGES test images, the Compare dock in front."""
    from PySide6.QtCore import QSettings

    from draw_studio.gui.compare_dock import show_compare
    from draw_studio.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path_factory.mktemp("settings") / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, interactive=False)
    window.training.data_dir.setText(str(MNIST_DIR))
    window.show()
    assert window.open_path(tiny_models.paths["a"])
    panel = window.compare.models
    panel.count.blockSignals(True)
    panel.count.setValue(IMAGES)
    panel.count.blockSignals(False)
    assert show_compare(window.compare, tiny_models.paths["b"], wait=True) == ""
    yield window, panel
    window.close()


@pytest.fixture(scope="module")
def own_traces(compared):
    """Each model's own trace of the same inputs, recorded here (as draw-studio eval feeds them)."""
    window, panel = compared
    model_a = window.document.model.model
    model_b = panel._loaded_b.model
    inputs, _ = split_inputs(mnist_split("test"), model_a.config, IMAGES, "mnist/test")
    return record_trace(model_a, inputs, batch_size=500), record_trace(model_b, inputs, batch_size=500)


def sigmoid(values):
    return 1.0 / (1.0 + np.exp(-values.astype(np.float64)))


def check_shown(panel, traces, image: int, step: int) -> None:
    """Both canvases are each model's own sigmoid(c_t) of image ``image`` (t clamped to its T), with its windows."""
    for side, pane, trace in (("A", panel.canvas_a, traces[0]), ("B", panel.canvas_b, traces[1])):
        shown = min(step, trace.steps)
        np.testing.assert_allclose(pane.image_array(), sigmoid(trace.canvas[image, shown, 0]), rtol=1e-5, atol=1e-6)
        read_box, write_box = panel.windows[side]
        if trace.read_params is None or shown == 0:
            assert not read_box.item.isVisible() and not write_box.item.isVisible()
            continue
        cfg = trace.model_config
        for box, params, n in ((read_box, trace.read_params, cfg.read_n), (write_box, trace.write_params,
                                                                           cfg.write_n)):
            expected = window_shape(params[image, shown - 1], n, cfg.height, cfg.width)
            assert box.item.isVisible() and box.shape == expected
    np.testing.assert_array_equal(panel.input_pane.image_array(), traces[0].input[image, 0])


def test_each_canvas_is_that_model_s_own_trace_and_the_slider_moves_both(compared, own_traces, qtbot):
    window, panel = compared
    traces = own_traces
    comparison = panel.comparison
    np.testing.assert_array_equal(comparison.trace_a.input, comparison.trace_b.input)
    assert panel.slider.maximum() == 6 and panel.step == 6  # the larger T; opened on the last step
    window.redraw_now()
    check_shown(panel, traces, 0, 6)  # B (T = 4) stays on its last step
    assert "its last step, T = 4" in panel.canvas_b.title.text()
    panel.slider.setFocus()
    for key, step in ((Qt.Key.Key_Home, 0), (Qt.Key.Key_Right, 1), (Qt.Key.Key_Right, 2), (Qt.Key.Key_End, 6)):
        qtbot.keyClick(panel.slider, key)
        assert panel.step == step
        window.redraw_now()
        check_shown(panel, traces, 0, step)
        assert panel.step_label.text() == f"t = {step} / 6"
        assert panel.kl_plot.cursor.value() == step
    panel.slider.setValue(3)
    window.redraw_now()
    check_shown(panel, traces, 0, 3)


def test_the_kl_plot_shows_the_steps_of_a_comparison_and_a_note_before_one(compared, qapp, tmp_path):
    from PySide6.QtCore import QSettings

    from draw_studio.gui.main_window import MainWindow

    window, panel = compared
    window.redraw_now()
    (x_low, x_high), _ = panel.kl_plot.viewRange()
    assert not panel.kl_plot.empty_note.isVisible() and panel.kl_plot.cursor.isVisible()
    assert x_low < 1 and x_high > 6  # A's T = 6 steps: bars at t = 1..6
    fresh = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), interactive=False)
    fresh.show()
    fresh.redraw_now()
    empty = fresh.compare.models.kl_plot
    assert empty.empty_note.isVisible() and not empty.cursor.isVisible()
    assert empty.viewRange()[0] == [0.0, 1.0]  # not a range around a step that does not exist
    fresh.close()


def test_clicking_a_scatter_point_selects_that_image(compared, own_traces, qtbot):
    window, panel = compared
    traces = own_traces
    bounds = [trace.nll_x.astype(np.float64) + trace.kl.astype(np.float64).sum(axis=1) for trace in traces]
    scatter = panel.scatter
    window.redraw_now()
    np.testing.assert_allclose(scatter.x, bounds[0], rtol=1e-6)
    np.testing.assert_allclose(scatter.y, bounds[1], rtol=1e-6)
    qtbot.waitUntil(lambda: scatter.width() > 100 and scatter.height() > 80)
    qtbot.wait(50)  # the plot's view has taken its size (the mapping below is the one the click meets)
    view = scatter.getPlotItem().vb
    on_screen = [scatter.mapFromScene(view.mapViewToScene(QPointF(*scatter.point_position(i))))
                 for i in range(IMAGES)]
    pixels = np.array([[p.x(), p.y()] for p in on_screen], dtype=np.float64)
    gaps = np.linalg.norm(pixels[:, None] - pixels[None], axis=2) + np.eye(IMAGES) * 1e9
    target = int(np.argmax(gaps.min(axis=1)))  # the point farthest from the others on screen: no other is hit
    assert target != panel.image and gaps[target].min() > 8
    where = on_screen[target]
    qtbot.mouseMove(scatter.viewport(), where)  # as a user does: pyqtgraph sends the click to what the hover found
    qtbot.wait(20)
    qtbot.mouseClick(scatter.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert panel.image == target
    panel.set_step(2)
    window.redraw_now()
    check_shown(panel, traces, target, 2)
    np.testing.assert_allclose(panel.kl_plot.bar_heights("A"), traces[0].kl[target], rtol=1e-6)
    np.testing.assert_allclose(panel.kl_plot.bar_heights("B"), traces[1].kl[target], rtol=1e-6)
    text = panel.bounds_label.text()
    difference = bounds[1][target] - bounds[0][target]
    assert f"test image {target} (a {int(mnist_split('test').labels[target])})" in text
    assert f"A <b>{bounds[0][target]:.2f}</b>" in text and f"B <b>{bounds[1][target]:.2f}</b>" in text
    assert f"B − A <b>{difference:+.2f}</b>" in text
    assert scatter.selected.data["x"][0] == pytest.approx(bounds[0][target])
    panel.y_axis.setCurrentText("B − A")
    window.redraw_now()
    np.testing.assert_allclose(scatter.y, bounds[1] - bounds[0], rtol=1e-5, atol=1e-6)


def test_a_model_of_another_image_size_is_refused_in_words(compared, tiny_models):
    from draw_studio.gui.compare_dock import show_compare

    window, panel = compared
    failure = show_compare(window.compare, tiny_models.paths["small"], wait=True)
    assert "14x14" in failure and "28x28" in failure and "same image size" in failure
    assert failure in panel.message.text()
    assert show_compare(window.compare, tiny_models.paths["b"], wait=True) == ""  # and B again


def test_without_logs_the_snapshots_tab_says_why(compared):
    window, _ = compared
    tab = window.compare.snapshots
    tab.wait()
    qapp_process()
    assert tab.snapshots is None
    assert "A: no training log beside a.ckpt" in tab.message.text() and "B: no training log beside b.ckpt" in \
        tab.message.text()


def qapp_process() -> None:
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()


def test_two_runs_snapshots_at_the_same_training_step(compared, tmp_path):
    """Last (it opens other files): two real 10-step tiny runs, snapshots every 3 and every 4 steps."""
    from tiny_data import mnist_slice

    from draw_studio.gui.compare_dock import show_compare
    from draw_studio.gui.image_view import tile_images
    from draw_studio.train import Trainer
    from draw_studio.training_snapshots import read_snapshots

    train, valid = mnist_slice("train", 64), mnist_slice("valid", 16)
    runs = {}
    for name, every, seed in (("first", 3, 1), ("second", 4, 2)):
        config = TrainConfig(preset="tiny", batch_size=16, steps=10, seed=seed, validate_every=0, checkpoint_every=0,
                             report_every=5, validation_limit=16, snapshot_every=every)
        runs[name] = tmp_path / f"{name}.ckpt"
        for _ in Trainer.from_options(get_preset("tiny").model, config, train_set=train, valid_set=valid,
                                      device="cpu", out=runs[name]).run():
            pass
    window, panel = compared
    assert window.open_path(runs["first"])
    assert show_compare(window.compare, runs["second"], wait=True) == ""
    tab = window.compare.snapshots
    window.compare.tabs.setCurrentWidget(tab)
    tab.wait()
    qapp_process()
    assert tab.steps.tolist() == [0, 3, 4, 6, 8, 9, 10]  # every step either run took a snapshot at
    tab.set_training_step(5)  # step 4: A's last snapshot is of step 3, B's of step 4
    window.redraw_now()
    assert tab.shown_steps() == {"A": 3, "B": 4}
    for side, name, step in (("A", "first", 3), ("B", "second", 4)):
        snapshots = read_snapshots(runs[name].with_name(f"{name}.log.h5"))
        expected = snapshots.samples[list(snapshots.step).index(step)].astype(np.float32) / 255.0
        np.testing.assert_array_equal(tab.grids[side].image_array(), tile_images(expected, 4))
        assert f"samples at step {step}" in tab.grids[side].title.text()
