"""The Results panel: results.py's numbers computed in the background with progress, the published rows,
the Markdown export, Cancel, and nothing of an earlier model left after the source changes."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from tiny_data import MNIST_DIR, mnist_slice  # noqa: E402

from draw_studio.config import ModelConfig, TrainConfig  # noqa: E402
from draw_studio.gui.results_panel import COLUMNS, PROGRESS_STEPS, markdown_cells  # noqa: E402
from draw_studio.results import checkpoint_results, published_rows, results_markdown  # noqa: E402
from draw_studio.train import Trainer  # noqa: E402

IMAGES = 20
MODEL = ModelConfig(steps=4, enc_size=16, dec_size=16, z_size=4, read_attention=False, write_attention=False)

pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")


def train(out, seed: int) -> None:
    config = TrainConfig(preset="tiny", batch_size=32, steps=20, seed=seed, lr=3e-3, validate_every=0,
                         checkpoint_every=0, report_every=10, validation_limit=64, snapshot_every=0)
    for _ in Trainer.from_options(MODEL, config, train_set=mnist_slice("train", 320),
                                  valid_set=mnist_slice("valid", 64), device="cpu", out=out).run():
        pass


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two small real models (20 steps each, other seeds), with their logs."""
    folder = tmp_path_factory.mktemp("results")
    train(folder / "a.ckpt", 1)
    train(folder / "b.ckpt", 2)
    return folder / "a.ckpt", folder / "b.ckpt"


@pytest.fixture(scope="module")
def expected(models):
    """results.py's rows for model a: 20 images, K = 1 and 10."""
    *_, last = checkpoint_results(models[0], IMAGES, (1, 10), data_dir=MNIST_DIR, download=False)
    return last.rows


def set_up(window, checkpoint, ks=(1, 10)):
    window.training.data_dir.setText(str(MNIST_DIR))
    assert window.open_path(checkpoint)
    window.redraw_now()
    panel = window.results
    panel.images.setValue(IMAGES)
    for k, box in panel.k_boxes.items():
        box.setChecked(k in ks)
    return panel


def table_cells(panel) -> list[list[str]]:
    return [[panel.table.item(row, column).text() for column in range(panel.table.columnCount())]
            for row in range(panel.table.rowCount())]


def test_compute_gives_results_pys_numbers_with_progress_and_the_published_rows(window, models, expected, tmp_path,
                                                                                qtbot):
    panel = set_up(window, models[0])
    assert [k for k, box in panel.k_boxes.items() if box.isChecked()] == [1, 10]
    assert len(table_cells(panel)) == 4  # before computing: the published rows only
    values = []
    panel.progress.valueChanged.connect(values.append)
    assert window.findChild(type(panel.compute), "resultsComputeButton").isEnabled()
    panel.compute.click()
    assert panel.running and not panel.compute.isEnabled()
    qtbot.waitUntil(lambda: not panel.running, timeout=30_000)
    window.redraw_now()
    assert panel.finished and panel.rows == expected  # exactly the core's rows (same images, seed, batches)
    assert [row.measure for row in panel.rows] == ["bound", "IW bound, K=1", "IW bound, K=10"]
    assert values == sorted(values) and len(values) >= 2 and values[-1] == PROGRESS_STEPS
    rows = expected + published_rows("mnist")
    assert [panel.table.horizontalHeaderItem(c).text() for c in range(len(COLUMNS))] == list(COLUMNS)
    assert table_cells(panel) == markdown_cells(results_markdown(rows))
    cells = table_cells(panel)
    assert cells[0][2] == f"{expected[0].nats:.2f}" and "seed 150204623" in cells[0][4]
    assert [c[2] for c in cells[3:]] == ["<= 80.97", "<= 87.40", "~90.5 after 100 epochs", "~81.9 after ~300 epochs"]
    assert cells[3][4] == "fixed binarisation of Salakhutdinov & Murray (2008)"
    assert panel.export.isEnabled()
    assert panel.export_markdown(tmp_path / "results.md")
    assert (tmp_path / "results.md").read_text() == results_markdown(rows)


def test_another_source_clears_the_table_and_stops_a_running_computation(window, models, qtbot):
    panel = set_up(window, models[0], ks=(1000,))  # K=1000: 20 forward passes of 1,000 samples, time to switch
    panel.compute.click()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=30_000)
    assert panel.cancel.isEnabled()
    assert window.open_path(models[1])  # another model
    window.redraw_now()
    assert panel.rows == [] and not panel.finished and panel.progress.value() == 0
    assert [cells[0] for cells in table_cells(panel)] == [row.model for row in published_rows("mnist")]
    qtbot.waitUntil(lambda: not panel.running, timeout=30_000)  # the computation was stopped
    window.redraw_now()
    assert panel.rows == [] and len(table_cells(panel)) == 4  # nothing of model a arrived afterwards
    assert window.open_path(models[1].with_suffix(".log.h5"))  # a log: no model, so no rows at all
    window.redraw_now()
    assert table_cells(panel) == [] and not panel.compute.isEnabled()
    assert panel.status.text() == "a training log has no model: open its checkpoint to compute its results"


def test_cancel_keeps_the_rows_finished_before(window, models, qtbot):
    panel = set_up(window, models[0], ks=(1, 1000))
    panel.compute.click()
    qtbot.waitUntil(lambda: panel.progress.value() > 0 and bool(panel.rows), timeout=30_000)  # the bound is done
    panel.cancel.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=30_000)
    window.redraw_now()
    assert not panel.finished and [row.measure for row in panel.rows] == ["bound"]
    assert panel.status.text() == "cancelled: the rows finished before are kept"
    assert panel.progress.value() < PROGRESS_STEPS and panel.compute.isEnabled()
