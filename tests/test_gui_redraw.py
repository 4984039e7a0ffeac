"""What the window redraws: nothing for a panel with nothing to show, only the step's marks when the step moves,
a hidden tab when it comes into view, and a learning-rate axis that says something."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

pytest.importorskip("PySide6")
pg = pytest.importorskip("pyqtgraph")

from tiny_data import mnist_slice  # noqa: E402

from draw_studio.config import TrainConfig, get_preset  # noqa: E402
from draw_studio.data import model_inputs  # noqa: E402
from draw_studio.model import DRAW  # noqa: E402
from draw_studio.trace import TraceInputs, record_trace  # noqa: E402
from draw_studio.trace_file import write_trace  # noqa: E402
from draw_studio.training_log import TrainingLogWriter  # noqa: E402

SETTLE_MS = 300  # the event loop paints what was drawn (and the redraw timer draws what changed) within this


def settle(window, qtbot) -> None:
    """Draw every panel whose data changed, and let the event loop paint them."""
    window.redraw_now()
    qtbot.wait(SETTLE_MS)


@pytest.fixture(scope="module")
def reconstructions(tmp_path_factory):
    """A trace file of 4 test images reconstructed by a tiny DRAW model (it has mu, sigma and KL per step)."""
    torch.manual_seed(5)
    model = DRAW(get_preset("tiny").model)
    images = mnist_slice("test", 4)
    pixels, _, _ = model_inputs(images, "bernoulli")
    path = tmp_path_factory.mktemp("redraw") / "reconstructions.h5"
    write_trace(path, record_trace(model, TraceInputs(images=pixels, labels=images.labels, seed=1, source="mnist")))
    return path


def write_log(path, rates):
    """A training log of len(rates) steps with these learning rates."""
    rows = [(step, 0.1 * step, 200.0 - step, 180.0 - step, 20.0, rate) for step, rate in enumerate(rates, 1)]
    with TrainingLogWriter(path, get_preset("tiny").model, TrainConfig(preset="tiny", steps=len(rates))) as log:
        log.append_steps(rows)
        log.append_eval(len(rates), 150.0)
    return path


@pytest.fixture
def axis_work(monkeypatch):
    """Counts, per view (the object name of the plot widget), how often an axis lays out its ticks and labels."""
    counts = collections.Counter()
    generate = pg.AxisItem.generateDrawSpecs

    def counting(axis, painter):
        widget = axis.getViewWidget()
        counts[widget.objectName() if widget is not None else ""] += 1
        return generate(axis, painter)

    monkeypatch.setattr(pg.AxisItem, "generateDrawSpecs", counting)
    return counts


def test_a_log_adds_no_axis_work_to_the_panels_that_have_nothing_for_it(window, reconstructions, tmp_path, qtbot,
                                                                        axis_work):
    assert window.open_path(reconstructions)
    settle(window, qtbot)
    assert window.latents.view.isVisible() and window.information.view.isVisible()
    assert window.timeline.params_view.isVisible()
    axis_work.clear()
    assert window.open_path(write_log(tmp_path / "run.log.h5", [1e-3] * 30))
    settle(window, qtbot)
    for panel in (window.latents, window.information):
        assert panel.message.isVisible() and panel.message.text() == window.document.lacks("trace" if panel is
                                                                                          window.latents else "kl")
    assert not window.latents.view.isVisible() and not window.information.view.isVisible()
    assert not window.information.heat_view.isVisible() and not window.timeline.params_view.isVisible()
    shown_nothing = {"latentPlots", "informationPlots", "informationHeatmap", "attentionPlots"}
    assert not shown_nothing & set(axis_work), axis_work  # hidden: their axes are never laid out
    assert axis_work["curvesPlot"] > 0  # the log's curves are drawn


def test_a_step_move_lays_out_no_axis_and_moves_every_step_mark(window, reconstructions, qtbot, axis_work):
    assert window.open_path(reconstructions)
    settle(window, qtbot)
    document = window.document
    axis_work.clear()
    for step in (1, 2, 3):  # the tiny model draws in T = 4 steps
        document.set_step(step)
        settle(window, qtbot)
    follow_the_step = {"attentionPlots", "informationPlots", "latentPlots"}
    assert not follow_the_step & set(axis_work), axis_work  # their ranges are the image's, set when it was shown
    assert window.information.cursor.value() == 3
    assert all(cursor.value() == 3 for cursor in window.timeline.params_view.cursors)
    row = window.latents.mu_map.row.rect()
    assert (row.top(), row.bottom()) == pytest.approx((2.5, 3.5))
    kl = document.trace.kl[document.image_index]  # the KL plot's y range holds the bars, fixed once per image
    assert window.information.kl_plot.viewRange()[1][1] >= kl.max()


def test_a_tab_behind_another_waits_for_step_moves_and_catches_up_when_shown(window, reconstructions, qtbot):
    assert window.open_path(reconstructions)
    settle(window, qtbot)
    information = window.information
    window.docks[window.results.dock_name].raise_()  # the Results tab in front of Information per step
    qtbot.wait(SETTLE_MS)
    window.document.set_step(3)
    qtbot.wait(SETTLE_MS)
    assert information.only_step_changed and information.cursor.value() != 3  # out of view: not drawn
    window.docks["informationDock"].raise_()
    assert information.cursor.value() == 3 and not information.dirty  # drawn as its tab came to the front
    window.document.set_step(4)
    window.redraw_now()  # an explicit redraw draws every panel, in view or not
    assert information.cursor.value() == 4


def test_the_learning_rate_axis_shows_the_rate_sensibly(window, tmp_path, qtbot):
    curves = window.training.curves
    for name, rates, shown, y_range in (
            ("constant", [1e-3] * 30, True, (0.0, 2e-3)),  # 0..twice the rate, not pyqtgraph's ±0.5 around it
            ("zero", [0.0] * 30, True, (-1.0, 1.0)),
            ("none", [np.nan] * 30, False, None),  # not recorded: no axis
            ("schedule", list(np.linspace(1e-3, 1e-4, 30)), True, (1e-4, 1e-3))):  # the range follows it
        assert window.open_path(write_log(tmp_path / f"{name}.log.h5", rates))
        settle(window, qtbot)
        assert curves.plot.getPlotItem().getAxis("right").isVisible() == shown, name
        if y_range is not None:
            low, high = curves.lr_view.viewRange()[1]
            spread = y_range[1] - y_range[0]
            assert low <= y_range[0] + 1e-9 and high >= y_range[1] - 1e-9, (name, low, high)  # the rates in view
            assert low >= y_range[0] - 0.2 * spread and high <= y_range[1] + 0.2 * spread, (name, low, high)


def test_the_learning_rate_axis_goes_with_the_curves(window, reconstructions, tmp_path, qtbot):
    curves = window.training.curves
    assert window.open_path(write_log(tmp_path / "lr.log.h5", [1e-3] * 30))
    settle(window, qtbot)
    assert curves.plot.getPlotItem().getAxis("right").isVisible()
    assert window.open_path(reconstructions)  # a trace file has no training curves
    settle(window, qtbot)
    assert not curves.plot.getPlotItem().getAxis("right").isVisible()
