"""One colour per run, the same everywhere: the runs table's swatch and every curve of the run.

A run keeps its colour while it is open; a colour given back (the run removed) goes to the next run.
The palette reads on the plots' dark background and on the table's light one.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtGui import QColor, QIcon, QPixmap

PALETTE = ("#4da6ff", "#ff8c1a", "#5ad17a", "#ff5a5a", "#b58cff", "#e6c229", "#ff5ad0", "#3fd0d0",
           "#c8946a", "#a0a0a0")


class RunColours:
    """Gives each run (by key) a colour of :data:`PALETTE`: the first one no open run has, else in turn."""

    def __init__(self) -> None:
        self._given: dict[str, str] = {}
        self._turn = 0

    def colour(self, key: str) -> str:
        """The colour of run ``key`` (given now if it has none)."""
        if key not in self._given:
            used = set(self._given.values())
            free = [colour for colour in PALETTE if colour not in used]
            if free:
                self._given[key] = free[0]
            else:
                self._given[key] = PALETTE[self._turn % len(PALETTE)]
                self._turn += 1
        return self._given[key]

    def release(self, key: str) -> None:
        """Run ``key`` is gone: its colour is free again."""
        self._given.pop(key, None)


def faded(colour: str, alpha: int) -> QColor:
    """``colour`` with ``alpha`` (0..255)."""
    value = QColor(colour)
    value.setAlpha(alpha)
    return value


@lru_cache(maxsize=64)
def swatch(colour: str, size: int = 12) -> QIcon:
    """A square of ``colour``: the run's mark in the table."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)
