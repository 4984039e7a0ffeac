"""What every panel shows: the current trace, the selected image and the step."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ..trace import Trace


class StudioState(QObject):
    """The one selection shared by every panel.

    ``step`` runs 0..T: the number of DRAW steps done. The canvas shown at
    ``step`` is c_step; a per-step quantity (KL, latents, glimpses,
    attention) of that step has index ``step - 1`` in the trace (the
    paper's t = step), and there is none at step 0.

    Signals
    -------
    trace_changed : the trace was replaced (everything must redraw)
    image_changed(int) : another image of the trace was selected
    step_changed(int) : the step moved
    """

    trace_changed = Signal()
    image_changed = Signal(int)
    step_changed = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.trace: Trace | None = None
        self.image_index = 0
        self.step = 0
        self._shown_a_trace = False

    @property
    def steps(self) -> int:
        """T of the current trace (0 without a trace)."""
        return self.trace.steps if self.trace is not None else 0

    def set_trace(self, trace: Trace, image_index: int | None = None, step: int | None = None) -> None:
        """Show ``trace``; keep the image and step where they still exist unless given."""
        self.trace = trace
        index = self.image_index if image_index is None else image_index
        self.image_index = min(max(int(index), 0), trace.n - 1)
        if step is None:
            step = self.step if self._shown_a_trace else trace.steps  # the first trace opens on its result
        self.step = min(max(int(step), 0), trace.steps)
        self._shown_a_trace = True
        self.trace_changed.emit()

    def set_image(self, index: int) -> None:
        """Select image ``index`` of the current trace."""
        if self.trace is None:
            return
        index = min(max(int(index), 0), self.trace.n - 1)
        if index != self.image_index:
            self.image_index = index
            self.image_changed.emit(index)

    def set_step(self, step: int) -> None:
        """Move to ``step`` (clamped to 0..T)."""
        step = min(max(int(step), 0), self.steps)
        if step != self.step:
            self.step = step
            self.step_changed.emit(step)
