"""The selection every panel follows lives in the open document (:mod:`~draw_studio.gui.document`).

``StudioState`` is the name panels written before the document used for it.
"""

from __future__ import annotations

from .document import Document as StudioState

__all__ = ["StudioState"]
