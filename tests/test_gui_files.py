"""Opening files: every way in (File > Open, drag and drop, Open Recent, the command line) gives a bad file
one clear message and leaves the open source as it was; keys work after opening; what a restart restores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

import shiboken6  # noqa: E402
from fault_tools import cli_env, run_cli, screenshots_in_one_process  # noqa: E402
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QAction, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox  # noqa: E402
from tiny_data import MNIST_DIR, REPO, mnist_slice  # noqa: E402

from draw_studio.checkpoint import save_checkpoint  # noqa: E402
from draw_studio.config import TrainConfig, get_preset  # noqa: E402
from draw_studio.data import model_inputs  # noqa: E402
from draw_studio.gui.history import TrainingHistory  # noqa: E402
from draw_studio.model import DRAW  # noqa: E402
from draw_studio.trace import TraceInputs, record_trace  # noqa: E402
from draw_studio.trace_file import write_trace  # noqa: E402
from draw_studio.training_log import TrainingLogWriter  # noqa: E402
from draw_studio.training_log_reader import read_training_log  # noqa: E402

# a file no way in can open -> what its one-line message says
BAD = {"notes.h5": "not an HDF5 file", "curves.csv": "neither a checkpoint", "plain.csv": "neither a checkpoint",
       "picture.png": "neither a checkpoint", "empty.h5": "is empty", "folder": "is a folder",
       "truncated.h5": "truncated", "gone.ckpt": "does not exist"}
GOOD = ("tiny.ckpt", "trace.h5", "run.log.h5")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Good files (a checkpoint, a trace of test images, a training log) and the bad files of :data:`BAD`."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("files")
    torch.manual_seed(3)
    model = DRAW(get_preset("tiny").model)
    save_checkpoint(folder / "tiny.ckpt", model, TrainConfig(preset="tiny", dataset="mnist"), step=7)
    images = mnist_slice("test", 4)
    pixels, _, _ = model_inputs(images, "bernoulli")
    write_trace(folder / "trace.h5", record_trace(model, TraceInputs(images=pixels, labels=images.labels,
                                                                      source="mnist/test")))
    config = TrainConfig(preset="tiny", steps=40)
    with TrainingLogWriter(folder / "run.log.h5", get_preset("tiny").model, config) as log:
        log.append_steps([(s, 0.1 * s, 200.0 - s, 180.0 - s, 20.0) for s in range(1, 41)])
        log.append_eval(40, 170.0)
    history = TrainingHistory()  # what File > Export > Curves as CSV writes
    log = read_training_log(folder / "run.log.h5")
    history.load({"step": log.step, "wall_time": log.wall_time, "bound": log.loss, "nll_x": log.nll_x,
                  "kl": log.kl}, {"step": log.eval_step, "bound": log.eval_bound})
    history.write_csv(folder / "curves.csv")
    (folder / "notes.h5").write_text("hello\n")
    (folder / "plain.csv").write_text("split,step,bound\ntrain,1,200.0\n")
    Image.new("L", (28, 28)).save(folder / "picture.png")
    (folder / "empty.h5").write_bytes(b"")
    (folder / "folder").mkdir()
    data = (folder / "trace.h5").read_bytes()
    (folder / "truncated.h5").write_bytes(data[: len(data) // 2])
    return folder


def menu_action(window, menu: str, text: str) -> QAction:
    """The action called ``text`` in the window's menu ``menu`` (e.g. "&File", "&Open…")."""
    top = next(a for a in window.menuBar().actions() if a.text() == menu).menu()
    found = [a for a in top.actions() if a.text() == text]
    found += [a for sub in top.actions() if sub.menu() is not None for a in sub.menu().actions() if a.text() == text]
    assert len(found) == 1, (text, [a.text() for a in top.actions()])
    return found[0]


def open_by_menu(window, path, monkeypatch) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *args, **kwargs: (str(path), "")))
    menu_action(window, "&File", "&Open…").trigger()


def open_by_drop(window, path, monkeypatch) -> None:
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(path))])
    window.dropEvent(QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.NoButton,
                                Qt.KeyboardModifier.NoModifier))


def open_by_recent(window, path, monkeypatch) -> None:
    menu_action(window, "&File", str(path.resolve())).trigger()


@pytest.mark.parametrize("way", [open_by_menu, open_by_drop, open_by_recent], ids=["menu", "drop", "recent"])
def test_every_bad_file_is_one_dialog_and_the_open_source_stays(make_window, gui_settings, files, way, monkeypatch):
    bad = {name: says for name, says in BAD.items() if way is not open_by_recent or name != "plain.csv"}
    recent = ["trace.h5", *bad]  # an earlier session's (8 at most)
    gui_settings.setValue("recent_files", [str((files / name).resolve()) for name in recent])
    window = make_window(gui_settings)
    assert window.open_path(files / "trace.h5")
    shown = window.state.trace
    for name, says in bad.items():
        window.last_error = None
        way(window, files / name, monkeypatch)
        boxes = window.findChildren(QMessageBox, "errorDialog")
        assert len(boxes) == 1, (name, [b.text() for b in boxes])
        text = boxes[0].text()
        assert name in text and says in text and "\n" not in text, (name, text)
        assert "Traceback" not in text and "Error:" not in text, text
        shiboken6.delete(boxes[0])
        window.redraw_now()
        assert window.draw_errors == []
        assert window.state.trace is shown, name
        assert "trace.h5" in window.windowTitle(), window.windowTitle()


def test_a_recent_file_that_is_gone_leaves_the_list(window, files):
    gone = files / "gone.ckpt"
    assert window.open_path(files / "tiny.ckpt")
    window.opener.remember(gone)
    menu_action(window, "&File", str(gone.resolve())).trigger()
    assert "does not exist" in window.last_error
    assert window.recent_files() == [str((files / "tiny.ckpt").resolve())]
    assert [a.text() for a in window.recent_menu.actions()] == window.recent_files()


def test_screenshot_of_a_shipped_log_shows_its_curves(tmp_path):
    """The curves are painted, not a black plot caught between two event-loop turns (a real run's log: its
    summary sets the epochs after the curves were drawn, and the curves hold their painting for a turn)."""
    shot = tmp_path / "shot.png"
    result = run_cli("gui", REPO / "models" / "mnist-noattention.log.h5", "--screenshot", shot, "--settings",
                     tmp_path / "s.ini", timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    with Image.open(shot) as image:
        colours = dict((colour, count) for count, colour in image.convert("RGB").getcolors(1 << 22))
    assert colours.get((0xFF, 0xB0, 0x00), 0) > 100  # L_x's curve (the legend's dash alone: ~6 pixels)


@pytest.mark.parametrize("name", GOOD)
def test_screenshot_mode_draws_a_picture_of_each_kind_of_file(files, tmp_path, name):
    shot = tmp_path / "shot.png"
    result = run_cli("gui", files / name, "--screenshot", shot, "--settings", tmp_path / "s.ini", timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert shot.stat().st_size > 10_000


def test_screenshot_mode_is_exit_2_and_one_line_for_each_bad_file(files, tmp_path):
    """Every bad file through the command line's main in one child process; the whole real command (its exit
    included) once, for the CSV that used to end in a segmentation fault."""
    results = screenshots_in_one_process(files, tmp_path, list(BAD))
    for name, says in BAD.items():
        code, stderr = results[name]
        lines = [line for line in stderr.strip().splitlines() if "propagateSizeHints" not in line]
        assert code == 2, (name, stderr[-3000:])
        assert len(lines) == 1 and lines[0].startswith("draw-studio gui: error: "), lines
        assert name in lines[0] and says in lines[0], lines
        assert not (tmp_path / f"{name}.png").exists()
    result = run_cli("gui", files / "curves.csv", "--screenshot", tmp_path / "shot.png", timeout=180)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and BAD["curves.csv"] in lines[0], result.stderr[-3000:]


@pytest.mark.parametrize("name", GOOD)
def test_keys_move_the_step_after_opening_each_kind_of_file(window, files, name, qtbot, monkeypatch):
    """Focus was in a text field the user was typing in; after File > Open the timeline has the keys."""
    window.training.data_dir.setText(str(MNIST_DIR))
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5_000)
    steps = window.training.steps
    steps.setFocus(Qt.FocusReason.MouseFocusReason)  # the user clicked into a field and typed
    qtbot.keyClick(steps.lineEdit(), Qt.Key.Key_End)
    open_by_menu(window, files / name, monkeypatch)
    assert window.findChild(QMessageBox, "errorDialog") is None, window.last_error
    typed = steps.value()  # the file's settings
    focus = QApplication.focusWidget()
    assert focus is not None and window.timeline.isAncestorOf(focus), focus
    document = window.state
    for key, expected in ((Qt.Key.Key_Home, 0), (Qt.Key.Key_Right, min(1, document.steps)),
                          (Qt.Key.Key_End, document.steps), (Qt.Key.Key_Left, max(document.steps - 1, 0))):
        qtbot.keyClick(QApplication.focusWidget(), key)
        assert document.step == expected, (name, key, document.step)
    assert steps.value() == typed  # the keys never reached the field


FLOATING = textwrap.dedent("""
    import json, subprocess, sys
    from PySide6.QtCore import QSettings, QTimer
    from draw_studio.gui.app import ensure_application
    from draw_studio.gui.main_window import MainWindow

    app = ensure_application()
    window = MainWindow(QSettings(sys.argv[1], QSettings.Format.IniFormat), interactive=False)
    window.show()
    dock = window.docks["latentsDock"]

    def first_session():
        dock.setFloating(True)
        dock.setGeometry(300, 300, 500, 400)
        QTimer.singleShot(1000, window.close)

    def second_session():
        stacking = subprocess.run(["xprop", "-root", "_NET_CLIENT_LIST_STACKING"], capture_output=True,
                                  text=True).stdout
        ids = [int(x, 16) for x in stacking.split("#")[1].replace(",", " ").split()]  # bottom to top
        screen = app.primaryScreen().availableGeometry()
        print(json.dumps({"floating": dock.isFloating(), "visible": dock.isVisible(),
                          "inside": screen.contains(dock.frameGeometry()),
                          "above": ids.index(int(dock.winId())) > ids.index(int(window.winId()))}))
        window.close()

    QTimer.singleShot(2500, second_session if sys.argv[2] == "check" else first_session)
    app.exec()
""")


@pytest.mark.skipif(not all(shutil.which(tool) for tool in ("Xvfb", "openbox", "xprop")),
                    reason="needs a real X server and window manager: apt-get install xvfb openbox x11-utils")
def test_a_floating_panel_comes_back_above_the_window(tmp_path):
    """Defect 10: a panel left floating came back, after a restart, hidden under the window (Xvfb + openbox)."""
    number = 90 + os.getpid() % 300
    env = {**cli_env(), "DISPLAY": f":{number}", "QT_QPA_PLATFORM": "xcb"}
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manager = None
    try:
        for _ in range(100):
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                break
            time.sleep(0.05)
        manager = subprocess.Popen(["openbox"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        settings = str(tmp_path / "s.ini")
        runs = [subprocess.run([sys.executable, "-c", FLOATING, settings, mode], env=env, capture_output=True,
                               text=True, timeout=120) for mode in ("float", "check")]
    finally:
        for process in (manager, server):
            if process is not None:
                process.terminate()
                process.wait(10)
    if runs[0].returncode != 0 and "platform plugin" in runs[0].stderr:
        pytest.skip("Qt's xcb platform plugin does not load here (apt-get install libxcb-cursor0 libxcb-icccm4 "
                    "libxcb-keysyms1)")
    assert runs[1].returncode == 0, runs[1].stderr[-3000:]
    seen = json.loads(runs[1].stdout.strip().splitlines()[-1])
    assert seen == {"floating": True, "visible": True, "inside": True, "above": True}, seen


def test_a_missing_data_folder_is_said_in_the_windows_words(window, files, tmp_path, monkeypatch):
    """Defect 10: the core's '--data-dir' fix becomes the Training panel's data folder in the window."""
    monkeypatch.delenv("DRAW_STUDIO_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "nothing").mkdir()
    window.training.data_dir.setText(str(tmp_path / "nothing"))
    assert window.open_path(files / "tiny.ckpt")
    window.redraw_now()
    grid = window.gallery.reconstructions_grid
    for text in (grid.message.text(), window.statusBar().currentMessage()):
        assert "MNIST" in text and "data folder (Training panel)" in text and "--data-dir" not in text, text
    assert window.gallery.samples is not None and np.isfinite(window.gallery.samples.canvas).all()


def test_the_command_decides_a_files_kind_before_any_window():
    code = ("import sys\nfrom draw_studio.cli import main\n"
            "code = main(['gui', sys.argv[1], '--screenshot', sys.argv[2]])\n"
            "assert not [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))], 'Qt was loaded'\n"
            "sys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", code, str(REPO / "README.md"), "/tmp/never.png"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"draw-studio gui: error: {REPO / 'README.md'} is neither a checkpoint nor an HDF5 trace or training log; "
        "open a file written by DRAW Studio"]
