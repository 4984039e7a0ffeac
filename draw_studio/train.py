"""The training engine: a plain loop that reports its progress as it goes.

``Trainer.run()`` is a generator of :class:`Report` objects. The CLI prints
them; the GUI worker turns them into Qt signals. Pause and stop are flags
(:class:`TrainingControl`) checked between steps.

A ``Trainer`` is given a built model, optimiser and data; ``Trainer.from_options``
(a new run) and ``Trainer.from_checkpoint`` (a run that goes on) build them
(``draw_studio.train_setup``).

Every random choice of step s (data order, dynamic binarisation, the noise
eps_t) is drawn from generators seeded by (seed, epoch) or (seed, s), so a run
resumed from a checkpoint takes exactly the same steps as an uninterrupted one.

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
from .data.binarize import dynamic_binarization, fixed_binarization
from .divergence import RESTORE_AFTER_BAD_STEPS, DivergedError, DivergenceGuard
from .errors import DrawStudioError, FileFormatError
from .evaluate import evaluate
from .good_state import GoodStateKeeper
from .handwritten_step import compile_wanted, fast_backward, release_buffers
from .model import DRAW, LossTerms
from .progress import Report, TrainingControl
from .run_checks import images_fingerprint
from .seeding import make_generator, mix_seed
from .train_setup import RunStart, continued_run, new_run
from .training_log import TrainingLogWriter
from .training_snapshots import SnapshotTaker

LOG_FLUSH_S = 5.0  # the log on disk lags the run by at most this (more for a big log), and never a checkpoint


class Trainer(GoodStateKeeper):
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

    Raises
    ------
    DrawStudioError
        A batch larger than the training set, or nothing left to train (``steps`` not above the
        starting step).
    """

    def __init__(self, model: DRAW, optimizer: torch.optim.Optimizer, config: TrainConfig, train_set: ImageSet,
                 valid_set: ImageSet, *, out: str | Path | None = None, log: str | Path | None = None,
                 start: RunStart | None = None, fast: bool = True, compile: bool | None = None) -> None:
        start = start or RunStart()
        self.model, self.optimizer, self.config = model, optimizer, config
        self.device = next(model.parameters()).device
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
        valid_pixels, self.valid_binarization, _ = model_inputs(
            valid_set.subset(slice(0, config.validation_limit)), model.config.likelihood)
        self.valid_pixels = torch.as_tensor(valid_pixels)
        self.steps_per_epoch = max(len(train_set) // config.batch_size, 1)
        if config.batch_size > len(train_set):
            raise DrawStudioError(f"batch size {config.batch_size} is larger than the "
                                  f"{len(train_set)} training images; use a smaller --batch-size")
        self.total_steps = (math.ceil(config.epochs * self.steps_per_epoch) if config.epochs > 0 else config.steps)
        if self.total_steps < 1:
            raise DrawStudioError(f"nothing to train: {self.total_steps} steps; pass --steps (or --epochs) above 0")
        if self.step >= self.total_steps:
            raise DrawStudioError(f"{start.checkpoint} is already at step {self.step:,} and this run asks for "
                                  f"{self.total_steps:,} steps in all; pass a larger --steps (or --epochs) to "
                                  "continue it")
        self.guard = DivergenceGuard()
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
                     fast: bool = True, compile: bool | None = None) -> Trainer:
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

        The other parameters are the constructor's.
        """
        return cls(**vars(new_run(model_config, train_config, data_dir=data_dir, train_set=train_set,
                                  valid_set=valid_set, download=download, out=out, log=log, device=device,
                                  overwrite=overwrite)), fast=fast, compile=compile)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, steps: int, *, epochs: float = 0.0,
                        changes: dict | None = None, fresh_optimizer: bool = False, data_dir: str | None = None,
                        train_set: ImageSet | None = None, valid_set: ImageSet | None = None,
                        download: bool = True, out: str | Path | None = None, log: str | Path | bool | None = True,
                        device: str = "auto", overwrite: bool = True, allow_data_change: bool = False,
                        fast: bool = True, compile: bool | None = None) -> Trainer:
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
                                        allow_data_change=allow_data_change)), fast=fast, compile=compile)

    # ------------------------------------------------------------------ batches
    def batch(self, step: int) -> torch.Tensor:
        """The training batch of optimiser step ``step`` (batch, C, H, W) in [0, 1]."""
        cfg = self.config
        epoch, position = divmod(step, self.steps_per_epoch)
        order = torch.randperm(len(self.train_set), generator=make_generator(torch.device("cpu"),
                                                                              mix_seed(cfg.seed, epoch, 1)))
        index = order[position * cfg.batch_size:(position + 1) * cfg.batch_size].to(self.device)
        grey = self.train_pixels[index].float()  # (batch, C, H, W)
        if self.binary:
            return grey
        grey = grey / 255.0
        if self.model.config.likelihood != "bernoulli" or cfg.binarization == "none":
            return grey
        return dynamic_binarization(grey, make_generator(self.device, mix_seed(cfg.seed, step, 3)))

    # ------------------------------------------------------------------ validation
    def validate(self) -> float:
        """Bound (nats per image) on the first ``validation_limit`` validation images."""
        was_training = self.model.training
        self.model.eval()
        result = evaluate(self.model, self.valid_pixels, batch_size=500, seed=self.config.seed,
                          binarization=self.valid_binarization)
        self.model.train(was_training)
        self.last_bound = result.bound
        return result.bound

    # ------------------------------------------------------------------ loop
    def train_step(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
        """One optimiser step; returns (loss, nll_x, kl) as detached scalars and whether it was applied.

        The update is skipped when the loss or gradient norm is not finite or the loss exceeds
        ``guard.limit()`` (see ``draw_studio.divergence``).
        """
        cfg = self.config
        x = self.batch(step)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step, self.total_steps)
        generator = make_generator(self.device, mix_seed(cfg.seed, step, 4))
        self.optimizer.zero_grad(set_to_none=True)
        if self.fast and cfg.precision == "fp32":
            terms = fast_backward(self.model, x, generator, compile=self.compile)
        else:  # autograd through DRAW.forward, under bf16 autocast when asked
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                terms, _ = self.model(x, generator=generator)
            terms = LossTerms(nll_x=terms.nll_x.float(), kl=terms.kl.float(), log_weight=terms.log_weight.float())
            terms.bound.mean().backward()
        loss = terms.bound.mean()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        good = bool(torch.isfinite(loss) & torch.isfinite(grad_norm) & (loss <= self.guard.limit()))
        if good:
            self.optimizer.step()
        return loss.detach(), terms.nll_x.mean().detach(), terms.kl.mean().detach(), good

    def _compile_notice(self) -> str:
        """What the start report says when the first step will compile the fast path."""
        if self.config.precision == "bf16":
            return " (bf16 autocast, plain autograd path)"
        if not self.fast:
            return " (plain autograd path)"
        cfg = self.model.config
        probe = torch.empty(self.config.batch_size, cfg.channels, cfg.height, cfg.width, device=self.device)
        if compile_wanted(self.model, probe, self.compile):
            return ("; the first step compiles the fast path (up to ~40 s the first time on this machine, "
                    "a few seconds later)")
        return ""

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
        if self.log_path:
            self._log = self._or_stop(self._open_log)
        finished = False
        try:
            for report in self._run(control or TrainingControl()):
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
        yield self._report("start", started, message=f"training on {self.device} from step {self.step}"
                           + self._compile_notice())
        for notice in self.notices:
            yield self._report("notice", started, message=notice)
        self._log_snapshot(edge=self.step == 0)
        while self.step < self.total_steps and not control.stop_requested:
            if control.paused:
                yield self._report("paused", started)
                while control.paused and not control.stop_requested:
                    control.wait_while_paused()
                window_start, window_images = time.perf_counter(), 0
                yield self._report("resumed", started)
                continue
            loss, nll_x, kl, applied = self.train_step(self.step)
            if not applied:
                restore = self.guard.bad_step()
                yield self._report("nonfinite", started, message=(
                    f"non-finite or exploding loss or gradient at step {self.step}: update skipped"
                    + (", last good state restored" if restore else "")))
                if restore:
                    self._fall_back(f"{RESTORE_AFTER_BAD_STEPS} bad steps in a row")
                self.step += 1
                self._log_snapshot()
                continue
            self.guard.good_step(loss)
            self.step += 1
            window_losses.append(torch.stack((loss, nll_x, kl)))
            window_steps.append(self.step)
            window_images += cfg.batch_size
            checkpoint_due = (self.out is not None and not control.final_save_skipped and cfg.checkpoint_every > 0
                              and self.step % cfg.checkpoint_every == 0)
            if (self.step % cfg.report_every == 0 or self.step == self.total_steps or checkpoint_due
                    or control.stop_requested):  # a stop never loses the steps since the last report
                rows = torch.stack(window_losses).cpu().tolist()  # the one host synchronisation per report
                means = [sum(column) / len(rows) for column in zip(*rows)]
                now = time.perf_counter()
                rate = window_images / max(now - window_start, 1e-9)
                wall = self._wall(started)
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
        yield self._report("done", started, message="stopped" if control.stop_requested else "finished")

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


