"""Training the attention classifier: Adam on the cross-entropy, a loop that yields the engine's reports.

:class:`ClassifierTrainer` is the classifier's counterpart of ``draw_studio.train.Trainer`` on the same
loop (``draw_studio.training_loop``): its ``run()`` yields :class:`~draw_studio.progress.Report` objects
(so the command line's printer, the TensorBoard sink and the training log take them as they are), it
writes checkpoints every ``checkpoint_every`` steps, at the end and on stop, and a resumed run takes
exactly the steps of an uninterrupted one: the only random choices, the data order of an epoch and (with
``--clutter fresh``) that epoch's clutter, come from (seed, epoch), and the checkpoint holds the weights,
the Adam state and the step.

The training log is the engine's (``draw_studio.training_log``): ``history/loss`` and
``history/nll_x`` hold the training cross-entropy -log p(label | image) in nats per image,
``history/kl`` 0 (there is no latent), and ``eval/bound`` the validation error in percent (the root
attribute ``eval_bound`` says so). The losses stay on the device and are pulled to the host once
per report; a non-finite loss found then stops the run, the last checkpoint untouched.

Building a run (new, ``--resume``, ``--init-from``) is ``draw_studio.classifier_setup``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .classifier import AttentionClassifier
from .classifier_checkpoint import save_classifier_checkpoint
from .classifier_eval import ClassifierEvaluation, evaluate_classifier
from .config import TrainConfig
from .data import ImageSet
from .errors import DrawStudioError
from .formatting import duration
from .progress import Report, ReportKind
from .seeding import make_generator, mix_seed
from .train_setup import RunStart
from .training_log import TrainingLogWriter
from .training_loop import TrainingLoop

EVAL_BOUND_MEANING = "validation error in percent"  # the log's root attribute ``eval_bound``


@dataclass
class ClassifierReport(Report):
    """A :class:`~draw_studio.progress.Report` of the classifier's loop.

    ``loss`` and ``nll_x`` are the cross-entropy (nats per image), ``kl`` 0; ``error`` is the error in
    percent: of the training batches since the last ``"step"`` report, or, in a ``"validation"``
    report, of the validation images (also in ``bound``, which the training log records).
    """

    error: float = float("nan")

    def describe(self) -> str | None:
        prefix = f"step {self.step:>7}"
        if self.kind is ReportKind.STEP:
            return (f"{prefix}/{self.total_steps}  epoch {self.epoch:6.2f}  cross-entropy {self.loss:7.4f}  "
                    f"train error {self.error:6.2f}%  {self.images_per_s:6.0f} img/s  lr {self.lr:.2e}  "
                    f"ETA {duration(self.eta_s)}")
        if self.kind is ReportKind.VALIDATION:
            return f"{prefix}  validation error {self.error:.2f}% (cross-entropy {self.loss:.4f})"
        return super().describe()


class ClassifierTrainer(TrainingLoop):
    """Trains one attention classifier with Adam on the cross-entropy.

    ``run(control)`` trains until the last step or a stop request, yielding :class:`ClassifierReport` objects
    (as ``Trainer.run``); a non-finite loss (the run diverged), or a log or checkpoint that cannot be written,
    stops it with a ``DrawStudioError``.

    Parameters
    ----------
    model : AttentionClassifier
        Trained in place, on the device it is on.
    optimizer : torch.optim.Optimizer
        Over ``model``'s parameters; its learning rate is set each step from ``config``.
    config : TrainConfig
        Batch size, steps or epochs, schedule, seed, validation and checkpoint intervals.
    train_set, valid_set : ImageSet
        Labelled uint8 images; the training images are moved to the model's device once.
    out : str or Path, optional
        Checkpoint written every ``config.checkpoint_every`` steps, at the end and on stop.
    log : str or Path, optional
        Training log; a new run's moves in with its first checkpoint.
    start : RunStart, optional
        Where the run starts (default: step 0 of a new run).
    reclutter : callable, optional
        ``reclutter(epoch)``: that epoch's training images (n, C, H, W) uint8, image i of the same digit and
        label as ``train_set``'s image i (``--clutter fresh``: ``draw_studio.data.FreshClutter.images``);
        None: every epoch sees ``train_set``.

    Raises
    ------
    DrawStudioError
        Unlabelled data, a batch larger than the training set, or nothing left to train.
    """

    report_type = ClassifierReport

    def __init__(self, model: AttentionClassifier, optimizer: torch.optim.Optimizer, config: TrainConfig,
                 train_set: ImageSet, valid_set: ImageSet, *, out: str | Path | None = None,
                 log: str | Path | None = None, start: RunStart | None = None,
                 reclutter: Callable[[int], np.ndarray] | None = None) -> None:
        if train_set.labels is None or valid_set.labels is None:
            raise DrawStudioError("a classifier trains on labelled images; use a labelled dataset (cluttered-mnist)")
        self._take_parts(model, optimizer, config, train_set, valid_set, out, log, start or RunStart())
        self._check_batch_size()
        self.reclutter = reclutter
        # (n, C, H, W) uint8 on the device; with fresh clutter, each epoch's own (moved when the epoch starts)
        self.train_images = None if reclutter is not None else torch.as_tensor(train_set.images).to(self.device)
        self.train_labels = torch.as_tensor(train_set.labels, dtype=torch.int64).to(self.device)  # (n,)
        limit = slice(0, config.validation_limit)
        self.valid_images = torch.as_tensor(valid_set.images[limit])
        self.valid_labels = torch.as_tensor(valid_set.labels[limit], dtype=torch.int64)
        self._plan_steps()
        self.last_error = float("nan")

    # ------------------------------------------------------------------ batches and steps
    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (batch, C, H, W) in [0, 1] and labels (batch,) of optimiser step ``step``."""
        cfg = self.config
        epoch, position = divmod(step, self.steps_per_epoch)
        if self._order is None or self._order[0] != epoch:
            generator = make_generator(torch.device("cpu"), mix_seed(cfg.seed, epoch, 1))
            self._order = (epoch, torch.randperm(len(self.train_set), generator=generator).to(self.device))
            if self.reclutter is not None:
                self.train_images = self._fresh_images(epoch)
        index = self._order[1][position * cfg.batch_size:(position + 1) * cfg.batch_size]
        return self.train_images[index].float() / 255.0, self.train_labels[index]

    def _fresh_images(self, epoch: int) -> torch.Tensor:
        """Epoch ``epoch``'s training images from ``reclutter``, checked against the training set's shape."""
        images = np.asarray(self.reclutter(epoch))
        if images.shape != self.train_set.images.shape or images.dtype != np.uint8:
            raise DrawStudioError(f"the fresh clutter of epoch {epoch} is {images.dtype} {images.shape}, the training "
                                  f"set uint8 {self.train_set.images.shape}; build both from the same digits")
        self.train_images = None  # the previous epoch's images go before the next are moved to the device
        return torch.as_tensor(images).to(self.device)  # (n, C, H, W) uint8

    def train_step(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One Adam step on the cross-entropy of step ``step``'s batch; (loss, errors) as device scalars."""
        x, y = self.batch(step)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(step)
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(x).logits  # (batch, classes)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return loss.detach(), (logits.detach().argmax(1) != y).sum()

    def validate(self) -> ClassifierEvaluation:
        """Error and cross-entropy on the first ``validation_limit`` validation images."""
        result = evaluate_classifier(self.model, self.valid_images, self.valid_labels, batch_size=500)
        self.last_error = result.error
        return result

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str | Path | None = None, wall_time: float = 0.0) -> Path:
        """Write a checkpoint of the current state (default: ``out``)."""
        path = Path(path) if path else self.out
        if path is None:
            raise DrawStudioError("no checkpoint path: pass --out FILE")
        extra = {"wall_time": float(wall_time), "valid_error": float(self.last_error), "dataset": self.config.dataset,
                 "train_images": int(len(self.train_set)), "steps_per_epoch": int(self.steps_per_epoch),
                 "train_fingerprint": self.fingerprint, "run_id": self.run_id, "lineage": self.lineage}
        save_classifier_checkpoint(path, self.model, self.config, self.optimizer, self.step, extra)
        return path

    def _checkpoint(self, started: float) -> Report:
        log = self._log
        if log is not None and not log.pending:
            self._or_stop(log.flush)  # the log on disk reaches the checkpoint's step before the checkpoint does
        path = self._or_stop(self.save, self.out, self._wall(started))
        self._saved_step, self._on_disk = self.step, (path, self.step)
        if log is not None and log.pending:
            self._or_stop(log.commit)  # a new run's log moves in with its first checkpoint
        return self._report("checkpoint", started, path=str(path))

    def _last_good(self) -> str:
        if self._on_disk is not None:
            return f"the last checkpoint {self._on_disk[0]} (step {self._on_disk[1]}) is untouched"
        return "no checkpoint was written by this run"

    # ------------------------------------------------------------------ the loop's hooks
    def _open_log(self) -> TrainingLogWriter:
        log = super()._open_log()
        log.attrs.update(eval_bound=EVAL_BOUND_MEANING)
        return log

    def _start_message(self) -> str:
        return f"training the attention classifier on {self.device} from step {self.step}"

    def _take_step(self) -> torch.Tensor:
        loss, errors = self.train_step(self.step)
        return torch.stack((loss, errors.to(loss.dtype)))  # (2,): cross-entropy, errors in the batch

    def _step_report(self, started: float, steps: list[int], rows: list[list[float]], rate: float,
                     wall: float) -> ClassifierReport:
        if not all(math.isfinite(loss) for loss, _ in rows):
            raise DrawStudioError(f"training diverged before step {self.step} (a non-finite loss); "
                                  f"{self._last_good()}. Lower --lr (or --grad-clip) and continue from it")
        mean_loss = sum(row[0] for row in rows) / len(rows)
        error = 100.0 * sum(row[1] for row in rows) / (len(rows) * self.config.batch_size)
        return self._report("step", started, loss=mean_loss, nll_x=mean_loss, kl=0.0, error=error, images_per_s=rate,
                            step_losses=[(s, wall, row[0], row[0], 0.0, self.learning_rate(s - 1))
                                         for s, row in zip(steps, rows)])

    def _validation_report(self, started: float) -> ClassifierReport:
        result = self.validate()
        return self._report("validation", started, bound=result.error, error=result.error, loss=result.cross_entropy)
