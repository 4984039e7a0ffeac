"""The part of the :class:`draw_studio.train.Trainer` that keeps the last good state good.

A checkpoint is written only from a state whose loss on the next training batch is good (finite and
not exploded, see ``draw_studio.divergence``); a state that is not brings back the last good one (that
of the last checkpoint written, or the start of the session), and too many of those stop the run with
:class:`~draw_studio.divergence.DivergedError`, the checkpoint file untouched.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch

from .checkpoint import save_checkpoint
from .distributed import global_noise, sum_over_ranks, terms_with_noise
from .divergence import DivergedError
from .errors import DrawStudioError
from .progress import Report
from .seeding import make_generator, mix_seed


class GoodStateKeeper:
    """Mixin of :class:`~draw_studio.train.Trainer`: good states, checkpoints, falling back."""

    def _snapshot(self) -> dict:
        return {"model": copy.deepcopy(self.model.state_dict()),
                "optimizer": copy.deepcopy(self.optimizer.state_dict())}

    def _restore(self, snapshot: dict) -> None:
        self.model.load_state_dict(snapshot["model"])  # copies into the parameters
        # Optimizer.load_state_dict keeps the snapshot's own tensors when dtype and device match: without the
        # copy the next steps would change the snapshot, and a second restore would bring back moved moments
        self.optimizer.load_state_dict(copy.deepcopy(snapshot["optimizer"]))

    def state_is_good(self) -> bool:
        """Whether the current weights give a good loss (finite, not exploded) on the next training batch.

        One forward pass without gradients on the batch of step ``step`` (its own noise stream, so
        the run's random numbers are unchanged); with several ranks each takes its rows and the sums are
        added (every rank calls this at the same point and gets the same answer).
        """
        finite = all(bool(torch.isfinite(p).all()) for p in self.model.parameters())
        if not finite and not self.ranks.active:
            return False
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                             enabled=self.config.precision == "bf16"):
            generator = make_generator(self.device, mix_seed(self.config.seed, self.step, 5))
            x = self.batch(self.step)
            if self.ranks.active:
                rows = self.ranks.rows(len(x))
                terms = terms_with_noise(self.model, x[rows], global_noise(self.model, len(x), generator,
                                                                            self.device)[:, rows])
            else:
                terms, _ = self.model(x, generator=generator)
        if self.ranks.active:  # one answer for all: the sums, and whether any rank holds non-finite weights
            bound_sum, bad_ranks = sum_over_ranks([float(terms.bound.float().sum()), float(not finite)],
                                                  self.ranks, self.device)
            loss = bound_sum / len(x) if bad_ranks == 0 else math.nan
        else:
            loss = float(terms.bound.float().mean())
        return math.isfinite(loss) and loss <= self.guard.limit()

    def save(self, path: str | Path | None = None, wall_time: float = 0.0) -> Path:
        """Write a checkpoint of the current state (default: ``out``).

        Raises
        ------
        DivergedError
            The current state gives a non-finite or exploded loss (nothing is written).
        """
        path = Path(path) if path else self.out
        if path is None:
            raise DrawStudioError("no checkpoint path: pass --out FILE")
        if not self.state_is_good():
            raise DivergedError(f"not saved: the weights at step {self.step} give a non-finite or exploding loss "
                                f"(diverged); {self._last_good()}")
        return self._write(path, wall_time)

    def _write(self, path: Path, wall_time: float) -> Path:
        extra = {"wall_time": float(wall_time), "valid_bound": float(self.last_bound),
                 "torch_rng": torch.get_rng_state(), "dataset": self.config.dataset,
                 "train_images": int(len(self.train_set)), "steps_per_epoch": int(self.steps_per_epoch),
                 "train_fingerprint": self.fingerprint, "run_id": self.run_id, "lineage": self.lineage,
                 "world_size": self.ranks.world_size, "global_batch": int(self.config.batch_size),
                 "device_type": self.device.type, "cuda_graphs": self.graphs_record}
        if self.ranks.is_main:  # with several ranks, rank 0 alone writes (all hold the same state)
            save_checkpoint(path, self.model, self.config, self.optimizer, self.step, extra)
        return path

    def _last_good(self) -> str:
        """Where the last good state is, for messages."""
        if self._on_disk is not None:
            path, step = self._on_disk
            return f"the last good checkpoint {path} (step {step}) is untouched"
        if self.out is not None and self.out.exists():
            return f"no checkpoint was written by this run ({self.out} is untouched)"
        return "no checkpoint was written"

    def _checkpoint(self, started: float, checked: bool = False) -> Report:
        """Write the periodic or final checkpoint from a good state (else fall back: a "nonfinite" report)."""
        if not checked and not self.state_is_good():
            why = f"the weights due for the checkpoint at step {self.step} give a non-finite or exploding loss"
            self._fall_back(why)
            return self._report("nonfinite", started, message=f"{why}: checkpoint not written, last good state "
                                f"(step {self._good_step}) restored")
        log = self._log
        if log is not None and not log.pending:
            self._or_stop(log.flush)  # the log on disk reaches the checkpoint's step before the checkpoint does
        path = self._or_stop(self._write, self.out, self._wall(started))  # e.g. a full disk: say what is safe
        self._saved_step = self.step
        self._on_disk = (path, self.step)
        self._good_state, self._good_step = self._snapshot(), self.step
        self.guard.checkpoint_written()
        if log is not None and log.pending:
            self._or_stop(log.commit)  # a new run's log moves in with its first checkpoint
        return self._report("checkpoint", started, path=str(path))

    def _fall_back(self, why: str) -> None:
        """Restore the last good state; stop with DivergedError after too many restores."""
        self._restore(self._good_state)
        if self.guard.restored():
            raise DivergedError(
                f"training diverged at step {self.step}: {why}, and the last good state (step {self._good_step}) "
                f"was restored {self.guard.restores} times without recovering; {self._last_good()}. Lower --lr "
                f"(now {self.optimizer.param_groups[0]['lr']:.3g}) or --grad-clip and continue "
                "from it")
