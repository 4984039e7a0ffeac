"""The window opens an attention classifier: its checkpoint (classifying cluttered-MNIST test images) and its
classify trace; the timeline steps through the glimpses, the class probabilities follow, the gallery's
mistakes filter shows exactly the mispredicted images; and a classify trace exports as frames and a GIF.

The classifier is real: 8 glimpses of 6x6, 32 units, trained for 12 steps on real cluttered MNIST
digits; the test images are the real cluttered-MNIST test split built from ../shared/data/mnist (its cache
in a temporary folder).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QRectF  # noqa: E402
from tiny_data import MNIST_DIR, mnist_slice  # noqa: E402

from draw_studio.attention import window_extent  # noqa: E402
from draw_studio.checkpoint import save_checkpoint  # noqa: E402
from draw_studio.classifier import ClassifierConfig  # noqa: E402
from draw_studio.classifier_checkpoint import load_classifier  # noqa: E402
from draw_studio.classifier_setup import classifier_train_config, new_classifier_run  # noqa: E402
from draw_studio.classify_export import GAP, PADDING, caption, classify_frame_shape, panel_shape  # noqa: E402
from draw_studio.classify_trace import (  # noqa: E402
    read_classify_trace,
    record_classify_trace,
    save_classify_trace_from_checkpoint,
)
from draw_studio.cli import main  # noqa: E402
from draw_studio.config import TrainConfig, get_preset  # noqa: E402
from draw_studio.data import ImageSet, load_split  # noqa: E402
from draw_studio.data.cluttered import clutter_digits  # noqa: E402
from draw_studio.model import DRAW  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")
GLIMPSES = 8
CONFIG = ClassifierConfig(steps=GLIMPSES, hidden_size=32, read_n=6)


@pytest.fixture(scope="module", autouse=True)
def cluttered_cache(tmp_path_factory):
    """The cluttered-MNIST cache in a temporary folder, never a download."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        patch.setenv("DRAW_STUDIO_NO_DOWNLOAD", "1")
        yield


@pytest.fixture(scope="module")
def files(tmp_path_factory, cluttered_cache):
    """A classifier checkpoint (trained 12 steps), a classify trace of 12 test images made from it by the
    command line's code, and a tiny DRAW checkpoint."""
    folder = tmp_path_factory.mktemp("classifier")
    digits = clutter_digits(mnist_slice("train", 256), seed=3)
    train_set = ImageSet(digits.images, digits.labels, False, "cluttered training digits")
    config = classifier_train_config("tiny-classifier", steps=12, batch_size=32, lr=1e-2, validate_every=0)
    trainer = new_classifier_run(CONFIG, config, train_set=train_set, valid_set=train_set,
                                 out=folder / "c.ckpt", log=False, device="cpu")
    list(trainer.run())
    save_classify_trace_from_checkpoint(folder / "c.ckpt", folder / "c.h5", n=12, data_dir=MNIST_DIR,
                                        download=False, device="cpu")
    torch.manual_seed(1)
    save_checkpoint(folder / "d.ckpt", DRAW(get_preset("tiny").model), TrainConfig(preset="tiny", dataset="mnist"))
    return folder


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory, cluttered_cache):
    """One window for the module (each test opens its own source: opening replaces everything)."""
    from PySide6.QtCore import QSettings

    from draw_studio.gui.main_window import MainWindow

    settings = QSettings(str(tmp_path_factory.mktemp("settings") / "draw-studio.ini"), QSettings.Format.IniFormat)
    made = MainWindow(settings=settings, interactive=False)
    made.show()
    made.training.data_dir.setText(str(MNIST_DIR))
    yield made
    made.jobs.wait(30_000)
    made.close()
    made.deleteLater()


def bars(window) -> np.ndarray:
    """The heights of the class-probability bars shown now."""
    return np.asarray(window.class_probabilities.bars.opts["height"], dtype=np.float64)


def test_a_classifier_checkpoint_steps_through_its_eight_glimpses(window, files):
    assert window.open_path(files / "c.ckpt"), window.last_error
    window.redraw_now()
    document, timeline = window.document, window.timeline
    shown = document.classification
    assert document.kind == "classifier" and document.trace is None and shown is not None
    assert "classifier checkpoint c.ckpt" in window.windowTitle() and "c.ckpt" in window.source_label.text()
    # what the window shows is what the classifier says about cluttered-MNIST test images 0..63
    model, _ = load_classifier(files / "c.ckpt")
    test = load_split("cluttered-mnist", "test", MNIST_DIR, download=False).subset(slice(0, 64))
    expected = record_classify_trace(model, test.images.astype(np.float32) / 255, labels=test.labels)
    np.testing.assert_allclose(shown.class_probabilities, expected.class_probabilities, atol=1e-6)
    assert shown.labels.tolist() == test.labels.tolist() and shown.source_index.tolist() == list(range(64))
    # the timeline: glimpses 1..8, opened on the answer
    assert document.steps == GLIMPSES and (timeline.slider.minimum(), timeline.slider.maximum()) == (1, GLIMPSES)
    assert document.step == GLIMPSES and timeline.step_label.text() == f"glimpse t = {GLIMPSES} / {GLIMPSES}"
    document.set_step(0)
    assert document.step == 1  # nothing before the first glimpse
    document.set_image(5)
    for step in range(1, GLIMPSES + 1):
        document.set_step(step)
        for panel in (timeline, window.class_probabilities):
            panel.refresh()
        np.testing.assert_array_equal(timeline.input_pane.image_array(), shown.input[5, 0])
        np.testing.assert_array_equal(timeline.glimpse_pane.image_array(), shown.read_glimpse[5, step - 1, 0])
        x0, x1, y0, y1 = window_extent(shown.read_params[5, step - 1], CONFIG.read_n)
        drawn = timeline.input_read_box.shape
        assert drawn is not None and (drawn.x0, drawn.x1) == pytest.approx((x0 - 0.5, x1 - 0.5), abs=1e-4)
        assert (drawn.y0, drawn.y1) == pytest.approx((y0 - 0.5, y1 - 0.5), abs=1e-4)
        heights = bars(window)
        assert heights.sum() == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(heights, shown.class_probabilities[5, step - 1], rtol=0, atol=0)
        assert f"after glimpse {step}/{GLIMPSES}" in window.class_probabilities.bar_plot.titleLabel.text
    assert timeline.canvas_pane.message.text().startswith("no canvas") and not timeline.increment_pane.isVisible()
    # panels that do not apply say so in one line
    assert window.latents.message.isVisible() and "attention classifier" in window.latents.message.text()
    assert window.information.message.text() == "an attention classifier has no latents, so no KL per step"
    assert "attention classifier" in window.gallery.samples_grid.message.text()
    assert not window.glimpses.error_grid.showing_image() and window.glimpses.x_grid.count == GLIMPSES


def test_the_mistakes_filter_shows_exactly_the_mispredicted_images(window, files, qtbot):
    assert window.open_path(files / "c.ckpt"), window.last_error
    window.redraw_now()
    gallery, shown = window.gallery.classified, window.document.classification
    answers = shown.class_probabilities[:, -1].argmax(axis=1)  # the answer after the last glimpse, (64,)
    wrong = np.flatnonzero(answers != shown.labels)
    assert 0 < len(wrong) < shown.n  # some right, some wrong
    assert gallery.grid.count == shown.n and gallery.shown_indices.tolist() == list(range(shown.n))
    assert gallery.captions()[:3] == [f"{shown.labels[i]}→{answers[i]}" for i in range(3)]
    assert gallery.summary.text().startswith(f"{len(wrong)} of {shown.n} wrong")
    gallery.mistakes_only.setChecked(True)
    window.redraw_now()
    assert gallery.shown_indices.tolist() == wrong.tolist() and gallery.grid.count == len(wrong)
    assert all(label != answer for label, answer in (caption.split("→") for caption in gallery.captions()))
    gallery.grid.tile_clicked.emit(len(wrong) - 1)  # the last mistake: one click
    window.redraw_now()
    assert window.document.image_index == wrong[-1] and gallery.grid.highlighted == len(wrong) - 1
    assert f"label {shown.labels[wrong[-1]]}: wrong" in window.class_probabilities.message.text()
    # other test images, classified on request
    gallery.first_image.setValue(100)
    gallery.count.setValue(5)
    gallery.classify.click()
    window.redraw_now()
    other = window.document.classification
    assert other.source_index.tolist() == [100, 101, 102, 103, 104] and gallery.grid.count <= 5


def test_a_classify_trace_opens_with_what_the_file_holds(window, files):
    window.gallery.classified.mistakes_only.setChecked(False)  # a view's choice: it stays from source to source
    assert window.open_path(files / "c.h5"), window.last_error
    window.redraw_now()
    document = window.document
    assert document.kind == "classify" and "classify trace c.h5" in window.windowTitle()
    with h5py.File(files / "c.h5", "r") as f:  # read without DRAW Studio
        probabilities, labels = f["class_probabilities"][()], f["labels"][()]
    assert document.steps == GLIMPSES and window.timeline.slider.maximum() == GLIMPSES
    document.set_image(3)
    document.set_step(2)
    window.redraw_now()
    np.testing.assert_allclose(bars(window), probabilities[3, 1], rtol=0, atol=0)
    assert window.gallery.classified.grid.count == 12 and not window.gallery.classified.classify.isEnabled()
    assert window.gallery.classified.captions()[3].startswith(f"{labels[3]}→")


def test_from_draw_to_a_classifier_and_back_nothing_stays(window, files):
    assert window.open_path(files / "d.ckpt"), window.last_error
    window.redraw_now()
    draw_steps = window.document.steps
    assert window.gallery.samples_grid.count == 16 and len(bars(window)) == 0
    assert window.class_probabilities.message.text().startswith("a DRAW model does not classify")
    probabilities = window.class_probabilities
    assert not probabilities.view.isVisibleTo(probabilities)  # no empty axes
    assert window.open_path(files / "c.ckpt"), window.last_error
    window.redraw_now()
    document = window.document
    assert document.model is None and document.samples is None and document.reconstructions is None
    assert window.gallery.model_pages.currentWidget() is window.gallery.classified
    assert window.gallery.samples_grid.message.text() == document.lacks("samples")
    assert window.latents.mu_map.image.image is None and len(bars(window)) == 10
    assert probabilities.view.isVisibleTo(probabilities)
    assert not window.docks["classProbabilitiesDock"].visibleRegion().isEmpty()  # in front of Latents
    assert window.open_path(files / "d.ckpt"), window.last_error
    window.redraw_now()
    document = window.document
    assert document.classification is None and document.classifier is None and document.steps == draw_steps
    assert len(bars(window)) == 0 and window.gallery.classified.grid.count == 0
    assert window.gallery.model_pages.currentIndex() == 0 and window.gallery.samples_grid.count == 16
    timeline = window.timeline
    assert timeline.slider.minimum() == 0 and timeline.increment_pane.isVisible()
    assert not timeline.glimpse_pane.isVisible() and timeline.canvas_pane.showing_image()
    assert window.latents.mu_map.image.image is not None
    assert "glimpses of x" not in window.glimpses.x_grid.title.text()


def test_a_classify_trace_exports_frames_and_a_gif(files, tmp_path, window, qtbot, capsys):
    assert main(["export", str(files / "c.h5"), "--images", "0-1", "--frames", str(tmp_path / "f"),
                 "--gif", str(tmp_path / "c.gif")]) == 0
    trace = read_classify_trace(files / "c.h5", [0, 1])
    names = sorted(path.name for path in (tmp_path / "f").glob("*.png"))
    assert names == [f"frame_{t:03d}.png" for t in range(1, GLIMPSES + 1)]  # one per glimpse
    height, width = classify_frame_shape(2, 100, 100, 2)
    with Image.open(tmp_path / "c.gif") as gif:
        assert gif.n_frames == GLIMPSES and gif.size == (width, height)
    assert main(["export", str(files / "c.h5"), "--images", "0-1", "--no-windows", "--frames",
                 str(tmp_path / "plain")]) == 0
    side, scale = 100 * 2, 2
    for step in (1, GLIMPSES):
        framed = np.asarray(Image.open(tmp_path / "f" / f"frame_{step:03d}.png").convert("RGB")).astype(int)
        plain = np.asarray(Image.open(tmp_path / "plain" / f"frame_{step:03d}.png").convert("RGB")).astype(int)
        assert framed.shape == (height, width, 3)
        # image 0's input: the read window of this glimpse is drawn in red around its grid, nowhere else
        changed = np.argwhere(np.abs(framed - plain).sum(axis=2)[PADDING:PADDING + side, PADDING:PADDING + side] > 0)
        x0, x1, y0, y1 = window_extent(trace.read_params[0, step - 1], CONFIG.read_n)
        reach = float(np.sqrt(trace.read_params[0, step - 1, 3])) + 2
        assert len(changed) > 0
        ys, xs = changed[:, 0] / scale + 1, changed[:, 1] / scale + 1  # 1-based image coordinates
        assert xs.min() >= x0 - reach and xs.max() <= x1 + reach and ys.min() >= y0 - reach and ys.max() <= y1 + reach
        # image 0's glimpse, beside it: each of its N x N values from 0 to the glimpse's largest
        glimpse = trace.read_glimpse[0, step - 1, 0]  # (N, N)
        cell = side // CONFIG.read_n
        left = PADDING + 100 * scale + GAP + (side - cell * CONFIG.read_n) // 2
        top = PADDING + (side - cell * CONFIG.read_n) // 2
        centres = np.arange(CONFIG.read_n) * cell + cell // 2
        shown = framed[top + centres[:, None], left + centres[None, :], 0]
        np.testing.assert_allclose(shown, np.round(255 * np.clip(glimpse / glimpse.max(), 0, 1)), atol=1)
    text, wrong = caption(trace, 0, GLIMPSES)  # the line under it names the answer and its probability
    best = int(trace.class_probabilities[0, -1].argmax())
    assert text.startswith(f"glimpse {GLIMPSES}/{GLIMPSES}: p({best})={trace.class_probabilities[0, -1, best]:.2f}")
    assert wrong == (best != trace.labels[0]) and f"label {trace.labels[0]}" in text
    assert panel_shape(100, 100, 2)[1] == 2 * side + GAP
    # the window exports the open classify trace the same way, and writes it back as a classify trace
    assert window.open_path(files / "c.h5"), window.last_error
    assert window.export_trace("gif", tmp_path / "w.gif", images=[0, 1], scale=2)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=20_000)
    assert window.export_trace("trace", tmp_path / "w.h5", images=[1, 5])
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=20_000)
    with Image.open(tmp_path / "w.gif") as gif:
        assert gif.n_frames == GLIMPSES and gif.size == (width, height)
    back = read_classify_trace(tmp_path / "w.h5")
    original = read_classify_trace(files / "c.h5", [1, 5])
    np.testing.assert_array_equal(back.class_probabilities, original.class_probabilities)


def test_a_classifier_without_test_images_says_why_in_one_place(window, files, tmp_path):
    window.training.data_dir.setText(str(tmp_path))  # no MNIST here, and downloads are off
    try:
        assert window.open_path(files / "c.ckpt"), window.last_error
        window.redraw_now()
        document = window.document
        assert document.kind == "classifier" and document.classification is None and document.steps == 0
        why = document.lacks("classification")
        assert why.startswith("no test images to classify:") and "data folder" in why
        assert window.gallery.classified.grid.message.text() == why
        assert window.class_probabilities.message.text() == why and len(bars(window)) == 0
        assert window.timeline.input_pane.message.text() == "no images classified: the Gallery says why"
        assert window.gallery.classified.classify.isEnabled()  # set the folder, then Classify
        window.training.data_dir.setText(str(MNIST_DIR))
        window.gallery.classified.classify.click()
        window.redraw_now()
        assert document.classification is not None and document.steps == GLIMPSES and len(bars(window)) == 10
    finally:
        window.training.data_dir.setText(str(MNIST_DIR))


def test_the_training_form_proposes_the_open_classifier_and_start_never_trains_it_as_draw(window, files):
    training, said = window.training, []
    training.message.connect(said.append)
    assert window.open_path(files / "d.ckpt"), window.last_error
    assert training.preset.currentText() == "tiny" and training.dataset.currentText() == "mnist"
    assert window.open_path(files / "c.ckpt"), window.last_error
    # the classifier's own settings: its preset, data, steps, batch size, learning rate and validation interval
    assert training.preset.currentText() == "tiny-classifier" and training.dataset.currentText() == "cluttered-mnist"
    assert (training.steps.value(), training.batch_size.value(), training.lr.text()) == (12, 32, "0.01")
    assert training.validate_every.value() == 0
    checkpoint = str(files / "c.ckpt")  # it holds its optimiser state: continue it
    assert training.continue_run.isChecked() and training.checkpoint.text() == checkpoint
    training.start()
    assert not training.controller.active and said[-1].startswith("cannot start: the window trains DRAW models")
    assert f"draw-studio train --resume {checkpoint} --out {checkpoint} --steps 12" in said[-1]
    training.continue_run.setChecked(False)  # a new run of the classifier preset: its command line too
    training.start()
    assert not training.controller.active and "draw-studio train --preset tiny-classifier --dataset cluttered-mnist" \
        in said[-1]
    assert window.open_path(files / "d.ckpt"), window.last_error  # back to DRAW: a DRAW run of its preset
    job = training.build_job()
    assert job.train_config.preset == "tiny" and job.model_config == get_preset("tiny").model
    assert job.train_config.dataset == "mnist" and job.resume is None


def test_the_write_window_toggle_is_disabled_for_a_classifier_only(window, files, qtbot):
    from PySide6.QtCore import Qt

    write = window.timeline.window_controls.write_toggle
    for path, enabled in (("d.ckpt", True), ("c.ckpt", False), ("d.ckpt", True)):
        assert window.open_path(files / path), window.last_error
        window.redraw_now()
        assert write.isEnabled() == enabled and write.isChecked()
        assert write.toolTip() == ("show the write window (W)" if enabled else
                                   "no write window: an attention classifier only reads (its read window is red)")
        if not enabled:
            qtbot.keyClick(window.timeline.slider, Qt.Key.Key_W)  # W does nothing to a disabled toggle
            assert write.isChecked()


def test_the_classified_captions_are_larger_and_bolder_than_the_gallery_titles(window, files):
    from PySide6.QtGui import QFontInfo

    assert window.open_path(files / "c.ckpt"), window.last_error
    window.redraw_now()
    gallery = window.gallery.classified
    title = QFontInfo(window.gallery.samples_grid.title.font())  # the other galleries' captions
    tile_pixels = gallery.grid.view_box.mapViewToDevice(QRectF(0, 0, *gallery.grid.tile_size)).boundingRect()
    for item in gallery._captions:
        font = QFontInfo(item.textItem.font())
        assert font.pixelSize() > title.pixelSize() and font.bold() and not title.bold()
        assert item.fill.color().alpha() >= 220  # the clutter under it does not show through
        assert item.textItem.boundingRect().width() <= tile_pixels.width() + 1  # on its own tile


def drawn_labels(axis) -> list[tuple[str, float, float]]:
    """(text, centre, height) in pixels of the tick labels ``axis`` draws now."""
    from PySide6.QtGui import QPainter, QPicture

    picture = QPicture()
    painter = QPainter(picture)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    vertical = axis.orientation in ("left", "right")
    return [(text, rect.center().y() if vertical else rect.center().x(), rect.height()) for rect, _, text in texts]


def test_the_attention_plots_label_their_axes_with_room_at_1440x900(window, files, qapp):
    size = window.size()
    window.resize(1440, 900)
    try:
        assert window.open_path(files / "c.ckpt"), window.last_error
        window.redraw_now()
        qapp.processEvents()
        plots = window.timeline.params_view.plots
        pairs = 0
        for name, plot in plots.items():
            labels = sorted(drawn_labels(plot.getAxis("left")), key=lambda label: label[1])
            assert labels, f"{name}: no y label"
            gaps = np.diff([centre for _, centre, _ in labels])  # pixels between neighbouring labels
            assert (gaps >= 1.25 * labels[0][2]).all(), f"{name}: y labels {labels} are cramped"
            pairs += len(labels) >= 2
        assert pairs >= 3  # most plots show two labels or more
        steps = [text for text, _, _ in drawn_labels(plots["gamma"].getAxis("bottom"))]
        assert str(GLIMPSES) in steps  # the last glimpse is labelled
    finally:
        window.resize(size)
