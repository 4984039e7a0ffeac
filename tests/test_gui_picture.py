"""Reading the picture: attention windows that never hide the image, legible glimpses, zoom, read-outs, keys, export.

The timeline and glimpses panels are built on real traces: the tiny preset on
real MNIST digits, and the shipped model for the glimpses (an untrained model
reads almost nothing). Where a test needs a window of a given shape (e.g.
wider than the image), that step's parameters are set in the trace.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QImage, QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from tiny_data import REPO, mnist_slice  # noqa: E402

from draw_studio.checkpoint import load_model  # noqa: E402
from draw_studio.config import get_preset  # noqa: E402
from draw_studio.data import model_inputs  # noqa: E402
from draw_studio.gui import configure_pyqtgraph  # noqa: E402
from draw_studio.gui.glimpses_panel import GlimpsesPanel  # noqa: E402
from draw_studio.gui.state import StudioState  # noqa: E402
from draw_studio.gui.timeline_panel import TimelinePanel  # noqa: E402
from draw_studio.model import DRAW  # noqa: E402
from draw_studio.trace import TraceInputs, record_trace  # noqa: E402
from draw_studio.trace_file import write_trace  # noqa: E402


@pytest.fixture(scope="module")
def real_trace():
    torch.manual_seed(3)
    model = DRAW(get_preset("tiny").model)  # 28x28, T=4, read 2x2, write 3x3
    images = mnist_slice("test", 6)
    pixels, _, _ = model_inputs(images, "bernoulli")
    return record_trace(model, TraceInputs(images=pixels, labels=images.labels, seed=1, source="mnist/test"))


@pytest.fixture(scope="module")
def shipped_trace():
    """The shipped model (T = 64, read 2x2) on three real test digits."""
    model, _ = load_model(REPO / "models" / "mnist-attention.ckpt")
    images = mnist_slice("test", 3)
    pixels, _, _ = model_inputs(images, "bernoulli")
    return record_trace(model, TraceInputs(images=pixels, labels=images.labels, seed=1, source="mnist/test"))


def with_windows(trace, read=None, write=None, step=1):
    """``trace`` with image 0's read and/or write window of ``step`` set to these (gx, gy, delta, sigma2, gamma)."""
    changes = {}
    for name, params in (("read_params", read), ("write_params", write)):
        if params is not None:
            values = getattr(trace, name).copy()
            values[0, step - 1] = params
            changes[name] = values
    return dataclasses.replace(trace, **changes)


@pytest.fixture
def timeline(qtbot):
    configure_pyqtgraph()
    panel = TimelinePanel(StudioState())
    qtbot.addWidget(panel)
    panel.resize(900, 700)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def show(panel, trace, step=1, image=0):
    panel.state.set_trace(trace, image_index=image, step=step)
    panel.refresh()
    QApplication.processEvents()


def grab(pane) -> np.ndarray:
    """What the pane's image area looks like on screen: (h, w, 3) uint8."""
    QApplication.processEvents()
    image = pane.graphics.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, :image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def on_screen(pane, x: float, y: float) -> tuple[int, int]:
    """Widget pixel (column, row) of image coordinate (x, y) in ``pane``."""
    point = pane.graphics.mapFromScene(pane.view_box.mapViewToScene(QPointF(x, y)))
    return point.x(), point.y()


def grid_on_screen(pane, shape, inset=2):
    """Rows and columns slices of the screen pixels inside the window's grid (``inset`` pixels in)."""
    (left, top), (right, bottom) = on_screen(pane, shape.x0, shape.y0), on_screen(pane, shape.x1, shape.y1)
    return slice(top + inset, bottom - inset), slice(left + inset, right - inset)


def test_default_windows_leave_the_image_under_them_visible(timeline, real_trace):
    from draw_studio.window_style import window_shape

    # the barely trained model: sigma^2 ~ 300 painted a solid border over the whole image
    trace = with_windows(real_trace, read=[12.0, 13.0, 8.0, 300.0, 1.0], write=[15.0, 14.0, 4.0, 300.0, 1.0])
    show(timeline, trace)
    pane, controls = timeline.canvas_pane, timeline.window_controls
    assert timeline.read_box.item.isVisible() and timeline.write_box.item.isVisible()
    controls.write_toggle.setChecked(False)
    read_only = grab(pane)
    controls.write_toggle.setChecked(True)
    controls.read_toggle.setChecked(False)
    write_only = grab(pane)
    controls.write_toggle.setChecked(False)
    plain = grab(pane)
    assert not timeline.read_box.item.isVisible() and not timeline.write_box.item.isVisible()
    for drawn, params, n in ((read_only, trace.read_params[0, 0], 2), (write_only, trace.write_params[0, 0], 3)):
        rows, columns = grid_on_screen(pane, window_shape(params, n, 28, 28))
        under = np.abs(drawn[rows, columns].astype(int) - plain[rows, columns]).max(axis=-1)
        assert under.size > 400 and (under <= 2).mean() >= 0.98  # the pixels under the window are untouched
        whole = np.abs(drawn.astype(int) - plain).max(axis=-1)
        assert (whole <= 0.25 * 255).mean() > 0.9  # elsewhere a translucent band: the image is seen through it


def test_toggles_opacity_and_style_change_what_is_drawn(timeline, real_trace, qtbot):
    show(timeline, with_windows(real_trace, read=[10.0, 10.0, 6.0, 4.0, 1.0], write=[18.0, 18.0, 3.0, 4.0, 1.0]))
    controls, read, write = timeline.window_controls, timeline.read_box, timeline.write_box
    timeline.install_shortcuts(timeline)
    timeline.focus_timeline()
    qtbot.keyClick(timeline.slider, Qt.Key.Key_R)
    assert not read.item.isVisible() and not timeline.input_read_box.item.isVisible() and write.item.isVisible()
    qtbot.keyClick(timeline.slider, Qt.Key.Key_W)
    assert not write.item.isVisible()
    qtbot.keyClick(timeline.slider, Qt.Key.Key_R)
    qtbot.keyClick(timeline.slider, Qt.Key.Key_W)
    assert read.item.isVisible() and write.item.isVisible()
    before = (read.outline.pen().color().alphaF(), read.band.brush().color().alphaF())
    seen = grab(timeline.canvas_pane)
    for _ in range(3):
        qtbot.keyClick(timeline.slider, Qt.Key.Key_BracketLeft)  # less opaque
    assert controls.opacity == pytest.approx(0.5)
    after = (read.outline.pen().color().alphaF(), read.band.brush().color().alphaF())
    assert after[0] == pytest.approx(0.5, abs=0.01) and after[0] < before[0] and after[1] < before[1]
    assert not np.array_equal(grab(timeline.canvas_pane), seen)
    controls.set_opacity(0.0)
    assert not read.item.isVisible()
    controls.set_opacity(1.0)
    qtbot.keyClick(timeline.slider, Qt.Key.Key_B)  # the paper's border: solid, as wide as the filter
    assert controls.style == "border" and read.band.brush().color().alphaF() == pytest.approx(1.0, abs=0.01)
    assert read.outline.path().isEmpty()


def test_a_window_wider_than_the_image_is_clipped_and_marked(timeline, real_trace):
    show(timeline, with_windows(real_trace, write=[14.5, 14.5, 30.0, 1.0, 1.0]))  # grid -15.5..44.5: past every edge
    write = timeline.write_box
    assert write.item.isVisible()
    assert "write window extends past the image (left, right, top, bottom)" in timeline.window_note.text()
    markers = write.markers.path().boundingRect()
    assert markers.left() >= 0 and markers.right() <= 28 and markers.width() > 20 and markers.height() > 20
    shot = grab(timeline.canvas_pane)
    green = (shot[..., 1] > 150) & (shot[..., 0] < 120) & (shot[..., 2] < 150)
    for x, y in ((0.3, 14), (27.7, 14), (14, 0.3), (14, 27.7)):  # an arrow at the middle of each edge
        column, row = on_screen(timeline.canvas_pane, x, y)
        assert green[row - 3:row + 4, column - 3:column + 4].any(), (x, y)
    show(timeline, with_windows(real_trace, write=[60.0, 14.0, 2.0, 1.0, 1.0]), step=1)
    assert "write window wholly outside the image (right)" in timeline.window_note.text()
    assert write.item.isVisible() and not write.markers.path().isEmpty() and write.outline.path().isEmpty()


def test_zoom_pan_and_the_value_under_the_cursor(timeline, real_trace, qtbot):
    show(timeline, real_trace, step=2, image=1)
    pane = timeline.canvas_pane
    width = pane.view_box.viewRange()[0][1] - pane.view_box.viewRange()[0][0]
    centre = QPointF(*on_screen(pane, 14, 14))
    wheel = QWheelEvent(centre, pane.graphics.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(pane.graphics.viewport(), wheel)
    zoomed = pane.view_box.viewRange()[0][1] - pane.view_box.viewRange()[0][0]
    assert zoomed < 0.8 * width
    linked = timeline.increment_pane.view_box.viewRange()[0]
    assert linked[1] - linked[0] == pytest.approx(zoomed, rel=0.05)  # the three images zoom together
    pane.fit_view()
    texts = []
    timeline.hover_text.connect(texts.append)
    column, row = on_screen(pane, 9.5, 17.5)  # the centre of pixel x 9, y 17
    qtbot.mouseMove(pane.graphics.viewport(), QPoint(column, row))
    QApplication.processEvents()
    logit = float(real_trace.canvas[1, 2, 0, 17, 9])
    assert texts and texts[-1] == (f"canvas (x 9, y 17): sigmoid(c_2) = {1 / (1 + np.exp(-logit)):.3f}, "
                                   f"logit c_2 = {logit:.3f}")
    column, row = on_screen(timeline.input_pane, 3.5, 20.5)
    qtbot.mouseMove(timeline.input_pane.graphics.viewport(), QPoint(column, row))
    QApplication.processEvents()
    assert texts[-1] == f"input x (x 3, y 20) = {float(real_trace.input[1, 0, 20, 3]):.3f}"


def test_glimpse_tiles_are_each_scaled_to_their_own_range(qtbot, shipped_trace):
    configure_pyqtgraph()
    state = StudioState()
    panel = GlimpsesPanel(state)
    qtbot.addWidget(panel)
    panel.show()
    state.set_trace(shipped_trace, image_index=1, step=30)
    panel.refresh()
    grid, (h, w) = panel.x_grid, panel.x_grid.tile_size
    shown = grid.image_array()
    glimpses = shipped_trace.read_glimpse[1, :, 0]  # (T, Nr, Nr): the x half of a grey image's glimpses
    tops = glimpses.reshape(len(glimpses), -1).max(axis=1)
    assert np.median(tops) < 0.2 * tops.max()  # one scale for all would leave most tiles dark
    assert grid.image_item.levels.tolist() == [0.0, 1.0]
    for t in np.flatnonzero(tops > 1e-9):
        top, left = 1 + (t // grid.columns) * (h + 1), 1 + (t % grid.columns) * (w + 1)
        tile = shown[top:top + h, left:left + w]
        assert tile.max() == pytest.approx(1.0)  # every step's largest value at full brightness
        np.testing.assert_allclose(tile, glimpses[t] / tops[t], rtol=1e-5)
    error = panel.error_grid.image_array()
    assert np.nanmax(np.abs(error)) == pytest.approx(1.0)
    current = glimpses[29]
    assert panel.x_large.image_array().shape == current.shape
    assert panel.x_large.title.text() == f"t = 30: x {current.min():.3g}..{current.max():.3g}"
    assert panel.x_large.image_item.levels.tolist() == pytest.approx([0.0, float(current.max())])
    panel.global_scale.setChecked(True)  # the option: one scale for all the steps of the image
    panel.refresh()
    assert grid.image_item.levels.tolist() == pytest.approx([0.0, float(glimpses.max())])
    np.testing.assert_allclose(grid.image_array()[1:1 + h, 1:1 + w], glimpses[0], rtol=1e-6)


def test_timeline_keys_work_with_focus_in_the_steps_field(window, tmp_path, real_trace, qtbot):
    path = tmp_path / "t.h5"
    write_trace(path, real_trace)
    assert window.open_path(path)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    steps = window.training.steps
    steps.setFocus()  # where opening a file left the focus on today's main
    qtbot.waitUntil(steps.hasFocus)
    window.state.set_step(2)
    for key, expected in ((Qt.Key.Key_Left, 1), (Qt.Key.Key_End, 4), (Qt.Key.Key_Home, 0), (Qt.Key.Key_Right, 1),
                          (Qt.Key.Key_PageUp, 4), (Qt.Key.Key_PageDown, 0)):
        qtbot.keyClick(steps, key)
        assert window.state.step == expected, key
    assert steps.hasFocus()
    qtbot.mouseClick(steps.lineEdit(), Qt.MouseButton.LeftButton)  # the user goes to edit the field
    qtbot.keyClick(steps, Qt.Key.Key_End)
    qtbot.keyClick(steps, Qt.Key.Key_Left)
    assert window.state.step == 0  # the keys are the field's while it is being edited
    qtbot.keyClick(steps, Qt.Key.Key_Return)
    qtbot.keyClick(steps, Qt.Key.Key_End)
    assert window.state.step == 4  # after Return they move the step again
    window.timeline.focus_timeline()
    assert window.timeline.slider.hasFocus()
    qtbot.keyClick(window.timeline.slider, Qt.Key.Key_Home)
    assert window.state.step == 0


def test_export_dialog_choices_give_the_frames_and_size_asked_for(window, tmp_path, real_trace, qtbot):
    from draw_studio.gui.export_dialog import ExportDialog

    window.state.set_trace(real_trace, image_index=2, step=4)
    dialog = ExportDialog(window, real_trace, "gif", selected=2)
    qtbot.addWidget(dialog)
    dialog.range_images.setChecked(True)
    dialog.range_text.setText("4-1")
    assert "runs backwards" in dialog.problem() and not dialog.buttons.buttons()[0].isEnabled()
    dialog.range_text.setText("1,3-4")
    dialog.scale.setValue(2)
    dialog.fps.setValue(5)
    dialog.windows.setChecked(False)
    options = dialog.options()
    assert options.images == [1, 3, 4] and options.scale == 2 and not options.windows
    assert dialog.summary.text() == "5 frames of 3 image(s), 118 × 118 pixels"
    assert window.exporter.trace("gif", tmp_path / "a.gif", fps=options.fps, images=options.images,
                                 scale=options.scale, windows=options.windows, style=options.style)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=20_000)
    from PIL import Image

    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.size == (118, 118) and gif.mode != "RGB"  # 2 x 2 grid of 28 + 1 pixels, times 2; no windows
    dialog.selected_image.setChecked(True)
    assert dialog.options().images == [2]
    assert window.exporter.trace("frames", tmp_path / "f", images=[2], scale=3)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=20_000)
    frames = sorted((tmp_path / "f").glob("*.png"))
    assert len(frames) == real_trace.steps + 1
    assert Image.open(frames[-1]).size == (30 * 3, 30 * 3)


def test_a_title_too_long_for_its_view_ends_in_an_ellipsis_with_the_whole_text_as_tooltip(qtbot):
    from draw_studio.gui.image_view import TileGrid

    grid = TileGrid("reconstructions")
    qtbot.addWidget(grid)
    grid.resize(500, 300)
    grid.show()
    whole = "reconstructions of two-digit-mnist/test (click: show everywhere)"
    grid.set_title(whole)
    qtbot.waitUntil(lambda: grid.title.width() > 450)
    grid.title.grab()  # painted (grab paints whether or not the platform exposes the window)
    assert grid.title.text() == whole and grid.title.toolTip() == ""  # it fits: no tooltip
    grid.resize(120, 300)
    qtbot.waitUntil(lambda: grid.title.width() <= 120)
    picture = grid.title.grab().toImage()
    assert grid.title.text() == whole and grid.title.toolTip() == whole
    left_ink = [any(picture.pixelColor(x, y).lightness() < 128 for y in range(picture.height())) for x in range(8)]
    assert any(left_ink)  # the text starts at the left edge: its end is what is cut, not both ends
