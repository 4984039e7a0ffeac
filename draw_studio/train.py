"""The training engine: a plain loop that reports its progress as it goes.

``Trainer.run()`` is a generator of :class:`Report` objects. The CLI prints
them; the GUI worker turns them into Qt signals. Pause and stop are flags
(:class:`TrainingControl`) checked between steps.

A ``Trainer`` is given a built model, optimiser and data; ``Trainer.from_options``
(a new run) and ``Trainer.from_checkpoint`` (a run that goes on) build them
(``draw_studio.train_setup``); what one step does (its batch, the step, validation) is
``draw_studio.training_step``; the loop's reports, cadences, log and stop handling, shared with the
attention classifier's trainer, are ``draw_studio.training_loop``.

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

from collections.abc import Iterator
from pathlib import Path

import torch

from .config import LR_WARMUP_AFTER_FRESH_ADAM, ModelConfig, TrainConfig
from .data import ImageSet, model_inputs
from .data.binarize import fixed_binarization
from .distributed import ONE_PROCESS, Ranks, StepReducer, broadcast_weights
from .divergence import RESTORE_AFTER_BAD_STEPS, DivergedError, DivergenceGuard
from .errors import DrawStudioError
from .good_state import GoodStateKeeper
from .handwritten_step import release_buffers
from .model import DRAW
from .progress import Report, TrainingControl
from .seeding import mix_seed
from .train_setup import RunStart, continued_run, new_run
from .training_log import TrainingLogWriter
from .training_loop import TrainingLoop
from .training_snapshots import SnapshotTaker
from .training_step import StepTaker


class Trainer(StepTaker, GoodStateKeeper, TrainingLoop):
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
        applied from a bad step; the explosion limit starts at the first report); with several ranks the stop
        requests are read every few steps (``training_step.STOP_READ_EVERY``). None: on CUDA with a fused
        Adam (what ``from_options`` builds there). Experimental, unmeasured on a GPU.
    cuda_graphs : str
        ``auto``, ``on`` or ``off``: train each step as one CUDA graph (``draw_studio.cuda_graphs``; auto: on
        CUDA with one process and the fast fp32 path; ``on`` elsewhere raises). Experimental, unmeasured.

    Raises
    ------
    DrawStudioError
        A batch larger than the training set or that does not divide among the ranks, or nothing left to
        train (``steps`` not above the starting step).
    """

    def __init__(self, model: DRAW, optimizer: torch.optim.Optimizer, config: TrainConfig, train_set: ImageSet,
                 valid_set: ImageSet, *, out: str | Path | None = None, log: str | Path | None = None,
                 start: RunStart | None = None, fast: bool = True, compile: bool | None = None,
                 ranks: Ranks | None = None, defer_checks: bool | None = None, cuda_graphs: str = "off") -> None:
        self.ranks = ranks = ranks or ONE_PROCESS
        if config.clutter != "fixed":
            raise DrawStudioError(f"clutter {config.clutter!r} is for the attention classifier; DRAW trains on the "
                                  "training split as it is: drop --clutter (or use --clutter fixed)")
        if not ranks.is_main:
            log = None  # rank 0 alone writes the log (and the checkpoints: ``GoodStateKeeper._write``)
        self._take_parts(model, optimizer, config, train_set, valid_set, out, log, start or RunStart())
        self.fast, self.compile = fast, compile
        # The whole training split lives on the device as uint8: (n, C, H, W)
        pixels, self.binary = train_set.images, train_set.binary
        if config.binarization == "fixed" and model.config.likelihood == "bernoulli" and not self.binary:
            pixels, self.binary = fixed_binarization(pixels, mix_seed(config.seed, 2)), True
        self.train_pixels = torch.as_tensor(pixels).to(self.device)
        valid_pixels, self.valid_binarization, _ = model_inputs(
            valid_set.subset(slice(0, config.validation_limit)), model.config.likelihood)
        self.valid_pixels = torch.as_tensor(valid_pixels)
        self._check_batch_size()
        ranks.check_batch(config.batch_size, resumed=self.start.checkpoint is not None)
        self._plan_steps()
        self.guard = DivergenceGuard()
        self.notices += self._device_notices()
        broadcast_weights(model, ranks)  # before the first good state is kept
        self.reducer = StepReducer(model, self.device) if ranks.active else None
        fused = all(group.get("fused") for group in optimizer.param_groups)  # as loaded from a checkpoint
        if defer_checks and not fused:
            raise DrawStudioError("deferred step checks need an Adam with fused=True")
        self.defer_checks = (self.device.type == "cuda" and fused) if defer_checks is None else defer_checks
        self._choose_graphs(cuda_graphs)
        self._stop_agreed = False  # with several ranks: some rank was asked to stop (known after each step)
        self._good_state = self._snapshot()
        self._good_step = self.step
        self.snapshots: SnapshotTaker | None = None  # the log's snapshots (draw_studio.training_snapshots)
        self.last_bound = float("nan")

    @classmethod
    def from_options(cls, model_config: ModelConfig | None, train_config: TrainConfig, *,
                     data_dir: str | None = None, train_set: ImageSet | None = None,
                     valid_set: ImageSet | None = None, download: bool = True, out: str | Path | None = None,
                     log: str | Path | bool | None = True, device: str = "auto", overwrite: bool = True,
                     fast: bool = True, compile: bool | None = None, ranks: Ranks | None = None,
                     cuda_graphs: str = "off") -> Trainer:
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
                                  overwrite=overwrite)), fast=fast, compile=compile, ranks=ranks,
                   cuda_graphs=cuda_graphs)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, steps: int | None, *, epochs: float = 0.0,
                        changes: dict | None = None, fresh_optimizer: bool = False, data_dir: str | None = None,
                        train_set: ImageSet | None = None, valid_set: ImageSet | None = None,
                        download: bool = True, out: str | Path | None = None, log: str | Path | bool | None = True,
                        device: str = "auto", overwrite: bool = True, allow_data_change: bool = False,
                        fast: bool = True, compile: bool | None = None, ranks: Ranks | None = None,
                        cuda_graphs: str = "off", lr_warmup: int = LR_WARMUP_AFTER_FRESH_ADAM) -> Trainer:
        """A run that goes on from ``checkpoint``: its model, configuration, step and run.

        Parameters
        ----------
        steps, epochs : int or None, float
            Steps (or, above 0, epochs) in all, counting those already done; ``steps`` None keeps the
            checkpoint's own (the run ends where, and on the learning-rate schedule, it was started for).
        changes : dict, optional
            Fields of the checkpoint's training configuration to replace for the rest of the run
            (e.g. a lower learning rate; see ``config.resume_changes``).
        fresh_optimizer : bool
            False (``--resume``): go on exactly, with the saved Adam state; the data is checked
            against what the checkpoint records, and the run continues its own log.
            True (``--init-from``, e.g. from a shipped, weights-only model): the weights, step, wall
            time and training configuration with a fresh Adam state, recorded in
            ``extra["lineage"]`` of every checkpoint.
        lr_warmup : int
            With ``fresh_optimizer``: steps over which the learning rate ramps up from the first step
            (``config.learning_rate``; kept in the lineage, so a later ``--resume`` goes on with it).
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
                                        lr_warmup=lr_warmup, data_dir=data_dir, train_set=train_set,
                                        valid_set=valid_set, download=download, out=out, log=log, device=device,
                                        overwrite=overwrite, allow_data_change=allow_data_change)),
                   fast=fast, compile=compile,
                   ranks=ranks, cuda_graphs=cuda_graphs)

    def _stopping(self, control: TrainingControl) -> bool:
        """Whether the run stops now: this process's request, or with several ranks the one every rank agreed
        on in the last step's all-reduce (so all stop after the same step)."""
        return self._stop_agreed if self.ranks.active else control.stop_requested

    def run(self, control: TrainingControl | None = None) -> Iterator[Report]:
        """Train until ``total_steps`` or a stop request, yielding reports (``TrainingLoop.run``).

        The final checkpoint is written at the end and on stop (unless
        ``control.skip_final_save()``), and ``"done"`` comes only after it.
        A checkpoint is written only from a state whose loss on the next batch
        is good; bad steps are skipped and repeated ones restore the last good
        state (``draw_studio.divergence``); a run that keeps diverging stops
        with :class:`DivergedError`, its last good checkpoint untouched. A log
        that cannot be written (full disk, file-size limit) stops the run with
        a ``DrawStudioError``.
        """
        return super().run(control)

    def _run_ended(self) -> None:
        release_buffers()

    def _open_log(self) -> TrainingLogWriter:
        """The log writer (``TrainingLoop._open_log``) and the snapshot taker that writes into it."""
        log = super()._open_log()
        if self.config.snapshot_every:
            self.snapshots = SnapshotTaker(self.model, self.valid_pixels, self.config.snapshot_every, log)
            self.notices += self.snapshots.notices
        return log

    def _between_steps(self, edge: bool = False) -> None:
        """The log's snapshot of this step, when due (every ``snapshot_every`` steps, at step 0 and where a
        session ends)."""
        if self.snapshots is not None:
            self._or_stop(self.snapshots.maybe, self.step, edge)

    # ------------------------------------------------------------------ the loop's hooks (``TrainingLoop._run``)
    def _start_message(self) -> str:
        where = f"{self.device}, {self.ranks.describe()}" if self.ranks.active else f"{self.device}"
        return f"training on {where} from step {self.step}" + self._compile_notice()

    def _take_step(self) -> torch.Tensor | None:
        """Step ``self.step``: its (loss, nll_x, kl) on the device (deferred: and whether it was applied), or
        None when its update was skipped."""
        loss, nll_x, kl, applied = self.train_step(self.step)
        self._deferred = deferred = isinstance(applied, torch.Tensor)  # a flag on the device, read with the report
        if not deferred and not applied:
            return None
        if not deferred:
            self.guard.good_step(loss)
        return torch.stack((loss, nll_x, kl, applied.float()) if deferred else (loss, nll_x, kl))

    def _step_skipped(self, started: float, step: int | None = None, where: str = "") -> Iterator[Report]:
        """A skipped update (of step ``step``, default ``self.step``; ``where``: e.g. " on the device"): counted
        by the guard and reported; the last of ``RESTORE_AFTER_BAD_STEPS`` in a row restores the last good state."""
        restore = self.guard.bad_step()
        yield self._report("nonfinite", started, message=(
            f"non-finite or exploding loss or gradient at step {self.step if step is None else step}: update "
            f"skipped{where}" + (", last good state restored" if restore else "")))
        if restore:
            self._fall_back(f"{RESTORE_AFTER_BAD_STEPS} bad steps in a row")

    def _step_report(self, started: float, steps: list[int], rows: list[list[float]], rate: float,
                     wall: float) -> Report:
        means = [sum(column) / len(rows) for column in zip(*rows)]
        return self._report("step", started, loss=means[0], nll_x=means[1], kl=means[2], images_per_s=rate,
                            step_losses=[(s, wall, *row, self.learning_rate(s - 1)) for s, row in zip(steps, rows)])

    def _validation_report(self, started: float) -> Report:
        return self._report("validation", started, bound=self.validate())

    def _final_checkpoint(self, started: float) -> Report:
        if not self.state_is_good():
            raise DivergedError(f"training ended at step {self.step} in a diverged state (its weights give a "
                                f"non-finite or exploding loss), so no final checkpoint was written; "
                                f"{self._last_good()}. Lower --lr (or --grad-clip) and continue from it")
        return self._checkpoint(started, checked=True)

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
            yield from self._step_skipped(started, step - 1, " on the device")
        return kept_steps, kept_rows
