"""The DRAW Studio desktop window (PySide6 + pyqtgraph).

Only this package imports Qt. One panel per module; ``main_window`` wires
them to the shared :class:`~draw_studio.gui.state.StudioState`. Training runs
in :mod:`~draw_studio.gui.worker` on a ``QThread``.
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
