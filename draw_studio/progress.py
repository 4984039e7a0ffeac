"""What the training loop tells its caller (:class:`Report`) and how it is told to pause or stop.

Both are re-exported by ``draw_studio.train``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import Enum

from .formatting import duration


class ReportKind(str, Enum):
    """What a :class:`Report` is about (a ``str``, so ``kind == "step"`` also holds)."""

    START = "start"
    NOTICE = "notice"
    STEP = "step"
    VALIDATION = "validation"
    CHECKPOINT = "checkpoint"
    NONFINITE = "nonfinite"
    PAUSED = "paused"
    RESUMED = "resumed"
    DONE = "done"


@dataclass
class Report:
    """One progress report of the training loop.

    Attributes
    ----------
    kind : ReportKind
        (given as a member or its string) ``"start"``, ``"notice"`` (something the user should know, e.g. about
        the data or the log; right after ``"start"``), ``"step"`` (every
        ``report_every`` steps and before each checkpoint), ``"validation"``,
        ``"checkpoint"``, ``"nonfinite"`` (a bad step, see
        ``draw_studio.divergence``), ``"paused"``, ``"resumed"`` or ``"done"``
        (only once the final checkpoint is written).
    step : int
        Optimiser steps completed.
    loss, nll_x, kl : float
        Training bound and its terms (nats per image), mean over the steps
        since the last ``"step"`` report.
    lr : float
        The learning rate of the latest step (``step`` counts it), that of
        the first step before any.
    step_losses : list of (step, wall_time, loss, nll_x, kl, lr)
        Every step since the last ``"step"`` report (wall time is that of
        the report; ``lr`` the rate that step was taken with), so that no
        point of the curves is lost.
    """

    kind: ReportKind
    step: int
    total_steps: int
    epoch: float = 0.0
    loss: float = float("nan")
    nll_x: float = float("nan")
    kl: float = float("nan")
    images_per_s: float = 0.0
    lr: float = 0.0
    wall_time: float = 0.0
    eta_s: float = float("nan")
    bound: float = float("nan")
    message: str = ""
    path: str = ""
    step_losses: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kind = ReportKind(self.kind)  # an unknown kind is a ValueError here, not a report nobody shows

    def describe(self) -> str | None:
        """The report as one line for people (the command line prints it, the window's status bar
        shows it), or None when it says nothing (a pause, or a start without a message)."""
        prefix = f"step {self.step:>7}"
        if self.kind is ReportKind.STEP:
            return (f"{prefix}/{self.total_steps}  epoch {self.epoch:6.2f}  loss {self.loss:8.2f} "
                    f"(L_x {self.nll_x:7.2f} + L_z {self.kl:6.2f})  {self.images_per_s:6.0f} img/s  "
                    f"lr {self.lr:.2e}  ETA {duration(self.eta_s)}")
        if self.kind is ReportKind.VALIDATION:
            return f"{prefix}  validation bound {self.bound:.2f} nats"
        if self.kind is ReportKind.CHECKPOINT:
            return f"{prefix}  checkpoint {self.path}"
        return f"{prefix}  {self.message}" if self.message else None


class TrainingControl:
    """Flags the loop checks between steps; safe to set from another thread."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._no_more_checkpoints = threading.Event()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def skip_final_save(self) -> None:
        """Write no more checkpoints, the final one included (those already written stay); with
        :meth:`stop`, the run ends without saving its last steps."""
        self._no_more_checkpoints.set()

    @property
    def final_save_skipped(self) -> bool:
        return self._no_more_checkpoints.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, timeout: float = 0.1) -> None:
        self._running.wait(timeout)
