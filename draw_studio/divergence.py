"""When a run diverges: which steps are bad, when the last good state comes back, when the run stops.

A step is *bad* when its loss or gradient norm is not finite, or its loss explodes: it exceeds
``reference + EXPLOSION_FACTOR * max(|reference|, 1)`` nats per image, where ``reference`` is the
first good loss of this session (so with the default factor 100 an MNIST run starting near 540
nats stops trusting a step above ~54,500 nats; a resumed run near 90 nats above ~9,100). A bad
step's update is skipped. After ``RESTORE_AFTER_BAD_STEPS`` bad steps in a row, or when the state
due for a checkpoint gives a bad loss on the batch it would train on next, the last good state (that
of the last checkpoint written, or the start of the session) is restored in memory. After
``MAX_RESTORES`` restores without ``RECOVERY_STEPS`` good steps in a row (or a checkpoint) between
them, the run stops with :class:`DivergedError`; the checkpoint file is never written from a bad
state.
"""

from __future__ import annotations

import math

from .errors import DrawStudioError

RESTORE_AFTER_BAD_STEPS = 3
MAX_RESTORES = 3
RECOVERY_STEPS = 100
EXPLOSION_FACTOR = 100.0


class DivergedError(DrawStudioError):
    """Training diverged (or would write a diverged state); the last good checkpoint is kept."""


class DivergenceGuard:
    """Counts bad steps and restores; see the module documentation for the rules."""

    def __init__(self) -> None:
        self.reference: float | None = None
        self.bad_in_a_row = 0
        self.restores = 0
        self.good_in_a_row = 0

    def limit(self) -> float:
        """The loss above which a step counts as exploded (inf until the first good step)."""
        if self.reference is None:
            return math.inf
        return self.reference + EXPLOSION_FACTOR * max(abs(self.reference), 1.0)

    def good_step(self, loss) -> None:
        """Record a good step (``loss``: a scalar tensor or float, read only for the first one)."""
        if self.reference is None:
            self.reference = float(loss)
        self.bad_in_a_row = 0
        self.good_in_a_row += 1
        if self.good_in_a_row >= RECOVERY_STEPS:
            self.restores = 0

    def bad_step(self) -> bool:
        """Record a bad step; True when the last good state should be restored now."""
        self.bad_in_a_row += 1
        self.good_in_a_row = 0
        return self.bad_in_a_row >= RESTORE_AFTER_BAD_STEPS

    def restored(self) -> bool:
        """Record a restore; True when the run should stop (too many restores)."""
        self.restores += 1
        self.bad_in_a_row = 0
        self.good_in_a_row = 0
        return self.restores >= MAX_RESTORES

    def checkpoint_written(self) -> None:
        """A checkpoint was written from a good state: earlier restores no longer count."""
        self.restores = 0
