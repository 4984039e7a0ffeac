"""Work-arounds for bugs of the Qt binding, applied once when the GUI package is imported."""

from __future__ import annotations

import ctypes
import sys

NONE_REFERENCE_RESERVE = 1 << 40
_applied = False


def keep_none_alive() -> None:
    """Stop PySide6 from freeing ``None``, ``True`` and ``False`` under Python < 3.12.

    PySide6 6.12.0 returns ``None`` from every void method (``repaint()``,
    ``processEvents()``, ``update()``...) and ``True`` from ``Signal.emit()``
    without taking a reference to them. From Python 3.12 on these objects
    are immortal and nothing happens; under 3.11 each call drops one
    reference, and after some tens of thousands of calls (a minute of
    redrawing) the interpreter aborts with "Fatal Python error: none_dealloc"
    (or bool_dealloc). A reserve of 2**40 references makes them effectively
    immortal there too. Harmless once the binding is fixed.
    """
    global _applied
    if _applied or sys.version_info >= (3, 12):
        return
    for singleton in (None, True, False):
        reference_count = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt: first field of an object
        reference_count.value += NONE_REFERENCE_RESERVE
    _applied = True
