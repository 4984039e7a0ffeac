"""The training engine: a plain loop that reports its progress as it goes.

``Trainer.run()`` is a generator of :class:`Report` objects. The CLI prints
them; the GUI worker turns them into Qt signals. Pause and stop are flags
(:class:`TrainingControl`) checked between steps.

A ``Trainer`` is given a built model, optimiser and data; ``Trainer.from_options``
(a new run) and ``Trainer.from_checkpoint`` (a run that goes on) build them
(``draw_studio.train_setup``); what one step does (its batch, the step, validation) is
``draw_studio.training_step``.

Every random choice of step s (data order, dynamic binarisation, the noise
eps_t) is drawn from generators seeded by (seed, epoch) or (seed, s), so a run
resumed from a checkpoint takes exactly the same steps as an uninterrupted one.

Under ``torchrun`` several processes train one run (``draw_studio.distributed``): each draws the
global batch and its noise and takes its rows, one all-reduce per step sums the gradients, the loss
and the flags, and rank 0 alone writes files and reports.

Nothing good is lost: a checkpoint is written only from a state whose loss is
good (``draw_studio.good_state``, ``draw_studio.divergence``); a new run
touches no existing file before its first checkpoint and, from the command
line, refuses to start over an existing run without ``--overwrite``; a resumed
run checks its data and continues only its own log (``draw_studio.run_checks``);
the log is always a whole file (``draw_studio.training_log``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from .config import ModelConfig, TrainConfig, learning_rate
from .data import ImageSet, model_inputs
from .data.binarize import fixed_binarization
from .distributed import ONE_PROCESS, Ranks, StepReducer, broadcast_weights
from .divergence import RESTORE_AFTER_BAD_STEPS, DivergedError, DivergenceGuard
from .errors import DrawStudioError, FileFormatError
from .good_state import GoodStateKeeper
from .handwritten_step import release_buffers
from .model import DRAW
from .progress import Report, TrainingControl
from .run_checks import images_fingerprint
from .seeding import mix_seed
from .train_setup import RunStart, continued_run, new_run
from .training_log import TrainingLogWriter
from .training_snapshots import SnapshotTaker
from .training_step import StepTaker

LOG_FLUSH_S = 5.0  # the log on disk lags the run by at most this (more for a big log), and never a checkpoint


class Trainer(StepTaker, GoodStateKeeper):
    """Trains one DRAW model: a built model, its optimiser and its data.

    :meth:`from_options` (a new run) and :meth:`from_checkpoint` (a run that goes on) build the parts.

    Parameters
    ----------
    model : DRAW
        Trained in place, on the device it is on.
    optimizer : torch.optim.Optimizer
        Over ``model``'s parameters; its learning rate is set each step from ``config``.
    config : TrainConfig
        How to train (batch size, steps or epochs, schedule, seed...).
    train_set, valid_set : ImageSet
        Training images (all on the device, as uint8) and validation images.
    out : str or Path, optional
        Checkpoint written every ``config.checkpoint_every`` steps and at the end.
    log : str or Path, optional
        Training log (HDF5) to write; a new run's log moves in with its first checkpoint (before,
        no file is touched); a run that goes on from a checkpoint continues its log as
        ``start`` says (rows after the starting step dropped), never another run's.
    start : RunStart, optional
        Where the run starts (default: step 0 of a new run).
    fast : bool
        Use ``handwritten_step.fast_backward`` (same numbers, faster) rather than autograd.
    compile : bool, optional
        Whether the fast path compiles its steps (``torch.compile``; the first step then takes ~15-40 s,
        once per machine and batch size). None: ``handwritten_step.compile_wanted`` decides.
    ranks : Ranks, optional
        This process's place in a run of several (``draw_studio.distributed.setup``; default: one
        process). ``config.batch_size`` is then the global batch; rank 0's weights are given to every
        rank; only rank 0 writes ``out`` and ``log``.
    defer_checks : bool, optional
        Decide on the device whether a step's update is applied (a fused Adam's ``found_inf``) and read the
        decisions with each report instead of after every step: no host synchronisation per step on a GPU.
        Skipped steps are then reported, counted and restored from at the next report (updates are never
        applied from a bad step; the explosion limit starts at the first report). None: on CUDA with a fused
        Adam and one process (what ``from_options`` builds there). Experimental, unmeasured on a GPU.

    Raises
    ------
    DrawStudioError
        A batch larger than the training set or that does not divide among the ranks, or nothing left to
        train (``steps`` not above the starting step).
    """

    def __init__(self, model: DRAW, optimizer: torch.optim.Optimizer, config: TrainConfig, train_set: ImageSet,
                 valid_set: ImageSet, *, out: str | Path | None = None, log: str | Path | None = None,
                 start: RunStart | None = None, fast: bool = True, compile: bool | None = None,
                 ranks: Ranks | None = None, defer_checks: bool | None = None) -> None:
        start = start or RunStart()
        self.model, self.optimizer, self.config = model, optimizer, config
        self.device = next(model.parameters()).device
        self.ranks = ranks = ranks or ONE_PROCESS
        if not ranks.is_main:
            log = None  # rank 0 alone writes the log (and the checkpoints: ``GoodStateKeeper._write``)
        self.train_set, self.valid_set, self.fast, self.compile, self.start = train_set, valid_set, fast, compile, start
        self.out, self.log_path = Path(out) if out else None, Path(log) if log else None
        self.step, self.wall_time_before = start.step, start.wall_time
        self.run_id, self.lineage, self.notices = start.run_id, list(start.lineage), list(start.notices)
        self.fingerprint = start.fingerprint or images_fingerprint(train_set.images)
        # The whole training split lives on the device as uint8: (n, C, H, W)
        pixels, self.binary = train_set.images, train_set.binary
        if config.binarization == "fixed" and model.config.likelihood == "bernoulli" and not self.binary:
            pixels, self.binary = fixed_binarization(pixels, mix_seed(config.seed, 2)), True
        self.train_pixels = torch.as_tensor(pixels).to(self.device)
        self._order: tuple[int, torch.Tensor] | None = None  # (epoch, its permutation on the device)
        valid_pixels, self.valid_binarization, _ = model_inputs(
            valid_set.subset(slice(0, config.validation_limit)), model.config.likelihood)
        self.valid_pixels = torch.as_tensor(valid_pixels)
        self.steps_per_epoch = max(len(train_set) // config.batch_size, 1)
        if config.batch_size > len(train_set):
            raise DrawStudioError(f"batch size {config.batch_size} is larger than the "
                                  f"{len(train_set)} training images; use a smaller --batch-size")
        ranks.check_batch(config.batch_size, resumed=start.checkpoint is not None)
        self.total_steps = (math.ceil(config.epochs * self.steps_per_epoch) if config.epochs > 0 else config.steps)
        if self.total_steps < 1:
            raise DrawStudioError(f"nothing to train: {self.total_steps} steps; pass --steps (or --epochs) above 0")
        if self.step >= self.total_steps:
            raise DrawStudioError(f"{start.checkpoint} is already at step {self.step:,} and this run asks for "
                                  f"{self.total_steps:,} steps in all; pass a larger --steps (or --epochs) to "
                                  "continue it")
        self.guard = DivergenceGuard()
        self.notices += self._device_notices()
        broadcast_weights(model, ranks)  # before the first good state is kept
        self.reducer = StepReducer(model, self.device) if ranks.active else None
        fused = bool(optimizer.defaults.get("fused"))
        if defer_checks and (not fused or ranks.active):
            raise DrawStudioError("deferred step checks need one process and an Adam with fused=True")
        self.defer_checks = (self.device.type == "cuda" and fused and not ranks.active) if defer_checks is None \
            else defer_checks
        self._stop_agreed = False  # with several ranks: some rank was asked to stop (known after each step)
        self._control: TrainingControl | None = None
        self._good_state = self._snapshot()
        self._good_step = self.step
        # the checkpoint file known to hold a good state: (path, step)
        self._on_disk = (self.out, self.step) if start.in_place and self.out is not None else None
        self._saved_step: int | None = None  # step of the last checkpoint this session wrote to ``out``
        self._log: TrainingLogWriter | None = None
        self.snapshots: SnapshotTaker | None = None  # the log's snapshots (draw_studio.training_snapshots)
        self.last_bound = float("nan")

    @classmethod
    def from_options(cls, model_config: ModelConfig | None, train_config: TrainConfig, *,
                     data_dir: str | None = None, train_set: ImageSet | None = None,
                     valid_set: ImageSet | None = None, download: bool = True, out: str | Path | None = None,
                     log: str | Path | bool | None = True, device: str = "auto", overwrite: bool = True,
                     fast: bool = True, compile: bool | None = None, ranks: Ranks | None = None) -> Trainer:
        """A new run: a model built from ``model_config`` (sized for the data, initialised from
        ``train_config.seed``) and a fresh Adam.

        Parameters
        ----------
        data_dir : str, optional
            Searched first for ``train_config.dataset``.
        train_set, valid_set : ImageSet, optional
            Data given directly (the dataset is then not loaded).
        download : bool
            Allow downloading the dataset when it is nowhere else.
        log : str, Path, bool or None
            ``True`` (default): beside ``out`` (``X.ckpt`` -> ``X.log.h5``); ``None``/``False``: none.
        device : str
            ``auto``, ``cpu``, ``cuda``...
        overwrite : bool
            False: refuse (``DrawStudioError``) to start over an existing checkpoint at ``out`` or
            log at its log path (the command line's default; ``--overwrite`` sets it).
        ranks : Ranks, optional
            Several processes (``draw_studio.distributed.setup``); ``device`` is then this process's device.

        The other parameters are the constructor's.
        """
        return cls(**vars(new_run(model_config, train_config, data_dir=data_dir, train_set=train_set,
                                  valid_set=valid_set, download=download, out=out, log=log, device=device,
                                  overwrite=overwrite)), fast=fast, compile=compile, ranks=ranks)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, steps: int, *, epochs: float = 0.0,
                        changes: dict | None = None, fresh_optimizer: bool = False, data_dir: str | None = None,
                        train_set: ImageSet | None = None, valid_set: ImageSet | None = None,
                        download: bool = True, out: str | Path | None = None, log: str | Path | bool | None = True,
                        device: str = "auto", overwrite: bool = True, allow_data_change: bool = False,
                        fast: bool = True, compile: bool | None = None, ranks: Ranks | None = None) -> Trainer:
        """A run that goes on from ``checkpoint``: its model, configuration, step and run.

        Parameters
        ----------
        steps, epochs : int, float
            Steps (or, above 0, epochs) in all, counting those already done.
        changes : dict, optional
            Fields of the checkpoint's training configuration to replace for the rest of the run
            (e.g. a lower learning rate; see ``config.resume_changes``).
        fresh_optimizer : bool
            False (``--resume``): go on exactly, with the saved Adam state; the data is checked
            against what the checkpoint records, and the run continues its own log.
            True (``--init-from``, e.g. from a shipped, weights-only model): the weights, step, wall
            time and training configuration with a fresh Adam state, recorded in
            ``extra["lineage"]`` of every checkpoint.
        overwrite : bool
            False: refuse as :meth:`from_options` does, unless this run resumes ``out`` itself.
        allow_data_change : bool
            Resume even if the data differs from what the checkpoint records (name, number of
            training images, fingerprint of their pixels).

        The other parameters are :meth:`from_options`'.

        Raises
        ------
        DrawStudioError
            Refused files or data, or a bad checkpoint.
        """
        return cls(**vars(continued_run(checkpoint, steps, epochs, changes, fresh_optimizer=fresh_optimizer,
                                        data_dir=data_dir, train_set=train_set, valid_set=valid_set,
                                        download=download, out=out, log=log, device=device, overwrite=overwrite,
                                        allow_data_change=allow_data_change)), fast=fast, compile=compile,
                   ranks=ranks)

    @property
    def stopped(self) -> bool:
        """Whether the last :meth:`run` ended on a stop request (with several ranks: any rank's)."""
        return self._control is not None and self._stopping(self._control)

    def _stopping(self, control: TrainingControl) -> bool:
        """Whether the run stops now: this process's request, or with several ranks the one every rank agreed
        on in the last step's all-reduce (so all stop after the same step)."""
        return self._stop_agreed if self.ranks.active else control.stop_requested

    def run(self, control: TrainingControl | None = None) -> Iterator[Report]:
        """Train until ``total_steps`` or a stop request, yielding reports.

        The final checkpoint is written at the end and on stop (unless
        ``control.skip_final_save()``), and ``"done"`` comes only after it.
        A checkpoint is written only from a state whose loss on the next batch
        is good; bad steps are skipped and repeated ones restore the last good
        state (``draw_studio.divergence``); a run that keeps diverging stops
        with :class:`DivergedError`, its last good checkpoint untouched. A log
        that cannot be written (full disk, file-size limit) stops the run with
        a ``DrawStudioError``.
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
            release_buffers()

    def _open_log(self) -> TrainingLogWriter:
        """The log writer: continuing the log the run starts from, held back until a new run's first checkpoint."""
        start = self.start
        log = TrainingLogWriter(self.log_path, self.model.config, self.config,
                                resume_step=self.step if start.log_source is not None else None, run_id=self.run_id,
                                source=start.log_source, same_run=start.same_run,
                                pending=self.out is not None and not start.in_place, flush_every_s=LOG_FLUSH_S)
        log.attrs.update(steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps)
        if self.config.snapshot_every:
            self.snapshots = SnapshotTaker(self.model, self.valid_pixels, self.config.snapshot_every, log)
        self.notices += log.notices + (self.snapshots.notices if self.snapshots else [])
        return log

    def _log_snapshot(self, edge: bool = False) -> None:
        """The log's snapshot of this step, when due (every ``snapshot_every`` steps, at step 0 and where a
        session ends)."""
        if self.snapshots is not None:
            self._or_stop(self.snapshots.maybe, self.step, edge)

    def _or_stop(self, action, *args):
        """``action(*args)`` (a log or checkpoint write); a failure stops the run with one line saying
        what is safe."""
        try:
            return action(*args)
        except FileFormatError:
            raise  # an unreadable log to continue: its own message says what to do
        except DrawStudioError as exc:
            raise DrawStudioError(f"training stopped at step {self.step}: {exc}; {self._last_good()}") from None

    def _run(self, control: TrainingControl) -> Iterator[Report]:
        cfg = self.config
        self.model.train()
        started = time.perf_counter()
        window_start, window_images = started, 0
        window_losses: list[torch.Tensor] = []  # per-step (loss, nll_x, kl), pulled to the host once per report
        window_steps: list[int] = []
        where = f"{self.device}, {self.ranks.describe()}" if self.ranks.active else f"{self.device}"
        yield self._report("start", started, message=f"training on {where} from step {self.step}"
                           + self._compile_notice())
        for notice in self.notices:
            yield self._report("notice", started, message=notice)
        self._log_snapshot(edge=self.step == 0)
        while self.step < self.total_steps and not self._stopping(control):
            if control.paused:
                yield self._report("paused", started)
                while control.paused and not control.stop_requested:
                    control.wait_while_paused()
                window_start, window_images = time.perf_counter(), 0
                yield self._report("resumed", started)
                continue
            loss, nll_x, kl, applied = self.train_step(self.step)
            deferred = isinstance(applied, torch.Tensor)  # a flag on the device, read with the report
            if not deferred and not applied:
                restore = self.guard.bad_step()
                yield self._report("nonfinite", started, message=(
                    f"non-finite or exploding loss or gradient at step {self.step}: update skipped"
                    + (", last good state restored" if restore else "")))
                if restore:
                    self._fall_back(f"{RESTORE_AFTER_BAD_STEPS} bad steps in a row")
                self.step += 1
                self._log_snapshot()
                continue
            if not deferred:
                self.guard.good_step(loss)
            self.step += 1
            window_losses.append(torch.stack((loss, nll_x, kl, applied.float()) if deferred else (loss, nll_x, kl)))
            window_steps.append(self.step)
            window_images += cfg.batch_size
            checkpoint_due = (self.out is not None and not control.final_save_skipped and cfg.checkpoint_every > 0
                              and self.step % cfg.checkpoint_every == 0)
            if (self.step % cfg.report_every == 0 or self.step == self.total_steps or checkpoint_due
                    or self._stopping(control)):  # a stop never loses the steps since the last report
                rows = torch.stack(window_losses).cpu().tolist()  # the one host synchronisation per report
                if deferred:  # the steps' flags come with them: skipped steps are known (and reported) now
                    window_steps, rows = yield from self._settle(window_steps, rows, started)
                now = time.perf_counter()
                rate = window_images / max(now - window_start, 1e-9)
                wall = self._wall(started)
                if rows:
                    means = [sum(column) / len(rows) for column in zip(*rows)]
                    yield self._report("step", started, loss=means[0], nll_x=means[1], kl=means[2],
                                       images_per_s=rate,
                                       step_losses=[(s, wall, *row) for s, row in zip(window_steps, rows)])
                window_losses, window_steps = [], []
                window_start, window_images = now, 0
            if cfg.validate_every and self.step % cfg.validate_every == 0:
                bound = self.validate()
                yield self._report("validation", started, bound=bound)
                window_start, window_images = time.perf_counter(), 0
            self._log_snapshot()
            if checkpoint_due:
                yield self._checkpoint(started)
                window_start, window_images = time.perf_counter(), 0
        self._log_snapshot(edge=True)
        if self.out is not None and not control.final_save_skipped and self._saved_step != self.step:
            if not self.state_is_good():
                raise DivergedError(f"training ended at step {self.step} in a diverged state (its weights give a "
                                    f"non-finite or exploding loss), so no final checkpoint was written; "
                                    f"{self._last_good()}. Lower --lr (or --grad-clip) and continue from it")
            yield self._checkpoint(started, checked=True)
        yield self._report("done", started, message="stopped" if self._stopping(control) else "finished")

    def _settle(self, steps: list[int], rows: list[list[float]], started: float):
        """The steps since the last report whose updates were decided on the device (``defer_checks``): the guard
        counts them now, a skipped one is reported (and three in a row restore the last good state); returns the
        applied steps and their (loss, nll_x, kl)."""
        kept_steps, kept_rows = [], []
        for step, (loss, nll_x, kl, applied) in zip(steps, rows):
            if applied:
                self.guard.good_step(loss)
                kept_steps.append(step)
                kept_rows.append([loss, nll_x, kl])
                continue
            restore = self.guard.bad_step()
            yield self._report("nonfinite", started, message=(
                f"non-finite or exploding loss or gradient at step {step - 1}: update skipped on the device"
                + (", last good state restored" if restore else "")))
            if restore:
                self._fall_back(f"{RESTORE_AFTER_BAD_STEPS} bad steps in a row")
        return kept_steps, kept_rows

    def _wall(self, started: float) -> float:
        return self.wall_time_before + time.perf_counter() - started

    def _report(self, kind: str, started: float, **values) -> Report:
        wall = self._wall(started)
        rate = values.get("images_per_s", 0.0)
        remaining = (self.total_steps - self.step) * self.config.batch_size
        eta = remaining / rate if rate > 0 else float("nan")
        return Report(kind=kind, step=self.step, total_steps=self.total_steps,
                      epoch=self.step / self.steps_per_epoch, wall_time=wall, eta_s=eta,
                      lr=learning_rate(self.config, self.step, self.total_steps), **values)


