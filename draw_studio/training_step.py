"""What one training step takes and does: the batch of a step, the step itself (one process or a rank's share
with the step's all-reduce), validation; a part of :class:`~draw_studio.train.Trainer`.

Every random choice of step s (data order, dynamic binarisation, the noise eps_t) is drawn from generators
seeded by (seed, epoch) or (seed, s). With several ranks (``draw_studio.distributed``) every rank draws the
global batch and its noise and takes its rows, and one all-reduce per step gives all ranks the same
gradients, losses and decisions.
"""

from __future__ import annotations

import warnings

import torch

from .cuda_graphs import GraphedStep, GraphsFailed, graphs_wanted, set_learning_rate
from .data.binarize import dynamic_binarization
from .distributed import sharded_bound, share_of_step
from .errors import DrawStudioError
from .evaluate import evaluate
from .handwritten_step import compile_wanted, fast_backward
from .model import LossTerms
from .seeding import make_generator, mix_seed

STOP_READ_EVERY = 10  # with several ranks and deferred checks: the stop requests are read every this many steps


class StepTaker:
    """Mixin of :class:`~draw_studio.train.Trainer`: batches, steps, validation (its attributes are the Trainer's)."""

    cuda_graphs = False  # whether steps run as a CUDA graph (``_choose_graphs``)
    graphs_record = "off"  # what ran, for the checkpoint and the log: "on", "off" or why it fell back
    _graphed: GraphedStep | None = None
    _stops_pending: torch.Tensor | None = None  # several ranks, deferred checks: stop requests not yet read

    def _choose_graphs(self, mode: str) -> None:
        """Resolve ``--cuda-graphs`` (auto, on, off) for this run (``cuda_graphs.graphs_wanted``: ``on`` where graphs
        cannot run raises ``DrawStudioError``)."""
        self.cuda_graphs = graphs_wanted(mode, self.device, processes=self.ranks.world_size, fast=self.fast,
                                         precision=self.config.precision)
        self.graphs_record = "on" if self.cuda_graphs else "off"

    def use_graphed_step(self, capture: bool) -> None:
        """Train the following steps with a ``cuda_graphs.GraphedStep``: captured as a CUDA graph on its first step
        (``capture``; what ``--cuda-graphs`` chooses on CUDA), or the same static-buffer step run eagerly (the CPU:
        the numbers of the eager step, for tests). One process, the fast fp32 path."""
        if self.ranks.active or not self.fast or self.config.precision != "fp32":
            raise DrawStudioError("a graphed step needs one process and the fast path in fp32")
        self.graphs_record = "on" if capture else "off (the graph's static-buffer step, run without capture)"
        self._graphed = GraphedStep(self.model, self.optimizer, self.config.grad_clip, self.config.batch_size,
                                    capture=capture, compile=self.compile)
        self.cuda_graphs = True

    def _device_notices(self) -> list[str]:
        """What a run that goes on from a checkpoint on another device type or number of processes should say."""
        start, notices = self.start, []
        if start.device_type and start.device_type != self.device.type:
            notices.append(f"{start.checkpoint} was trained on {start.device_type}, this run goes on on "
                           f"{self.device.type}: their random streams (noise, binarisation) differ, so the steps "
                           "from here are not those an uninterrupted run would take (the same kind of steps)")
        if start.world_size and start.world_size != self.ranks.world_size:
            notices.append(f"{start.checkpoint} was trained by {start.world_size} process(es), this run by "
                           f"{self.ranks.world_size}: the global batch of {self.config.batch_size} and every "
                           "random draw stay the same, so the steps are the same to float32 rounding")
        return notices

    # ------------------------------------------------------------------ batches
    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """The order of the training images in ``epoch`` (on the device), drawn once per epoch."""
        if self._order is None or self._order[0] != epoch:
            order = torch.randperm(len(self.train_set), generator=make_generator(torch.device("cpu"),
                                                                                  mix_seed(self.config.seed, epoch, 1)))
            self._order = (epoch, order.to(self.device))  # one host-to-device copy per epoch, not per step
        return self._order[1]

    def batch(self, step: int) -> torch.Tensor:
        """The (global) training batch of optimiser step ``step`` (batch, C, H, W) in [0, 1]."""
        cfg = self.config
        epoch, position = divmod(step, self.steps_per_epoch)
        index = self._epoch_order(epoch)[position * cfg.batch_size:(position + 1) * cfg.batch_size]
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
        if self.ranks.active:  # each rank its share of the chunks (same noise per chunk), summed
            bound = sharded_bound(self.model, self.valid_pixels, 500, self.config.seed, self.ranks, self.device)
        else:
            bound = evaluate(self.model, self.valid_pixels, batch_size=500, seed=self.config.seed,
                             binarization=self.valid_binarization).bound
        self.model.train(was_training)
        self.last_bound = bound
        return bound

    # ------------------------------------------------------------------ loop
    def train_step(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
        """One optimiser step; returns (loss, nll_x, kl) as detached scalars and whether it was applied (with
        ``defer_checks``: a bool tensor on the device, read with the next report).

        The update is skipped when the loss or gradient norm is not finite or the loss exceeds
        ``guard.limit()`` (see ``draw_studio.divergence``). With several ranks the loss terms are the
        global batch's means and every rank takes the same decision (:meth:`_distributed_step`).
        """
        cfg = self.config
        x = self.batch(step)
        lr = self.learning_rate(step)
        if self.cuda_graphs:
            result = self._graphed_step(step, x, lr)
            if result is not None:
                return result
        set_learning_rate(self.optimizer, lr)
        generator = make_generator(self.device, mix_seed(cfg.seed, step, 4))
        self.optimizer.zero_grad(set_to_none=True)
        if self.ranks.active:
            return self._distributed_step(step, x, generator)
        if self.fast and cfg.precision == "fp32":
            terms = fast_backward(self.model, x, generator, compile=self.compile)
        else:  # autograd through DRAW.forward, under bf16 autocast when asked
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                terms, _ = self.model(x, generator=generator)
            terms = LossTerms(nll_x=terms.nll_x.float(), kl=terms.kl.float(), log_weight=terms.log_weight.float())
            terms.bound.mean().backward()
        loss = terms.bound.mean()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        good = torch.isfinite(loss) & torch.isfinite(grad_norm) & (loss <= self.guard.limit())
        if self.defer_checks:  # no host synchronisation: a fused Adam skips the update on the device
            self.optimizer.found_inf = (~good).float()
            try:
                self.optimizer.step()
            finally:
                del self.optimizer.found_inf
            return loss.detach(), terms.nll_x.mean().detach(), terms.kl.mean().detach(), good
        good = bool(good)
        if good:
            self.optimizer.step()
        return loss.detach(), terms.nll_x.mean().detach(), terms.kl.mean().detach(), good

    def _graphed_step(self, step: int, x: torch.Tensor, lr: float) -> tuple | None:
        """``train_step`` as a CUDA graph (``cuda_graphs.GraphedStep``: captured and checked on the first step);
        None when the graph failed (one warning; the run goes on with the eager step, and says so in the
        checkpoint and the log)."""
        if self._graphed is None:
            self.use_graphed_step(capture=self.device.type == "cuda")
        try:  # the noise of step s, drawn into the graph's buffer from the same generator as the eager step's
            result = self._graphed(x, make_generator(self.device, mix_seed(self.config.seed, step, 4)), lr,
                                   self.guard.limit())
            if self._graphed.check and self.graphs_record == "on":
                self.graphs_record = f"on (its first step, {step}, matched the eager step)"
                self._record_graphs()
            return result
        except GraphsFailed as exc:
            self._graphed.close()
            self._graphed, self.cuda_graphs = None, False
            self.graphs_record = f"off (fell back at step {step}: {exc})"
            self._record_graphs()
            warnings.warn(f"CUDA graphs off: {exc}; training goes on with the eager step", RuntimeWarning,
                          stacklevel=2)
            return None

    def _record_graphs(self) -> None:
        """Write what ran (``graphs_record``) into the log's attributes (checkpoints take it as they are written)."""
        log = getattr(self, "_log", None)
        if log is not None:
            log.attrs["cuda_graphs"] = self.graphs_record

    def _distributed_step(self, step: int, x: torch.Tensor, generator: torch.Generator
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool | torch.Tensor]:
        """``train_step`` on this rank's rows of the global batch ``x``, with the one all-reduce of the step.

        Every rank gets the same reduced numbers, so every rank takes the same decisions. With ``defer_checks``
        the update is skipped on the device (a fused Adam's ``found_inf``), the flag is returned as a tensor (read
        with the next report) and the stop requests are read every ``STOP_READ_EVERY`` steps, at the same steps
        on every rank: no host synchronisation in the other steps.
        """
        cfg, batch = self.config, x.shape[0]
        terms = share_of_step(self.model, x, generator, self.ranks, fast=self.fast and cfg.precision == "fp32",
                              bf16=cfg.precision == "bf16", compile=self.compile)
        sums = torch.stack((terms.bound.sum(), terms.nll_x.sum(), terms.kl.sum()))
        control = self._control
        reduced = self.reducer.reduce(sums, ~torch.isfinite(sums).all(), control is not None and control.stop_requested)
        loss, nll_x, kl = reduced[:3] / batch
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        if self.defer_checks:
            good = (reduced[3] == 0) & torch.isfinite(loss) & torch.isfinite(grad_norm) & (loss <= self.guard.limit())
            self.optimizer.found_inf = (~good).float()
            try:
                self.optimizer.step()
            finally:
                del self.optimizer.found_inf
            pending = self._stops_pending
            self._stops_pending = reduced[4] if pending is None else pending + reduced[4]
            if (step + 1) % STOP_READ_EVERY == 0:
                self._stop_agreed = self._stop_agreed or bool(self._stops_pending > 0)  # one read per k steps
                self._stops_pending = None
            return loss, nll_x, kl, good
        nonfinite, stops = reduced[3:].tolist()  # the same numbers on every rank: the same decisions
        self._stop_agreed = self._stop_agreed or stops > 0
        good = nonfinite == 0 and bool(torch.isfinite(loss) & torch.isfinite(grad_norm) & (loss <= self.guard.limit()))
        if good:
            self.optimizer.step()
        return loss, nll_x, kl, good

    def _compile_notice(self) -> str:
        """What the start report says when the first step will compile the fast path or capture a CUDA graph (and
        what the log records: ``cuda_graphs``)."""
        self._record_graphs()
        graphs = ("; CUDA graphs on (experimental): the first step is captured and checked against the eager step"
                  if self.cuda_graphs else "")
        return self._path_notice() + graphs

    def _path_notice(self) -> str:
        if self.config.precision == "bf16":
            return " (bf16 autocast, plain autograd path)"
        if not self.fast:
            return " (plain autograd path)"
        cfg = self.model.config
        probe = torch.empty(self.config.batch_size // self.ranks.world_size, cfg.channels, cfg.height, cfg.width,
                            device=self.device)
        if compile_wanted(self.model, probe, self.compile):
            return ("; the first step compiles the fast path (up to ~40 s the first time on this machine, "
                    "a few seconds later)")
        return ""
