"""One source at a time: after any open, no panel shows a quantity of the source before it.

The four kinds of source are a model checkpoint, a live training run (a real training of the tiny
preset started from the Training panel), a trace file and a training log, each in two variants of
different sizes (T, z, images), made by the real code on tiny models and real MNIST. A walk through
the 17 sources of a de Bruijn sequence takes each of the 16 transitions between the kinds once,
checking after each what every panel shows against what is open.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtWidgets import QPushButton  # noqa: E402
from tiny_data import MNIST_DIR, mnist_slice  # noqa: E402

from draw_studio.checkpoint import save_checkpoint  # noqa: E402
from draw_studio.config import TrainConfig, get_preset  # noqa: E402
from draw_studio.data import model_inputs  # noqa: E402
from draw_studio.model import DRAW  # noqa: E402
from draw_studio.trace import TraceInputs, record_trace  # noqa: E402
from draw_studio.trace_file import write_trace  # noqa: E402
from draw_studio.training_log import TrainingLogWriter  # noqa: E402

TINY = get_preset("tiny").model
# kind -> its two variants: file name and (T, z) of its model (a live run: the tiny preset's)
VARIANTS = {"C": [("c1.ckpt", (3, 5)), ("c2.ckpt", (5, 2))],
            "T": [("t1.h5", (6, 3)), ("t2.h5", (2, 6))],
            "G": [("g1.log.h5", (7, 4)), ("g2.log.h5", (9, 4))],
            "L": [("run-a.ckpt", (4, 4)), ("run-b.ckpt", (4, 4))]}
WALK = "CCLCTCGLLTLGTTGGC"  # de Bruijn B(4, 2) over C(heckpoint), L(ive run), T(race), G (log), closed
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def variant(steps: int, z_size: int, **changes):
    return dataclasses.replace(TINY, steps=steps, z_size=z_size, **changes)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Two checkpoints, a trace of test images, a generated trace and two training logs, all of different sizes."""
    folder = tmp_path_factory.mktemp("sources")
    images = mnist_slice("test", 5)
    pixels, _, _ = model_inputs(images, "bernoulli")
    for seed, (name, (steps, z)) in enumerate(VARIANTS["C"]):
        torch.manual_seed(seed)
        save_checkpoint(folder / name, DRAW(variant(steps, z, read_n=3)), TrainConfig(preset="tiny", dataset="mnist"),
                        step=7)
    torch.manual_seed(5)
    write_trace(folder / "t1.h5", record_trace(DRAW(variant(6, 3)), TraceInputs(
        images=pixels, labels=images.labels, seed=1, source="mnist/test")))
    torch.manual_seed(6)
    write_trace(folder / "t2.h5", record_trace(DRAW(variant(2, 6, read_n=4)), TraceInputs.prior(3, seed=4)))
    for (name, (steps, z)), rows in zip(VARIANTS["G"], (30, 12)):
        with TrainingLogWriter(folder / name, variant(steps, z), TrainConfig(preset="tiny", steps=rows)) as log:
            log.append_steps([(s, 0.1 * s, 200.0 - s, 180.0 - s, 20.0) for s in range(1, rows + 1)])
    return folder


def set_up_tiny_run(window, checkpoint, steps: int):
    """The Training panel set for a few-second run of the tiny preset on 300 real MNIST images."""
    panel = window.training
    panel.preset.setCurrentText("tiny")
    panel.steps.setValue(steps)
    panel.batch_size.setValue(20)
    panel.validate_every.setValue(20)
    panel.device.setCurrentText("cpu")
    panel.data_dir.setText(str(MNIST_DIR))
    panel.checkpoint.setText(str(checkpoint))
    panel.trace_every_s = 0.2
    panel.threads.setValue(1)
    panel.set_datasets(mnist_slice("train", 300), mnist_slice("test", 60))
    if panel.continue_run.isChecked():
        panel.continue_run.setChecked(False)
        panel.checkpoint.setText(str(checkpoint))


def start_run(window, checkpoint, steps: int = 30) -> None:
    set_up_tiny_run(window, checkpoint, steps)
    window.findChild(QPushButton, "startButton").click()


def numbers(text: str) -> list[float]:
    return [float(n) for n in NUMBER.findall(text)]


def glimpse_numbers(trace, image: int, step: int) -> set[float]:
    """Every number a Glimpses title may derive from the shown trace: ranges of its glimpses, the step, T."""
    allowed = {float(step), float(trace.steps), 0.0}
    glimpses = trace.read_glimpse[image]  # (T, 2C, Nr, Nr)
    channels = glimpses.shape[1] // 2
    for part in (glimpses[:, :channels], glimpses[:, channels:]):
        picks = [part, np.abs(part)] + ([part[step - 1]] if step >= 1 else [])
        for values in picks:
            for value in (values.min(), values.max()):
                allowed.update(float(f"{value:{form}}") for form in (".3g", "+.3g", ".2g"))
    return allowed


def assert_shows_only(window, expected_name: str, others: set[str], where: str) -> None:
    """Every panel of ``window`` shows the open document and nothing named in ``others``."""
    window.redraw_now()
    document = window.document
    trace, image, step = document.trace, document.image_index, document.step
    # the window title and the status bar name the source, never another one
    title, label = window.windowTitle(), window.source_label.toolTip()
    assert expected_name in title and expected_name in label, (where, title, label)
    assert document.kind_name in title and document.kind_name in label, (where, title)  # e.g. "training run →"
    assert not any(name in title or name in label for name in others - {expected_name}), (where, title, label)
    # the gallery shows the document's traces, or says what this source lacks
    gallery = window.gallery
    for grid, held, what in ((gallery.samples_grid, document.samples, "samples"),
                             (gallery.reconstructions_grid, document.reconstructions, "reconstructions")):
        if held is None:
            assert grid.message.isVisible() and grid.message.text() == document.lacks(what), (where, what)
        else:
            assert grid.graphics.isVisible() and grid.shown_trace is held and grid.count == held.n, (where, what)
    if document.samples is None:
        assert gallery.seed_label.text() == "", where
    for held in (document.samples, document.reconstructions, trace):
        assert held is None or held in (document.samples, document.reconstructions), where
    # information: totals of the shown trace only; the heat map's rows are this run's, its x range this T
    information = window.information
    kl_title = information.kl_plot.titleLabel.text
    if trace is None or trace.kl is None:
        assert "image" not in kl_title and information.message.isVisible(), (where, kl_title)
        assert information.message.text() == document.lacks("kl"), where
    else:
        assert f"image {image}: {trace.kl[image].sum():.1f}" in kl_title, (where, kl_title)
    rows = len(document.kl_history)
    assert rows == 0 or document.kind == "training", where
    heat = information.heatmap.image
    assert (heat is None and rows == 0) or (heat is not None and heat.shape[0] == rows), (where, rows)
    model_steps = document.model_steps or document.steps or 1
    x_range, y_range = information.heat_plot.viewRange()
    assert x_range == pytest.approx([0.5, model_steps + 0.5], abs=0.05), (where, x_range, model_steps)
    if rows:
        assert y_range[0] <= 0.01 and y_range[1] >= rows - 0.01, (where, y_range, rows)
    # latents: the axes are as large as the shown trace's T x z (neutral without a trace)
    size = trace.z.shape[1:] if trace is not None else (1, 1)  # (T, Z)
    for latent_map in (window.latents.mu_map, window.latents.sigma_map):
        x_range, y_range = latent_map.plot.viewRange()
        assert x_range == pytest.approx([0, size[1]], abs=0.05), (where, x_range, size)
        assert y_range == pytest.approx([0.5, size[0] + 0.5], abs=0.05), (where, y_range, size)
    # glimpses: every range in a title comes from the shown trace
    glimpses = window.glimpses
    titles = [view.title.text() for view in (glimpses.x_grid, glimpses.error_grid, glimpses.x_large,
                                              glimpses.error_large)]
    allowed = glimpse_numbers(trace, image, step) if trace is not None and trace.read_glimpse is not None else set()
    for text in titles:
        assert all(value in allowed for value in numbers(text)), (where, text, sorted(allowed))
    # the timeline's slider spans this trace's steps
    assert window.timeline.slider.maximum() == (trace.steps if trace is not None else 0), where


def test_no_panel_shows_the_previous_source_after_each_of_the_16_transitions(window, sources, tmp_path, qtbot,
                                                                             one_torch_thread):
    window.training.data_dir.setText(str(MNIST_DIR))
    names = {name for kind in VARIANTS.values() for name, _ in kind}
    turns = dict.fromkeys(VARIANTS, 0)
    previous = None
    for position, kind in enumerate(WALK):
        name, (steps, z) = VARIANTS[kind][turns[kind] % 2]
        turns[kind] += 1
        where = f"{previous} -> {kind} ({name})"
        if kind == "L":
            name = f"run-{position}.ckpt"
            start_run(window, tmp_path / name)
            assert window.document.kind == "training"
            assert_shows_only(window, name, names | {f"run-{i}.ckpt" for i in range(len(WALK))}, where + " at start")
            assert window.document.reconstructions is None and window.document.kl_history == []
            qtbot.waitUntil(lambda: window.document.reconstructions is not None, timeout=60_000)
            qtbot.waitUntil(lambda: window.controller.state == "idle", timeout=60_000)
            assert window.document.kl_history and window.document.model_steps == steps
        else:
            assert window.open_path(sources / name), (where, window.last_error)
            assert window.document.kind == {"C": "checkpoint", "T": "trace", "G": "log"}[kind]
            assert window.document.model_steps == steps, where
        assert_shows_only(window, name, names | {f"run-{i}.ckpt" for i in range(len(WALK))}, where)
        trace = window.document.trace
        if trace is not None:
            assert (trace.steps, trace.z.shape[2]) == (steps, z), where
        previous = kind


def test_a_generated_trace_after_a_checkpoint_keeps_nothing_of_the_model(window, sources):
    """Defect 2: samples of g.h5 beside the checkpoint's reconstructions, and KL totals beside 'no KL'."""
    window.training.data_dir.setText(str(MNIST_DIR))
    assert window.open_path(sources / "c1.ckpt")
    window.redraw_now()
    assert window.gallery.reconstructions is not None and "image 0: " in window.information.kl_plot.titleLabel.text
    assert window.open_path(sources / "t2.h5")
    window.redraw_now()
    generated = window.document.trace
    assert generated.mode == "generate" and window.gallery.samples is generated
    assert window.gallery.reconstructions is None
    grid = window.gallery.reconstructions_grid
    assert grid.message.isVisible() and "generated trace has no posterior" in grid.message.text()
    assert not window.gallery.reconstruct.isEnabled() and not window.gallery.new_samples.isEnabled()
    information = window.information
    assert information.message.isVisible() and "no KL" in information.message.text()
    assert information.kl_plot.titleLabel.text == "KL per step (nats)"
    assert len(information.bars.opts["x"]) == 0
    x_range, _ = window.latents.sigma_map.plot.viewRange()
    assert x_range == pytest.approx([0, generated.z.shape[2]], abs=0.05)
    assert "t2.h5" in window.windowTitle() and "c1.ckpt" not in window.windowTitle()


def test_kl_over_training_shows_every_row_and_the_open_models_steps(window, sources, tmp_path, qtbot,
                                                                    one_torch_thread):
    """Defect 4: every row of the heat map in view as it comes; its x range follows the open model's T."""
    start_run(window, tmp_path / "long.ckpt", steps=1_000_000)
    panel = window.information
    for count in (1, 3, 5):
        qtbot.waitUntil(lambda count=count: len(panel.kl_over_training) >= count, timeout=60_000)
        window.redraw_now()
        rows = panel.heat_rows()
        x_range, y_range = panel.heat_plot.viewRange()
        assert rows.shape[1] == 4 and x_range == pytest.approx([0.5, 4.5], abs=0.05)
        assert y_range[0] <= 0.01 and y_range[1] >= len(rows) - 0.01, (y_range, len(rows))
    assert window.open_path(sources / "c1.ckpt")  # T = 3, while the run goes on in the background
    window.redraw_now()
    assert panel.kl_over_training == [] and panel.heatmap.image is None or panel.heatmap.image.size == 0
    assert panel.heat_plot.viewRange()[0] == pytest.approx([0.5, 3.5], abs=0.05)
    shown = window.document.trace
    seen = window.controller.step
    qtbot.waitUntil(lambda: window.controller.step > seen + 20, timeout=60_000)
    qtbot.wait(500)  # live traces of the run keep coming: none reaches the checkpoint's panels
    window.redraw_now()
    assert window.document.kind == "checkpoint" and window.document.trace is shown
    assert panel.kl_over_training == [] and window.document.reconstructions.model_config.steps == 3
    window.controller.stop(save_final=False)
    qtbot.waitUntil(lambda: window.controller.state == "idle", timeout=30_000)
    assert window.document.kind == "checkpoint"
