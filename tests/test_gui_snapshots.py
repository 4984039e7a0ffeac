"""Learning to draw in the window: the Gallery's training-step slider over a log's snapshots, the GIF,
a live run's snapshots as they come, and logs without snapshots."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PIL import Image  # noqa: E402
from tiny_data import mnist_slice  # noqa: E402

from draw_studio.cli import main  # noqa: E402
from draw_studio.config import TrainConfig, get_preset  # noqa: E402
from draw_studio.gui.gallery_panel import LEARNING_TAB, MODEL_TAB  # noqa: E402
from draw_studio.gui.image_view import tile_images  # noqa: E402
from draw_studio.gui.worker import TrainingJob  # noqa: E402
from draw_studio.train import Trainer  # noqa: E402
from draw_studio.training_snapshots import read_snapshots  # noqa: E402

TINY = get_preset("tiny").model
TRAIN, VALID = mnist_slice("train", 200), mnist_slice("valid", 64)

pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


def config(**changes) -> TrainConfig:
    base = TrainConfig(preset="tiny", batch_size=16, steps=10, seed=3, validate_every=0, checkpoint_every=0,
                       report_every=1, validation_limit=64, snapshot_every=3)
    return dataclasses.replace(base, **changes)


def train(out, **changes) -> None:
    for _ in Trainer.from_options(TINY, config(**changes), train_set=TRAIN, valid_set=VALID, device="cpu",
                                  out=out).run():
        pass


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real tiny run of 10 steps with a snapshot every 3 steps: snapshots of steps 0, 3, 6, 9, 10."""
    folder = tmp_path_factory.mktemp("snapshots")
    train(folder / "tiny.ckpt")
    return folder / "tiny.ckpt", folder / "tiny.log.h5"


def shown_tiles(grid) -> np.ndarray:
    return np.asarray(grid.image_array())


def expected_tiles(images: np.ndarray, columns: int) -> np.ndarray:
    return tile_images(images.astype(np.float32) / 255.0, columns)


def test_an_opened_log_shows_the_slider_over_exactly_its_snapshot_steps(window, run):
    _, log = run
    held = read_snapshots(log)
    assert window.open_path(log)
    window.redraw_now()
    gallery, learning = window.gallery, window.gallery.learning
    assert gallery.tabs.isTabVisible(LEARNING_TAB) and gallery.tabs.currentIndex() == LEARNING_TAB
    assert learning.snapshots.step.tolist() == held.step.tolist() == [0, 3, 6, 9, 10]
    assert (learning.slider.minimum(), learning.slider.maximum()) == (0, 4)
    assert learning.slider.value() == 4 and learning.step_label.text() == "step 10 (5 of 5)"  # opens on the last
    for index in (0, 2, 4, 1):  # moving the slider shows that step's samples, inputs and reconstructions
        learning.slider.setValue(index)
        window.redraw_now()
        assert learning.step == int(held.step[index])
        assert learning.step_label.text().startswith(f"step {held.step[index]:,} ")
        np.testing.assert_array_equal(shown_tiles(learning.samples_grid), expected_tiles(held.samples[index], 4))
        np.testing.assert_array_equal(shown_tiles(learning.samples_grid)[1:29, 1:29],
                                      held.samples[index, 0, 0] / np.float32(255))  # the first sample itself
        np.testing.assert_array_equal(
            shown_tiles(learning.reconstructions_grid),
            expected_tiles(np.concatenate([held.inputs, held.reconstructions[index]]), 4))
    assert not np.array_equal(held.samples[0], held.samples[-1])  # so the comparisons above can tell steps apart
    assert window.last_error is None and not window.draw_errors


def test_a_checkpoint_shows_the_snapshots_of_the_log_beside_it_on_its_own_tab(window, run):
    checkpoint, log = run
    assert window.open_path(checkpoint)
    window.redraw_now()
    gallery = window.gallery
    assert window.document.log_path == str(log)
    assert gallery.tabs.isTabVisible(LEARNING_TAB) and gallery.tabs.currentIndex() == MODEL_TAB
    assert gallery.learning.snapshots.step.tolist() == [0, 3, 6, 9, 10]


def test_export_gif_writes_log_exports_gif_one_frame_per_snapshot(window, run, tmp_path, qtbot):
    _, log = run
    window.open_path(log)
    window.redraw_now()
    learning = window.gallery.learning
    assert learning.export_button.isEnabled()
    assert learning.export_gif(tmp_path / "learning.gif")
    qtbot.waitUntil(lambda: not learning.gif_jobs.busy, timeout=20_000)
    window.redraw_now()
    with Image.open(tmp_path / "learning.gif") as gif:
        assert gif.n_frames == 5
    assert learning.note.text() == f"wrote {tmp_path / 'learning.gif'} (5 frames)"
    assert main(["log-export", str(log), "--snapshots-gif", str(tmp_path / "cli.gif")]) == 0
    assert (tmp_path / "learning.gif").read_bytes() == (tmp_path / "cli.gif").read_bytes()


def test_a_log_without_snapshots_opens_without_slider_or_error(window, run, tmp_path):
    train(tmp_path / "old.ckpt", snapshot_every=0, steps=4)
    assert len(read_snapshots(tmp_path / "old.log.h5")) == 0
    window.open_path(run[1])  # a log with snapshots first: nothing of it may stay
    window.redraw_now()
    assert window.open_path(tmp_path / "old.log.h5")
    window.redraw_now()
    gallery = window.gallery
    assert not gallery.tabs.isTabVisible(LEARNING_TAB) and gallery.tabs.currentIndex() == MODEL_TAB
    assert not gallery.learning.available and gallery.learning.problem == ""
    assert not gallery.learning.export_gif(tmp_path / "none.gif") and not (tmp_path / "none.gif").exists()
    assert window.last_error is None and not window.draw_errors


def test_a_live_runs_snapshots_appear_as_it_takes_them(window, tmp_path, qtbot):
    job = TrainingJob(TINY, config(steps=20, snapshot_every=5), device="cpu", out=str(tmp_path / "live.ckpt"),
                      train_set=TRAIN, valid_set=VALID, trace_every_s=0, threads=1)
    controller, learning = window.controller, window.gallery.learning
    controller.start(job)
    controller.pause()  # held at its first step, after the snapshot of step 0
    qtbot.waitUntil(lambda: controller.state == "paused", timeout=20_000)
    window.redraw_now()
    assert window.document.kind == "training" and window.gallery.tabs.isTabVisible(LEARNING_TAB)
    assert learning.snapshots.step.tolist() == [0]
    controller.resume()
    qtbot.waitUntil(lambda: controller.state == "idle", timeout=30_000)
    window.redraw_now()
    assert learning.snapshots.step.tolist() == [0, 5, 10, 15, 20]
    assert learning.step == 20  # it followed the newest snapshot
    held = read_snapshots(tmp_path / "live.log.h5")  # what the run wrote to its log
    assert np.array_equal(held.step, learning.snapshots.step)
    np.testing.assert_array_equal(shown_tiles(learning.samples_grid), expected_tiles(held.samples[-1], 4))
    assert learning.export_gif(tmp_path / "live.gif")
    qtbot.waitUntil(lambda: not learning.gif_jobs.busy, timeout=20_000)
    main(["log-export", str(tmp_path / "live.log.h5"), "--snapshots-gif", str(tmp_path / "cli.gif")])
    assert (tmp_path / "live.gif").read_bytes() == (tmp_path / "cli.gif").read_bytes()
