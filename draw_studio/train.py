"""The training engine: a plain loop that reports its progress as it goes.

``Trainer.run()`` is a generator of :class:`Report` objects. The CLI prints
them; the GUI worker turns them into Qt signals. Pause and stop are flags
(:class:`TrainingControl`) checked between steps.

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

import dataclasses
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import torch

from .checkpoint import model_from_state, read_checkpoint
from .config import ModelConfig, TrainConfig
from .data import ImageSet, load_split, model_inputs
from .data.binarize import dynamic_binarization, fixed_binarization
from .device import resolve_device
from .divergence import RESTORE_AFTER_BAD_STEPS, DivergedError, DivergenceGuard
from .errors import DrawStudioError, FileFormatError
from .evaluate import evaluate
from .files import file_sha256, same_file
from .good_state import GoodStateKeeper
from .handwritten_step import compile_wanted, fast_backward, release_buffers
from .model import DRAW, LossTerms
from .progress import Report, TrainingControl
from .run_checks import (
    check_resume_data,
    continuable_log,
    images_fingerprint,
    refuse_to_replace,
    same_model,
    same_run_as,
)
from .seeding import make_generator, mix_seed
from .training_log import TrainingLogWriter

LOG_FLUSH_S = 5.0  # the log on disk lags the run by at most this (more for a big log), and never a checkpoint


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate at ``step`` under the configured schedule."""
    if config.lr_schedule == "cosine":
        progress = min(step / max(total_steps, 1), 1.0)
        low = config.lr * config.lr_min_factor
        return low + 0.5 * (config.lr - low) * (1 + math.cos(math.pi * progress))
    if config.lr_schedule == "step":
        return config.lr * config.lr_decay ** (step // max(config.lr_decay_every, 1))
    return config.lr


def default_log_path(checkpoint: str | Path) -> Path:
    """The training log written beside a checkpoint: ``X.ckpt`` -> ``X.log.h5``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".log.h5")


class Trainer(GoodStateKeeper):
    """Trains one DRAW model.

    Parameters
    ----------
    model_config, train_config : ModelConfig, TrainConfig
        What to build and how to train it. With ``resume`` they come from
        the checkpoint and only ``train_config.steps`` / ``epochs`` of the
        arguments are used, plus the fields named in ``resume_changes``
        (e.g. a lower learning rate for the rest of a run).
    data_dir : str, optional
        Searched first for the dataset.
    out : str or Path, optional
        Checkpoint written every ``checkpoint_every`` steps and at the end.
    resume : str or Path, optional
        Checkpoint to continue from.
    init_from : str or Path, optional
        Checkpoint (e.g. a shipped, weights-only one) whose weights, step,
        wall time and training configuration start this run with a fresh
        Adam state; recorded in ``extra["lineage"]`` of every checkpoint.
    device : str
        ``auto``, ``cpu``, ``cuda``...
    train_set, valid_set : ImageSet, optional
        Data given directly (the dataset is then not loaded).
    log : str, Path, bool or None
        Training log (HDF5) to write; ``True`` (default) puts it beside
        ``out`` (``X.ckpt`` -> ``X.log.h5``), ``None``/``False`` writes none.
        A new run's log moves in with its first checkpoint (before, no file
        is touched); a resumed run continues its own log (rows after the
        resumed step dropped), never another run's.
    fast : bool
        Use ``draw_studio.handwritten_step.fast_backward`` (same numbers, faster) rather
        than autograd through ``DRAW.forward``.
    compile : bool, optional
        Whether the fast path compiles its steps (``torch.compile``; the first
        step then takes ~15-40 s, once per machine and batch size). None: see
        ``draw_studio.handwritten_step.compile_wanted`` (``$DRAW_STUDIO_COMPILE``, else on a
        CPU for big enough batches).
    overwrite : bool
        False: refuse (``DrawStudioError``) to start over an existing
        checkpoint at ``out`` or log at its log path, unless this run resumes
        ``out`` itself (the command line's default; ``--overwrite`` sets it).
    allow_data_change : bool
        Resume even if the data differs from what the checkpoint records
        (name, number of training images, fingerprint of their pixels).

    Raises
    ------
    DrawStudioError
        Refused files or data, nothing left to train (``steps`` not above the
        starting step), or a bad checkpoint.
    """

    def __init__(self, model_config: ModelConfig | None, train_config: TrainConfig, data_dir: str | None = None,
                 out: str | Path | None = None, resume: str | Path | None = None, device: str = "auto",
                 train_set: ImageSet | None = None, valid_set: ImageSet | None = None,
                 download: bool = True, fast: bool = True, log: str | Path | None | bool = True,
                 resume_changes: dict | None = None, compile: bool | None = None,
                 init_from: str | Path | None = None, overwrite: bool = True,
                 allow_data_change: bool = False) -> None:
        if resume and init_from:
            raise DrawStudioError("pass either --resume (continue a run exactly) or --init-from "
                                  "(start from a checkpoint's weights with a fresh optimiser), not both")
        self.device = resolve_device(device)
        self.fast = fast
        self.compile = compile
        if log is True:
            log = default_log_path(out) if out else None
        self.log_path = Path(log) if log else None
        self.out = Path(out) if out else None
        self.resume = Path(resume) if resume else None
        self.init_from = Path(init_from) if init_from else None
        for other, flag in ((self.out, "--out"), (self.resume, "--resume"), (self.init_from, "--init-from")):
            if same_file(self.log_path, other):
                raise DrawStudioError(f"the training log {self.log_path} would be the checkpoint {flag} {other}; "
                                      "pass another --log")
        self.notices: list[str] = []
        self.step = 0
        self.wall_time_before = 0.0
        source = resume or init_from
        resumed = read_checkpoint(source) if source else None
        self._source_state = resumed
        self.in_place = resume is not None and (self.out is None or same_file(self.out, self.resume))
        # a log continued by --init-from: the one already at the log path, if it is of the same model
        self._init_log = continuable_log(self.log_path, resumed) if init_from else None
        if not overwrite and not self.in_place:
            refuse_to_replace(self.out, self.log_path, continuing=self._init_log)
        extra = (resumed or {}).get("extra", {}) or {}
        self.lineage: list = list(extra.get("lineage", []))
        self.run_id = (extra.get("run_id") if resume else None) or uuid.uuid4().hex
        if resumed is not None:
            saved = TrainConfig.from_dict(resumed.get("train_config") or {})
            train_config = dataclasses.replace(saved, steps=train_config.steps, epochs=train_config.epochs,
                                               **(resume_changes or {}))
            model_config = ModelConfig.from_dict(resumed["model_config"])
        self.config = train_config
        self.train_set = train_set or load_split(train_config.dataset, "train", data_dir,
                                                 train_config.validation_size, download)
        self.valid_set = valid_set or load_split(train_config.dataset, "valid", data_dir,
                                                 train_config.validation_size, download)
        self.fingerprint = images_fingerprint(self.train_set.images)
        if resume:
            notices, changed = check_resume_data(resumed, resume, train_config.dataset, self.train_set,
                                                 self.fingerprint, allow_data_change)
            self.notices += notices
            if changed:
                self.lineage.append({"data_changed_at_step": int(resumed["step"]),
                                     "from": extra.get("train_fingerprint"), "to": self.fingerprint,
                                     "train_images": int(len(self.train_set))})
        model_config = (model_config or ModelConfig()).with_image_shape(*self.train_set.shape)
        if resumed is not None:
            self.model = model_from_state(resumed, source).to(self.device)
            if model_config != self.model.config:
                raise DrawStudioError(f"{source} was trained on images of shape {self.model.config.channels}x"
                                      f"{self.model.config.height}x{self.model.config.width}, the data is "
                                      f"{'x'.join(map(str, self.train_set.shape))}; resume on the same dataset")
        else:
            torch.manual_seed(train_config.seed)
            self.model = DRAW(model_config).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=train_config.lr,
                                          betas=(train_config.beta1, train_config.beta2))
        if init_from:
            self.step = int(resumed["step"])
            self.wall_time_before = float(extra.get("wall_time", 0.0))
            self.lineage.append({"init_from": str(init_from), "sha256": file_sha256(init_from),
                                 "step": self.step, "fresh_optimizer": True})
        elif resumed is not None:
            if resumed.get("optimizer") is None:
                raise DrawStudioError(f"{resume} holds no optimiser state (a shipped model?); "
                                      "continue from its weights with --init-from instead of --resume")
            self.optimizer.load_state_dict(resumed["optimizer"])
            self.step = int(resumed["step"])
            self.wall_time_before = float(extra.get("wall_time", 0.0))
        # The whole training split lives on the device as uint8: (n, C, H, W)
        pixels, self.binary = self.train_set.images, self.train_set.binary
        if train_config.binarization == "fixed" and model_config.likelihood == "bernoulli" and not self.binary:
            pixels, self.binary = fixed_binarization(pixels, mix_seed(train_config.seed, 2)), True
        self.train_pixels = torch.as_tensor(pixels).to(self.device)
        valid_pixels, self.valid_binarization, _ = model_inputs(
            self.valid_set.subset(slice(0, train_config.validation_limit)), model_config.likelihood)
        self.valid_pixels = torch.as_tensor(valid_pixels)
        self.steps_per_epoch = max(len(self.train_set) // train_config.batch_size, 1)
        if train_config.batch_size > len(self.train_set):
            raise DrawStudioError(f"batch size {train_config.batch_size} is larger than the "
                                  f"{len(self.train_set)} training images; use a smaller --batch-size")
        self.total_steps = (math.ceil(train_config.epochs * self.steps_per_epoch)
                            if train_config.epochs > 0 else train_config.steps)
        if self.total_steps < 1:
            raise DrawStudioError(f"nothing to train: {self.total_steps} steps; pass --steps (or --epochs) above 0")
        if self.step >= self.total_steps:
            raise DrawStudioError(f"{source} is already at step {self.step:,} and this run asks for "
                                  f"{self.total_steps:,} steps in all; pass a larger --steps (or --epochs) to "
                                  "continue it")
        self.guard = DivergenceGuard()
        self._good_state = self._snapshot()
        self._good_step = self.step
        # the checkpoint file known to hold a good state: (path, step)
        self._on_disk = (self.out, self.step) if self.in_place and self.out is not None else None
        self._saved_step: int | None = None  # step of the last checkpoint this session wrote to ``out``
        self._log: TrainingLogWriter | None = None
        self.last_bound = float("nan")

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

        The final checkpoint is written at the end and on stop, and ``"done"``
        comes only after it. A checkpoint is written only from a state whose
        loss on the next batch is good; bad steps are skipped and repeated
        ones restore the last good state (``draw_studio.divergence``); a run
        that keeps diverging stops with :class:`DivergedError`, its last good
        checkpoint untouched. A log that cannot be written (full disk,
        file-size limit) stops the run with a ``DrawStudioError``.
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
        """The log writer: continuing this run's log when resuming, held back until a new run's first checkpoint."""
        state = self._source_state
        if self.resume is not None:
            source = self.log_path if self.in_place else default_log_path(self.resume)
            same_run, pending, resume_step = same_run_as(state), not self.in_place, self.step
        elif self._init_log is not None:
            source, pending, resume_step = self._init_log, self.out is not None, self.step
            same_run = lambda old: same_model(old.model_config, state.get("model_config"))  # noqa: E731
            self.notices.append(f"the curves of {self._init_log} up to step {self.step} go on in this run's log")
        else:
            source, same_run, pending, resume_step = None, None, self.out is not None, None
        log = TrainingLogWriter(self.log_path, self.model.config, self.config, resume_step=resume_step,
                                run_id=self.run_id, source=source, same_run=same_run, pending=pending,
                                flush_every_s=LOG_FLUSH_S)
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
                continue
            self.guard.good_step(loss)
            self.step += 1
            window_losses.append(torch.stack((loss, nll_x, kl)))
            window_steps.append(self.step)
            window_images += cfg.batch_size
            checkpoint_due = (self.out is not None and cfg.checkpoint_every > 0
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
            if checkpoint_due:
                yield self._checkpoint(started)
                window_start, window_images = time.perf_counter(), 0
        if self.out is not None and self._saved_step != self.step:
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


