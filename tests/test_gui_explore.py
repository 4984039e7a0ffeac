"""The Explore dock: each tool panel shows exactly what the core explore tool computes.

A real small model (the tiny preset, T = 6, attention that moves) saved as a checkpoint and opened
in the window with the real MNIST test images; each panel is driven as a user drives it (mouse on
the drawing pad and the latents heatmap, slider, typed fields, buttons) and its result is compared
with the core function called on the same inputs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from tiny_data import MNIST_DIR, mnist_split  # noqa: E402

from draw_studio import explore  # noqa: E402
from draw_studio.checkpoint import save_checkpoint  # noqa: E402
from draw_studio.config import TrainConfig, get_preset  # noqa: E402
from draw_studio.data import model_inputs  # noqa: E402
from draw_studio.explore.drawing import prepare_picture  # noqa: E402
from draw_studio.explore.reconstruct import split_bounds  # noqa: E402
from draw_studio.files import file_sha256  # noqa: E402
from draw_studio.model import DRAW  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
WAIT_MS = 20_000


def lively_model() -> DRAW:
    """The tiny preset with attention that moves, T = 6 (as the core's explore tests use)."""
    torch.manual_seed(0)
    model = DRAW(dataclasses.replace(get_preset("tiny").model, steps=6))
    with torch.no_grad():
        for head in (model.read_head, model.write_head):
            head.linear.weight.mul_(8)
    return model.eval()


@pytest.fixture(scope="module")
def test_pixels():
    pixels, _, _ = model_inputs(mnist_split("test"), "bernoulli")  # as the window's test images
    return pixels


@pytest.fixture(scope="module")
def lively_checkpoint(tmp_path_factory, test_pixels):
    """A checkpoint of the lively model, and a private cache holding the bounds of 200 of its test images."""
    folder = tmp_path_factory.mktemp("explore")
    path = folder / "lively.ckpt"
    save_checkpoint(path, lively_model(), TrainConfig(preset="tiny", dataset="mnist"), step=1)
    cache = folder / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache))
        split_bounds(lively_model(), test_pixels[:200], "mnist/test", file_sha256(path))  # found by the panel
    return path, cache


@pytest.fixture(scope="module")
def explore_window(qapp, tmp_path_factory):
    """One window for the module (building one costs seconds on a busy machine); each test opens anew."""
    from PySide6.QtCore import QSettings

    from draw_studio.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path_factory.mktemp("settings") / "s.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, interactive=False)
    window.training.data_dir.setText(str(MNIST_DIR))
    window.show()
    yield window
    window.close()


@pytest.fixture
def opened(explore_window, lively_checkpoint, monkeypatch):
    """The window with the lively model's checkpoint just opened (a fresh document)."""
    path, cache = lively_checkpoint
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    window = explore_window
    window.explore.wait()
    assert window.open_path(path)
    window.redraw_now()
    return window, window.document.model.model


def run_tool(window, name: str):
    tool = window.explore.show_tool(name)
    window.redraw_now()
    return tool


def test_a_drawing_is_reconstructed_on_release_and_every_panel_shows_it(opened, qtbot, test_pixels):
    window, model = opened
    panel = run_tool(window, "drawing")
    pad = panel.pad
    qtbot.waitUntil(lambda: pad.width() > 100)
    rect = pad.image_rect()
    at = [QPoint(int(rect.x() + rect.width() * fx), int(rect.y() + rect.height() * fy))
          for fx, fy in ((0.35, 0.25), (0.6, 0.3), (0.45, 0.55), (0.4, 0.8))]
    qtbot.mousePress(pad, Qt.MouseButton.LeftButton, pos=at[0])
    for point in at[1:]:
        qtbot.mouseMove(pad, point)
        pad.mouseMoveEvent(_moved(point))  # offscreen QTest moves carry no buttons: as the platform sends them
    assert window.document.reconstructions.n == 8  # the checkpoint's test reconstructions, until the release
    qtbot.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=at[-1])
    qtbot.waitUntil(lambda: panel.result is not None, timeout=WAIT_MS)
    document = window.document
    assert document.trace is document.reconstructions and document.trace.n == 1
    pixels, _ = prepare_picture(pad.ink, model.config)
    assert set(np.unique(pixels)) <= {0.0, 1.0}  # a Bernoulli model reads it binarised at 0.5
    core = explore.reconstruct_pixels(model, pixels, {}, seed=0)
    bound = float(document.trace.nll_x[0] + document.trace.kl[0].sum())
    assert bound == pytest.approx(core.intervention["bound"], rel=1e-6)
    np.testing.assert_array_equal(document.trace.input, pixels)
    test = split_bounds(model, test_pixels[:200], "mnist/test")
    assert panel.result.intervention["test_percentile"] == pytest.approx(test.percentile(bound))
    window.redraw_now()
    assert f"{bound:.2f} nats" in panel.bound_label.text()
    assert f"mean {test.mean:.2f} nats" in panel.test_label.text()
    assert "binarised at 0.5" in panel.pixels_note.text()
    np.testing.assert_allclose(window.timeline.canvas_pane.image_array(),
                               1 / (1 + np.exp(-document.trace.canvas[0, document.step, 0])), rtol=1e-6)


def _moved(point):
    from PySide6.QtGui import QMouseEvent

    return QMouseEvent(QMouseEvent.Type.MouseMove, QPointF(point), QPointF(point), Qt.MouseButton.NoButton,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)


def test_a_loaded_picture_of_a_test_image_has_that_images_bound(opened, qtbot, tmp_path, test_pixels):
    window, model = opened
    panel = run_tool(window, "drawing")
    picture = tmp_path / "digit.png"
    Image.fromarray((test_pixels[5, 0] * 255).astype(np.uint8)).save(picture)  # as the model reads it
    panel.centre.setChecked(False)  # the test image as it is
    assert panel.load_picture(picture)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(window.document.trace.input[0], test_pixels[5])
    core = explore.reconstruct_pixels(model, test_pixels[5:6], {}, seed=0)
    assert panel.result.intervention["bound"] == pytest.approx(core.intervention["bound"], rel=1e-6)


def test_clicking_a_latent_cell_and_moving_the_slider_repaints_as_the_core_edit(opened, qtbot):
    window, model = opened
    trace, image = window.document.trace, 2
    window.document.set_image(image)
    window.latents.refresh()
    step, latent = 3, 1
    mu_map = window.latents.mu_map
    view = window.latents.view
    qtbot.waitUntil(lambda: view.width() > 50)
    scene = mu_map.plot.vb.mapViewToScene(QPointF(latent + 0.5, step + 1))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(scene))
    panel = window.explore.latent
    assert window.explore.current_tool is panel and panel.cell == (step, latent)
    assert window.latents.selected_cell == (step, latent)
    qtbot.waitUntil(lambda: panel.edited is not None, timeout=WAIT_MS)  # the trace's own value first
    np.testing.assert_allclose(panel.edited["canvas"][0], trace.canvas[image], atol=1e-5)
    panel.slider.setValue(250)  # z = 2.5
    qtbot.waitUntil(lambda: panel.edited_value == 2.5, timeout=WAIT_MS)
    core = explore.edit_latent(model, trace, image, step, latent, 2.5)
    np.testing.assert_array_equal(panel.edited["canvas"], core.trace.canvas)
    replay = explore.ImageRun(model, trace, image).record["canvas"][0].numpy()  # the trace, to float rounding
    np.testing.assert_array_equal(panel.edited["canvas"][0, :step + 1], replay[:step + 1])  # c_0..c_{t-1} kept
    window.redraw_now()
    final = 1 / (1 + np.exp(-core.trace.canvas[0, -1, 0]))
    np.testing.assert_allclose(panel.final_pane.image_array(), final, rtol=1e-6)
    np.testing.assert_allclose(panel.difference_pane.image_array(),
                               final - 1 / (1 + np.exp(-trace.canvas[image, -1, 0])), atol=1e-6)
    panel.show_in_document()
    qtbot.waitUntil(lambda: window.document.trace is not trace, timeout=WAIT_MS)
    np.testing.assert_array_equal(window.document.trace.canvas, core.trace.canvas)


def test_fork_panel_shows_the_core_fork_and_the_commitment_curve(opened, qtbot):
    window, model = opened
    trace, image = window.document.trace, 1
    window.document.set_image(image)
    window.document.set_step(2)
    panel = run_tool(window, "fork")
    panel.seed.setValue(3)
    assert panel.k.value() == 16
    panel.fork_button.click()
    qtbot.waitUntil(lambda: panel.forked is not None, timeout=WAIT_MS)
    core = explore.fork(model, trace, image, 2, 16, 3)
    np.testing.assert_array_equal(panel.forked.trace.canvas, core.trace.canvas)
    window.document.set_step(5)
    window.redraw_now()
    assert panel.grid.count == 16
    assert "forked at t = 2" in panel.grid.title.text() and "c_5" in panel.grid.title.text()
    panel.curve_button.click()
    qtbot.waitUntil(lambda: panel.curve is not None, timeout=WAIT_MS)
    assert len(panel.curve) == model.config.steps + 1
    steps = model.config.steps
    assert (panel.progress.maximum(), panel.progress.value()) == (steps, steps)  # the core's progress, step by step
    np.testing.assert_allclose(panel.curve, explore.commitment(model, trace, image, 16, 3).intervention["curve"])
    spot = panel.points.points()[4]
    panel._on_point_clicked(panel.points, [spot])  # what a click on the point t = 4 sends
    qtbot.waitUntil(lambda: panel.forked.intervention["at"] == 4, timeout=WAIT_MS)
    np.testing.assert_array_equal(panel.forked.trace.canvas, explore.fork(model, trace, image, 4, 16, 3).trace.canvas)


def test_a_typed_window_runs_the_core_move_window(opened, qtbot):
    window, model = opened
    trace, image = window.document.trace, 0
    window.document.set_step(3)  # the window of trace step 2
    panel = run_tool(window, "window")
    assert panel.fields["gx"].value() == pytest.approx(float(trace.write_params[image, 2, 0]), abs=1e-3)
    panel.fields["gx"].setValue(14.0)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=WAIT_MS)
    core = explore.move_window(model, trace, image, 2, write={"gx": 14.0})
    np.testing.assert_array_equal(panel.result.trace.canvas, core.trace.canvas)
    assert panel.result.intervention["bound_after"] == pytest.approx(core.intervention["bound_after"])
    window.redraw_now()
    assert f"{core.intervention['bound_after']:.2f} nats" in panel.bound_label.text()
    panel.head.setCurrentText("read")
    panel.fields["gy"].setValue(9.0)
    qtbot.waitUntil(lambda: panel.result is not None and "read" in panel.result.intervention, timeout=WAIT_MS)
    both = explore.move_window(model, trace, image, 2, write={"gx": 14.0}, read={"gy": 9.0})
    np.testing.assert_array_equal(panel.result.trace.canvas, both.trace.canvas)


def test_dragging_a_window_runs_the_core_move_window_on_one_kept_replay(opened, qtbot):
    from types import SimpleNamespace

    window, model = opened
    trace, image, step = window.document.trace, 1, 3
    window.document.set_image(image)
    window.document.set_step(step + 1)  # the window of trace step 3
    panel = run_tool(window, "window")
    panel.head.setCurrentText("write")  # a drag moves the head chosen (the module's window is shared)
    view = panel.canvas_pane.view_box
    for x, y in ((8.0, 9.0), (12.0, 14.0), (17.25, 10.5)):  # view coordinates: pixel j spans [j, j+1]
        panel._on_drag(SimpleNamespace(accept=lambda: None, pos=lambda x=x, y=y: view.mapFromView(QPointF(x, y))))
    wanted = {"gx": 17.75, "gy": 11.0}  # the paper's 1-based centres
    assert panel.overrides["write"] == pytest.approx(wanted, abs=0.011)
    qtbot.waitUntil(lambda: panel.result is not None and not panel.runs.pending, timeout=WAIT_MS)
    mover = panel._mover
    assert mover.run.replayed == model.config.steps  # one replay, kept for the next move
    core = explore.move_window(model, trace, image, step, write=dict(panel.overrides["write"]))
    np.testing.assert_array_equal(panel.result.trace.canvas, core.trace.canvas)
    np.testing.assert_array_equal(panel.result.trace.kl, core.trace.kl)
    panel.set_window("write", gy=5.0)
    qtbot.waitUntil(lambda: panel.result is not None and panel.result.intervention["write"]["set"]["gy"] == 5.0,
                    timeout=WAIT_MS)
    assert panel._mover is mover


def test_the_bench_drag_measurement_sees_the_panel_repaint(explore_window, lively_checkpoint, monkeypatch):
    from draw_studio.gui.explore_latency import drag_figures

    path, cache = lively_checkpoint
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    explore_window.explore.wait()
    result = drag_figures(explore_window, str(path), seconds=2.0, step=1, latent=2)
    assert result["explore_drag_model"] == path.name and result["explore_drag_trace"] == "reconstruct"
    assert result["explore_drag_moves"] > 0 and 0 < result["explore_drag_frames"] <= result["explore_drag_moves"] + 1
    assert result["explore_drag_regenerations"] >= result["explore_drag_frames"]
    for key in ("latency_p50_ms", "latency_p99_ms", "latency_max_ms", "move_to_frame_median_ms",
                "move_to_frame_p95_ms", "regenerate_median_ms", "regenerate_p95_ms", "redraw_median_ms"):
        assert np.isfinite(result[f"explore_drag_{key}"]) and result[f"explore_drag_{key}"] >= 0, key
    panel = explore_window.explore.latent
    assert panel.cell == (1, 2) and "redraw" not in vars(panel)  # the panel is left as it was
    assert panel.edited_value == panel.slider.value() / 100  # the last move's image is the one shown


def test_interpolation_strip_is_the_core_interpolation_and_exports_a_gif(opened, qtbot, tmp_path, test_pixels):
    window, model = opened
    panel = run_tool(window, "interpolate")
    panel.set_ends(("test", 3), ("test", 2))
    panel.go.click()
    qtbot.waitUntil(lambda: panel.result is not None, timeout=WAIT_MS)
    core = explore.interpolate(model, test_pixels[3], test_pixels[2], 9, ("linear",))
    np.testing.assert_array_equal(panel.result.trace.canvas, core.trace.canvas)
    window.redraw_now()
    assert panel.strip.count == 9
    gif = tmp_path / "strip.gif"
    assert panel.export_gif(gif)
    qtbot.waitUntil(lambda: not panel.jobs.busy, timeout=WAIT_MS)
    with Image.open(gif) as frames:
        assert frames.n_frames >= model.config.steps + 1 and frames.width > 9 * 28
