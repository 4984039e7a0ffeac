"""Starting the window: the Qt application, the first file, and ``--screenshot``."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

from ..errors import DrawStudioError

GUI_SWITCH_INTERVAL_S = 0.001  # let the window take the GIL back from the training thread within ~1 ms


def settle_heap() -> None:
    """Collect once, then hide every object alive now (torch, Qt, the window) from the garbage collector.

    A full collection runs on whichever thread happens to allocate when it is due, holding the GIL: with
    torch and the window loaded it walks ~10^6 objects and blocked the event loop ~220 ms at a time (seen
    during a CSV export of a big log). After ``gc.freeze()`` it walks only what was made since. Called once
    the window is built, before the event loop starts.
    """
    gc.collect()
    gc.freeze()


def require_qt() -> None:
    """Raise a clear error when PySide6 or pyqtgraph is not installed."""
    try:
        import pyqtgraph  # noqa: F401
        import PySide6  # noqa: F401
    except ImportError as exc:
        raise DrawStudioError(f"the window needs PySide6 and pyqtgraph ({exc.name} is missing); "
                              "run: pip install 'draw-studio[gui]'") from None


def check_openable(path: str | Path) -> str:
    """The kind of ``path`` (``checkpoint``, ``trace`` or ``log``), decided before any window is built.

    Raises
    ------
    DrawStudioError
        ``path`` is missing, a folder, empty, or no DRAW Studio file (one line).
    """
    from ..file_kinds import file_kind

    if not Path(path).exists():
        raise DrawStudioError(f"{path} does not exist; pass a checkpoint, a trace or a training log")
    return file_kind(path)


# what Qt's offscreen platform says about every window it shows: noise on a screenshot's stderr
OFFSCREEN_NOISE = ("This plugin does not support propagateSizeHints()",)


def quiet_offscreen_warnings() -> None:
    """Drop the offscreen platform's harmless warnings; every other Qt message still reaches stderr."""
    from PySide6.QtCore import qInstallMessageHandler

    def handler(mode, context, message: str) -> None:
        if message not in OFFSCREEN_NOISE:
            sys.stderr.write(message + "\n")

    qInstallMessageHandler(handler)


def ensure_application():
    """The QApplication (created once), set up for pixel-true images."""
    from PySide6.QtWidgets import QApplication

    from . import configure_pyqtgraph

    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setOrganizationName("DRAW Studio")
        app.setApplicationName("DRAW Studio")
    configure_pyqtgraph()
    return app


def run_window(path: str | None = None, screenshot: str | None = None, device: str = "auto",
               settings_file: str | None = None, compare: str | None = None, runs: list | None = None) -> int:
    """Open the window on ``path`` (or the startup model) and run until it closes.

    With ``compare`` (a checkpoint) the Compare dock compares the opened model with it, in front;
    a screenshot then waits for the comparison. ``runs`` (training logs, folders of them) are added to the
    Training dock's runs view, shown in front.

    With ``screenshot`` the window is rendered at least 1280x800, saved as a
    PNG, and the function returns 0 without entering the event loop.

    Raises
    ------
    DrawStudioError
        In screenshot mode: ``path`` could not be opened or drawn, or the PNG
        could not be written (then no screenshot is written).
    """
    if path is not None:
        check_openable(path)
    if screenshot is not None and Path(screenshot).is_dir():
        raise DrawStudioError(f"cannot write the screenshot {screenshot}: it is a folder; give a .png file name")
    if screenshot is not None and not Path(screenshot).resolve().parent.is_dir():
        raise DrawStudioError(f"cannot write the screenshot {screenshot}: its folder does not exist")
    sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)
    import torch

    from .worker import training_threads

    torch.set_num_threads(training_threads())
    app = ensure_application()
    if screenshot is not None:
        quiet_offscreen_warnings()
    from PySide6.QtCore import QSettings

    from .main_window import MainWindow

    settings = QSettings(settings_file, QSettings.Format.IniFormat) if settings_file else None
    window = MainWindow(settings=settings, interactive=screenshot is None)
    window.training.device.setCurrentText(device)
    window.show()
    app.processEvents()
    opened = window.open_startup(path)
    settle_heap()
    if runs and opened:
        window.training.open_runs(list(runs))
    failure = ""
    if compare is not None and opened:
        from .compare_dock import show_compare

        failure = show_compare(window.compare, compare, wait=screenshot is not None)
    if screenshot is not None:
        return _screenshot(window, screenshot, failure or (None if opened else (window.last_error
                                                                                 or f"could not open {path}")))
    return app.exec()


def _screenshot(window, screenshot: str, problem: str | None) -> int:
    """Save the screenshot and close; a file that could not be opened or drawn is an error, not a picture."""
    try:
        if problem is None:
            window.redraw_now()
            if window.draw_errors:
                problem = window.draw_errors[0]
        if problem is None and not window.save_screenshot(screenshot):
            problem = window.last_error or f"could not write the screenshot {screenshot}"
    finally:
        window.close()
        _delete_now(window)
    if problem is not None:
        raise DrawStudioError(f"{problem} (no screenshot written)")
    return 0


def _delete_now(window) -> None:
    """Destroy the window (and its dialogs) while the QApplication still exists.

    Left to the interpreter's exit, the Qt objects can be destroyed after
    the application (e.g. while an exception still holds the window), which
    ends in a segmentation fault.
    """
    import shiboken6

    if shiboken6.isValid(window):
        shiboken6.delete(window)


def offscreen_if_headless() -> None:
    """Use Qt's offscreen platform when there is no display (e.g. over ssh, in CI).

    Its virtual screen is made 1920x1200 (Qt's default, 800x800, would
    squeeze the window before the screenshot is taken).
    """
    headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                         or os.environ.get("WAYLAND_DISPLAY"))
    platform = os.environ.get("QT_QPA_PLATFORM") or ("offscreen" if headless else "")
    if platform != "offscreen":
        return
    import json
    import tempfile

    config = os.path.join(tempfile.mkdtemp(prefix="draw-studio-qt-"), "screen.json")
    with open(config, "w") as handle:
        json.dump({"screens": [{"name": "offscreen", "x": 0, "y": 0, "width": 1920, "height": 1200,
                                "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}, handle)
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={config}"
