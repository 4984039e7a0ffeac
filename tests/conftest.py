"""Shared fixtures. The GUI tests run Qt offscreen, with settings in a temporary INI file."""

from __future__ import annotations

import json
import os
import tempfile

import pytest


def _offscreen_with_a_large_screen() -> None:
    """Run Qt offscreen (before anything imports Qt) on a 1920x1200 virtual screen.

    Qt's default offscreen screen is 800x800, which would clamp restored window geometry.
    """
    if os.environ.get("QT_QPA_PLATFORM", "offscreen") != "offscreen":
        return  # a real display was asked for
    config = os.path.join(tempfile.mkdtemp(prefix="draw-studio-qt-"), "screen.json")
    with open(config, "w") as handle:
        json.dump({"screens": [{"name": "test", "x": 0, "y": 0, "width": 1920, "height": 1200,
                                "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}, handle)
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={config}"


_offscreen_with_a_large_screen()

try:  # the GUI package's import guards None against PySide6 6.12 (gui/compat.py) before any test imports Qt
    import draw_studio.gui  # noqa: E402,F401
except ImportError:  # no PySide6: the core's tests still run, the GUI tests skip themselves
    pass


def _one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread():
    """One torch thread: faster for tiny models (and 2 threads with PySide6 loaded are ~5x slower)."""
    yield from _one_torch_thread()


@pytest.fixture(scope="module")
def one_torch_thread_per_module():
    """One torch thread for a whole module, its module-scoped fixtures (e.g. a trained tiny run) included:
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")``."""
    yield from _one_torch_thread()


@pytest.fixture
def gui_settings(tmp_path):
    """An isolated QSettings (INI file under tmp_path): the user's settings are never touched."""
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "draw-studio.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, gui_settings):
    """Build main windows on the isolated settings; training left running is stopped at teardown."""
    from draw_studio.gui.main_window import MainWindow

    windows = []

    def make(settings=None):
        window = MainWindow(settings=settings or gui_settings, interactive=False)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        try:
            window.controller.stop(save_final=False)
            window.controller.wait(30_000)
            window.jobs.wait(30_000)
        except RuntimeError:  # the C++ object is already gone (window closed by the test)
            pass


@pytest.fixture
def window(make_window):
    """One main window on isolated settings."""
    return make_window()


def _moving_tiny_model(seed: int, **changes):
    """A real tiny DRAW model (the ``tiny`` preset with ``changes``) seeded with ``seed``, its attention
    weights scaled up so that the windows move."""
    import dataclasses

    import torch

    from draw_studio.config import get_preset
    from draw_studio.model import DRAW

    torch.manual_seed(seed)
    model = DRAW(dataclasses.replace(get_preset("tiny").model, **changes))
    with torch.no_grad():
        for head in (model.read_head, model.write_head):
            if head is not None:
                head.linear.weight.mul_(8)  # attention that moves
    return model.eval()


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Three real tiny models saved as checkpoints, for the Compare tests: ``a`` (attention, T = 6), ``b`` (no
    attention, T = 4) and ``small`` (14x14 images); a namespace of ``folder``, ``models`` and ``paths`` (by name)."""
    import types

    from draw_studio.checkpoint import save_checkpoint
    from draw_studio.config import TrainConfig

    folder = tmp_path_factory.mktemp("compare")
    models = {"a": _moving_tiny_model(0, steps=6),
              "b": _moving_tiny_model(1, steps=4, read_attention=False, write_attention=False),
              "small": _moving_tiny_model(2, height=14, width=14)}
    paths = {}
    for name, model in models.items():
        paths[name] = folder / f"{name}.ckpt"
        save_checkpoint(paths[name], model, TrainConfig(preset="tiny", dataset="mnist"))
    return types.SimpleNamespace(folder=folder, models=models, paths=paths)
