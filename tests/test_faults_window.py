"""Fault suite, the window: every file it cannot open is a dialog, never a crash.

In screenshot mode (``draw-studio gui FILE --screenshot S.png``) such a file is one line and exit 2
(once: exit 0 with an empty window, or a crash with exit 1 or 139 on a text file named .h5, on a
trace of a diverged model and on traces with inconsistent shapes). A trace of a diverged model
(NaN attention windows) opens: non-finite values are shown as 0 and no window is drawn for
those steps.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

import shiboken6  # noqa: E402
from fault_tools import assert_clean_error, run_cli, screenshots_in_one_process  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from draw_studio.config import get_preset  # noqa: E402
from draw_studio.model import DRAW  # noqa: E402
from draw_studio.trace import TraceInputs, record_trace  # noqa: E402
from draw_studio.trace_file import write_trace  # noqa: E402

# bad file -> what its message says
BAD = {"text.h5": "not an HDF5 file", "empty.h5": "empty", "folder": "is a folder",
       "curves.csv": "neither a checkpoint", "picture.png": "neither a checkpoint",
       "truncated.h5": "is truncated", "log-cut10.log.h5": "is truncated", "log-cut60.log.h5": "is truncated",
       "shapes-samples.h5": "latent/z has shape (3, 4, 4)",
       "shapes-params.h5": "write/params has shape (6, 4, 3)", "shapes-image.h5": "canvas has shape",
       "text.ckpt": "not a readable checkpoint"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The bad files of the module docstring, a good trace and a trace of a diverged model (NaN windows)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("window-faults")
    torch.manual_seed(2)
    model = DRAW(get_preset("tiny").model)
    good = folder / "good.h5"
    write_trace(good, record_trace(model, TraceInputs.prior(6)))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1e6)  # finite weights, non-finite forward passes
    diverged = record_trace(model, TraceInputs.prior(4))
    assert not np.isfinite(diverged.write_params).all()
    write_trace(folder / "diverged.h5", diverged)
    (folder / "text.h5").write_text("hello\n")
    (folder / "empty.h5").write_bytes(b"")
    (folder / "folder").mkdir()
    (folder / "curves.csv").write_text("split,step,bound\ntrain,1,200.0\n")
    Image.new("L", (28, 28)).save(folder / "picture.png")
    data = good.read_bytes()
    (folder / "truncated.h5").write_bytes(data[: len(data) // 2])
    (folder / "text.ckpt").write_text("hello\n")
    log = (Path(__file__).resolve().parents[1] / "models" / "mnist-attention.log.h5").read_bytes()
    for percent in (10, 60):  # h5py spun for ever on the 10% cut when it was opened in SWMR mode
        (folder / f"log-cut{percent}.log.h5").write_bytes(log[: len(log) * percent // 100])
    for name, where, cut in (("shapes-samples.h5", "latent/z", np.s_[:3]),
                             ("shapes-params.h5", "write/params", np.s_[:, :, :3]),
                             ("shapes-image.h5", "canvas", np.s_[:, :, :, :20])):
        (folder / name).write_bytes(data)
        with h5py.File(folder / name, "r+") as f:
            values = f[where][cut]
            del f[where]
            f[where] = values
    return folder


def test_every_file_the_window_cannot_open_is_a_dialog(window, files):
    for name, says in BAD.items():
        path = files / name
        window.last_error = None
        assert not window.open_path(path), name
        box = window.findChild(QMessageBox, "errorDialog")
        assert box is not None and name in box.text() and says in box.text(), (name, box and box.text())
        assert "\n" not in window.last_error, window.last_error
        shiboken6.delete(box)  # the next file's dialog is then the only one
        window.redraw_now()
        assert window.draw_errors == []
    assert window.state.trace is None


def test_a_trace_of_a_diverged_model_opens_without_windows_where_they_are_not_finite(window, files):
    assert window.open_path(files / "diverged.h5")
    assert "non-finite" in window.statusBar().currentMessage()
    trace = window.state.trace
    assert all(np.isfinite(value).all() for name, value in trace.arrays().items() if not name.endswith("params"))
    for step in range(trace.steps + 1):
        window.state.set_step(step)
        window.redraw_now()
        write = trace.write_params[window.state.image_index, step - 1] if step else None
        drawable = write is not None and np.isfinite(write).all()
        assert window.timeline.write_box.item.isVisible() == drawable
    assert window.draw_errors == []
    assert window.findChild(QMessageBox, "errorDialog") is None


def test_screenshot_mode_is_one_line_and_exit_2_for_each_bad_file(files, tmp_path):
    """One child process opens every file through the command line's main (the crash-prone part)."""
    results = screenshots_in_one_process(files, tmp_path, [*BAD, "diverged.h5"])
    for name in BAD:
        code, stderr = results[name]
        lines = [line for line in stderr.splitlines() if "propagateSizeHints" not in line]
        assert code == 2 and "Traceback" not in stderr, (name, stderr)
        assert len(lines) == 1 and lines[0].startswith("draw-studio gui: error: ") and BAD[name] in lines[0], lines
        assert not (tmp_path / f"{name}.png").exists()
    assert results["diverged.h5"][0] == 0 and (tmp_path / "diverged.h5.png").stat().st_size > 0


def test_screenshot_of_a_text_file_named_h5_through_the_real_command(files, tmp_path):
    """The whole process, exit included (once: a crash)."""
    result = run_cli("gui", files / "text.h5", "--screenshot", tmp_path / "s.png", "--settings",
                     tmp_path / "s.ini", timeout=180)
    assert_clean_error(result, "text.h5", "not an HDF5 file")
    assert not (tmp_path / "s.png").exists()
