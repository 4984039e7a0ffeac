"""The training loop that DRAW's :class:`~draw_studio.train.Trainer` and the attention classifier's
:class:`~draw_studio.classifier_train.ClassifierTrainer` share.

:class:`TrainingLoop` holds what does not depend on the model: where the run starts and how many steps
it takes, the reports (start, notices, a ``"step"`` report every ``report_every`` steps and before each
checkpoint or stop, validation, pause and resume, done), the checkpoint and validation cadence, the
training log (opened, fed every report, closed; a failed write stops the run with one line saying what
is safe) and stop requests. The per-step losses stay on the device and are pulled to the host once per
report. A subclass gives the step and what its reports say (the hooks below).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import torch

from .config import TrainConfig, learning_rate, lr_warmup_of, planned_steps
from .data import ImageSet
from .errors import DrawStudioError, FileFormatError
from .progress import Report, TrainingControl
from .run_checks import images_fingerprint
from .train_setup import RunStart
from .training_log import TrainingLogWriter

LOG_FLUSH_S = 5.0  # the log on disk lags the run by at most this (more for a big log), and never a checkpoint


class TrainingLoop:
    """Base of the trainers: the loop, its reports, its log and its cadences.

    A subclass calls :meth:`_take_parts` and :meth:`_plan_steps` from its constructor and implements
    ``train_step``'s wrapper :meth:`_take_step`, :meth:`_step_report`, :meth:`_validation_report`,
    ``_checkpoint(started)`` and ``_last_good()``; it may override :meth:`_start_message`,
    :meth:`_step_skipped`, :meth:`_settle`, :meth:`_between_steps`, :meth:`_final_checkpoint`,
    :meth:`_stopping` and :meth:`_run_ended`. ``report_type`` is the :class:`Report` class it yields.
    """

    report_type: type[Report] = Report

    def _take_parts(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig,
                    train_set: ImageSet, valid_set: ImageSet, out: str | Path | None, log: str | Path | None,
                    start: RunStart) -> None:
        """Keep the constructor's arguments and the run's place (step, wall time, run id, lineage, notices)."""
        self.start = start
        self.model, self.optimizer, self.config = model, optimizer, config
        self.device = next(model.parameters()).device
        self.train_set, self.valid_set = train_set, valid_set
        self.out, self.log_path = Path(out) if out else None, Path(log) if log else None
        self.step, self.wall_time_before = start.step, start.wall_time
        self.run_id, self.lineage, self.notices = start.run_id, list(start.lineage), list(start.notices)
        self.lr_warmup = lr_warmup_of(self.lineage)  # (first step, steps) of the ramp after a fresh Adam state
        self.fingerprint = start.fingerprint or images_fingerprint(train_set.images)
        self._order: tuple[int, torch.Tensor] | None = None  # (epoch, its permutation on the device)
        self._control: TrainingControl | None = None
        self._log: TrainingLogWriter | None = None
        self._saved_step: int | None = None  # step of the last checkpoint this session wrote to ``out``
        # the checkpoint file known to hold the run's state: (path, step)
        self._on_disk = (self.out, self.step) if start.in_place and self.out is not None else None
        self._deferred = False  # the last step's rows carry a flag decided on the device (see ``_settle``)

    def _check_batch_size(self) -> None:
        """Raise ``DrawStudioError`` when the batch is larger than the training set."""
        if self.config.batch_size > len(self.train_set):
            raise DrawStudioError(f"batch size {self.config.batch_size} is larger than the "
                                  f"{len(self.train_set)} training images; use a smaller --batch-size")

    def _plan_steps(self) -> None:
        """``steps_per_epoch`` and ``total_steps`` (``epochs`` above 0, else ``steps``).

        Raises
        ------
        DrawStudioError
            Nothing to train, or a run already at (or past) its last step.
        """
        config = self.config
        self.steps_per_epoch = max(len(self.train_set) // config.batch_size, 1)
        self.total_steps = planned_steps(config, self.steps_per_epoch)
        if self.total_steps < 1:
            raise DrawStudioError(f"nothing to train: {self.total_steps} steps; pass --steps (or --epochs) above 0")
        if self.step >= self.total_steps:
            raise DrawStudioError(f"{self.start.checkpoint} is already at step {self.step:,} and this run asks for "
                                  f"{self.total_steps:,} steps in all; pass a larger --steps (or --epochs) to "
                                  "continue it")

    def learning_rate(self, step: int) -> float:
        """The learning rate of ``step``: the schedule's, ramped up after a fresh Adam state."""
        return learning_rate(self.config, step, self.total_steps, self.lr_warmup)

    @property
    def stopped(self) -> bool:
        """Whether the last :meth:`run` ended on a stop request (with several ranks: any rank's)."""
        return self._control is not None and self._stopping(self._control)

    def _stopping(self, control: TrainingControl) -> bool:
        """Whether the run stops now."""
        return control.stop_requested

    # ------------------------------------------------------------------ the log
    def run(self, control: TrainingControl | None = None) -> Iterator[Report]:
        """Train until ``total_steps`` or a stop request, yielding reports.

        The final checkpoint is written at the end and on stop (unless ``control.skip_final_save()``),
        and ``"done"`` comes only after it. A log that cannot be written (full disk, file-size limit)
        stops the run with a ``DrawStudioError``.
        """
        self._log = None
        self._control = control = control or TrainingControl()
        if self.log_path:
            self._log = self._or_stop(self._open_log)
        finished = False
        try:
            for report in self._run(control):
                if self._log is not None:
                    self._or_stop(self._log.handle, report)
                yield report
            if self._log is not None:
                self._or_stop(self._log.close)
            finished = True
        finally:
            if not finished and self._log is not None:
                try:
                    self._log.close()  # the rows so far (nothing for a new run without a checkpoint yet)
                except DrawStudioError:
                    pass  # the error already on its way says more
            self._run_ended()

    def _run_ended(self) -> None:
        """Called when :meth:`run` ends, however it ends."""

    def _open_log(self) -> TrainingLogWriter:
        """The log writer: continuing the log the run starts from, held back until a new run's first checkpoint."""
        start = self.start
        log = TrainingLogWriter(self.log_path, self.model.config, self.config,
                                resume_step=self.step if start.log_source is not None else None, run_id=self.run_id,
                                source=start.log_source, same_run=start.same_run,
                                pending=self.out is not None and not start.in_place, flush_every_s=LOG_FLUSH_S)
        log.attrs.update(steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps)
        self.notices += log.notices
        return log

    def _or_stop(self, action, *args):
        """``action(*args)`` (a log or checkpoint write); a failure stops the run with one line saying
        what is safe."""
        try:
            return action(*args)
        except FileFormatError:
            raise  # an unreadable log to continue: its own message says what to do
        except DrawStudioError as exc:
            raise DrawStudioError(f"training stopped at step {self.step}: {exc}; {self._last_good()}") from None

    # ------------------------------------------------------------------ the loop
    def _run(self, control: TrainingControl) -> Iterator[Report]:
        cfg = self.config
        self.model.train()
        started = time.perf_counter()
        window_start, window_images = started, 0
        window_rows: list[torch.Tensor] = []  # one row of losses per step, pulled to the host once per report
        window_steps: list[int] = []
        yield self._report("start", started, message=self._start_message())
        for notice in self.notices:
            yield self._report("notice", started, message=notice)
        self._between_steps(edge=self.step == 0)
        while self.step < self.total_steps and not self._stopping(control):
            if control.paused:
                yield self._report("paused", started)
                while control.paused and not control.stop_requested:
                    control.wait_while_paused()
                window_start, window_images = time.perf_counter(), 0
                yield self._report("resumed", started)
                continue
            row = self._take_step()
            if row is None:  # the update was skipped
                yield from self._step_skipped(started)
                self.step += 1
                self._between_steps()
                continue
            self.step += 1
            window_rows.append(row)
            window_steps.append(self.step)
            window_images += cfg.batch_size
            checkpoint_due = (self.out is not None and not control.final_save_skipped and cfg.checkpoint_every > 0
                              and self.step % cfg.checkpoint_every == 0)
            if (self.step % cfg.report_every == 0 or self.step == self.total_steps or checkpoint_due
                    or self._stopping(control)):  # a stop never loses the steps since the last report
                rows = torch.stack(window_rows).cpu().tolist()  # the one host synchronisation per report
                if self._deferred:  # the steps' flags come with them: skipped steps are known (and reported) now
                    window_steps, rows = yield from self._settle(window_steps, rows, started)
                now = time.perf_counter()
                rate = window_images / max(now - window_start, 1e-9)
                wall = self._wall(started)
                if rows:
                    yield self._step_report(started, window_steps, rows, rate, wall)
                window_rows, window_steps = [], []
                window_start, window_images = now, 0
            if cfg.validate_every and self.step % cfg.validate_every == 0:
                yield self._validation_report(started)
                window_start, window_images = time.perf_counter(), 0
            self._between_steps()
            if checkpoint_due:
                yield self._checkpoint(started)
                window_start, window_images = time.perf_counter(), 0
        self._between_steps(edge=True)
        if self.out is not None and not control.final_save_skipped and self._saved_step != self.step:
            yield self._final_checkpoint(started)
        yield self._report("done", started, message="stopped" if self._stopping(control) else "finished")

    # ------------------------------------------------------------------ hooks
    def _start_message(self) -> str:
        """What the ``"start"`` report says."""
        return f"training on {self.device} from step {self.step}"

    def _take_step(self) -> torch.Tensor | None:
        """Take optimiser step ``self.step``; return its row of losses (a 1-d tensor on the device), or None
        when its update was skipped (:meth:`_step_skipped` then reports it)."""
        raise NotImplementedError

    def _step_skipped(self, started: float) -> Iterator[Report]:
        """Reports on the step whose update :meth:`_take_step` skipped."""
        return iter(())

    def _settle(self, steps: list[int], rows: list[list[float]], started: float):
        """With ``_deferred`` rows: the steps whose updates were applied and their rows (a generator of reports
        that returns them)."""
        raise NotImplementedError

    def _step_report(self, started: float, steps: list[int], rows: list[list[float]], rate: float,
                     wall: float) -> Report:
        """The ``"step"`` report of the steps ``steps`` since the last one, their rows ``rows`` on the host."""
        raise NotImplementedError

    def _validation_report(self, started: float) -> Report:
        """Validate and say how it went."""
        raise NotImplementedError

    def _between_steps(self, edge: bool = False) -> None:
        """Called before the first step, after each step and after the last (``edge``: at step 0 and where a
        session ends)."""

    def _final_checkpoint(self, started: float) -> Report:
        """Write the checkpoint where the session ends."""
        return self._checkpoint(started)

    # ------------------------------------------------------------------ reports
    def _wall(self, started: float) -> float:
        return self.wall_time_before + time.perf_counter() - started

    def _report(self, kind: str, started: float, **values) -> Report:
        rate = values.get("images_per_s", 0.0)
        remaining = (self.total_steps - self.step) * self.config.batch_size
        return self.report_type(kind=kind, step=self.step, total_steps=self.total_steps,
                                epoch=self.step / self.steps_per_epoch, wall_time=self._wall(started),
                                eta_s=remaining / rate if rate > 0 else float("nan"),
                                lr=self.learning_rate(max(self.step - 1, 0)), **values)
