"""The DRAW Studio desktop window (PySide6 + pyqtgraph).

Only this package imports Qt. One panel per module, each drawing from the open
:class:`~draw_studio.gui.document.Document` (what is open: a checkpoint, a training
run, a trace file or a training log); ``main_window`` wires them, and
``file_opening`` opens files into the document. Training runs in
:mod:`~draw_studio.gui.worker` on a ``QThread``.
"""

from __future__ import annotations

from .compat import keep_none_alive

keep_none_alive()  # before any Qt call: see compat.keep_none_alive


def configure_pyqtgraph() -> None:
    """Global pyqtgraph options every panel relies on.

    Arrays are row-major (``image[y, x]``, as numpy and torch store them),
    and images are never smoothed.
    """
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="#1e1e1e", foreground="#d0d0d0")
