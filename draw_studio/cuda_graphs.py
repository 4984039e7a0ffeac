"""A whole training step of the fast path as one CUDA graph (``--cuda-graphs``; experimental, unmeasured).

A CUDA graph replays a recorded sequence of kernels with one launch, so the ~2 x T x (a few dozen) kernels of a
fast-path step cost no Python or launch time. It needs a step that reads and writes the same memory every time
and never waits for the host. :class:`GraphedStep` is such a step, built from static buffers:

* inputs: the batch ``x`` (batch, C, H, W), the noise eps_t (T, batch, Z), the explosion limit and a "skip" flag,
  filled before each step outside the graph (the batch is gathered and binarised, and the noise drawn from the
  step's own generator, exactly as the eager step does: the same numbers);
* the step: ``handwritten_step.fast_backward`` with resources of its own (workspace, grid constants, scalars:
  nothing made or freed between steps), gradient-norm clipping, a device flag ``good`` (loss and gradient norm
  finite, loss below the limit) given to a fused, capturable Adam as ``found_inf`` (a bad step changes nothing,
  decided on the device), the learning rate a device tensor filled before each step;
* outputs: (loss, L_x, L_z, good) and the per-image terms, read by the caller when it likes (with each report).

On the CPU (and in the tests) the same step runs without capture, eagerly, step for step the numbers of
``Trainer.train_step``. On CUDA the first step warms up on a side stream (twice, with the update skipped),
captures the step on that stream, replays it once with the update skipped and compares its loss terms and
gradients with those of the last warm-up pass, the same step without capture on the same batch and noise
(``handwritten_step.pass_difference``: float32 tolerance; when the fast path compiles, the first warm-up pass
also checks the compiled pass against the eager one); then it replays for real. A failed capture or a
difference raises :class:`GraphsFailed` (the caller warns in one line and trains eagerly from then on; the
weights and Adam state are those before the attempt).

:class:`StaticAdam` keeps the optimiser's memory where the graph recorded it: its state tensors stay the same
objects (a restore of the last good state copies into them), and what it saves (checkpoints, good states)
is the plain Adam's settings, so a checkpoint resumes anywhere, with or without graphs.

With several processes graphs are not used: the step's all-reduce (and its flags) sit between the backward and
the optimiser step, outside any graph; ``--cuda-graphs on`` is refused there in one line.
"""

from __future__ import annotations

import math

import torch

from .errors import DrawStudioError
from .handwritten_step import PassResources, fast_backward, pass_difference
from .model import DRAW, LossTerms

MODES = ("auto", "on", "off")
AUTO_USES_GRAPHS = False  # True once the path has been measured on a GPU (scripts/gpu-check.sh)
WARMUP_PASSES = 2  # eager passes on the capture stream before capturing (the first may compile the fast path)


class GraphsFailed(RuntimeError):
    """The graph could not be captured, or its step differs from the eager one; the message says which."""


def graphs_wanted(mode: str, device: torch.device, *, processes: int = 1, fast: bool = True,
                  precision: str = "fp32") -> bool:
    """Whether ``--cuda-graphs MODE`` trains with :class:`GraphedStep`.

    ``auto``: off for now (:data:`AUTO_USES_GRAPHS`: the capture has never run on a GPU, so nobody is given an
    unmeasured path without asking; once measured, auto means on for one process on CUDA with the fast path in
    fp32, else off, silently); ``on``: one process on CUDA with the fast fp32 path, anything else refused;
    ``off``: never.

    Raises
    ------
    DrawStudioError
        ``on`` without a CUDA device, with several processes, ``--plain`` or ``--precision bf16``.
    """
    if mode not in MODES:
        raise DrawStudioError(f"--cuda-graphs {mode!r} is not one of {', '.join(MODES)}")
    if mode == "off":
        return False
    problem = None
    if processes > 1:
        problem = (f"--cuda-graphs on needs one process (the step's all-reduce between the backward and Adam is "
                   f"not captured), this run has {processes}: drop --cuda-graphs")
    elif device.type != "cuda":
        problem = (f"--cuda-graphs on needs a CUDA GPU; this run trains on {device.type}: drop --cuda-graphs")
    elif not fast or precision != "fp32":
        problem = ("--cuda-graphs on needs the fast path in fp32 (it captures the hand-written step): drop "
                   "--cuda-graphs, --plain or --precision bf16")
    if problem and mode == "on":
        raise DrawStudioError(problem)
    return problem is None and (mode == "on" or AUTO_USES_GRAPHS)


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Set every group's learning rate; a tensor learning rate (a graph reads it) is filled in place."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(value)  # no host synchronisation
        else:
            group["lr"] = value


class StaticAdam:
    """Keeps an Adam fit for a CUDA graph while training, and saves it as the plain Adam it was.

    Every group is made fused (it skips an update on the device from ``found_inf``) and, with ``capturable``,
    capturable with its learning rate a device tensor; the ``step`` counters go to the device. ``state_dict()``
    then gives the groups' original settings (learning rate a float), and ``load_state_dict`` (a restore of the
    last good state) copies the loaded values into the state tensors the graph reads, once :meth:`pin` has
    named them.

    Parameters
    ----------
    optimizer : torch.optim.Adam
    capturable : bool
        Whether a graph will capture its step (CUDA).
    """

    KEYS = ("fused", "foreach", "capturable")

    def __init__(self, optimizer: torch.optim.Optimizer, capturable: bool) -> None:
        if type(optimizer) is not torch.optim.Adam:
            raise DrawStudioError(f"CUDA graphs train with Adam, not {type(optimizer).__name__}; use --cuda-graphs off")
        self.optimizer, self.capturable = optimizer, capturable
        self.original = [{key: group.get(key) for key in self.KEYS} for group in optimizer.param_groups]
        self.lrs: list[torch.Tensor | None] = [None] * len(optimizer.param_groups)
        self.pinned: dict[torch.Tensor, dict[str, torch.Tensor]] | None = None
        self._hooks = [optimizer.register_state_dict_post_hook(self._portable),
                       optimizer.register_load_state_dict_post_hook(lambda _: self._adopt())]
        self._adopt()

    def _adopt(self) -> None:
        """Set the groups for the graph and put the state where the graph reads it."""
        for index, group in enumerate(self.optimizer.param_groups):
            group.update(fused=True, foreach=None, capturable=self.capturable)
            device = group["params"][0].device
            if self.capturable and device.type == "cuda":
                if self.lrs[index] is None:
                    self.lrs[index] = torch.tensor(float(group["lr"]), device=device)
                else:
                    self.lrs[index].fill_(float(group["lr"]))
                group["lr"] = self.lrs[index]
            elif isinstance(group["lr"], torch.Tensor):
                group["lr"] = float(group["lr"])
            for param in group["params"]:
                state = self.optimizer.state.get(param)
                kept = (self.pinned or {}).get(param, {})
                if not state:  # a state from before the first step: a fresh Adam's zeros, where the graph reads
                    if kept:
                        self.optimizer.state[param] = {key: tensor.zero_() for key, tensor in kept.items()}
                    continue
                state["step"] = state["step"].to(device=param.device, dtype=torch.float32)  # as a fused Adam keeps it
                for key, tensor in kept.items():  # the loaded values into the tensors the graph reads
                    if key in state and state[key] is not tensor:
                        tensor.copy_(state[key])
                        state[key] = tensor

    def pin(self) -> None:
        """Name the state tensors the graph reads (after the first step made them): kept from now on."""
        self.pinned = {param: {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}
                      for param, state in self.optimizer.state.items()}

    def release(self) -> None:
        """No graph any more: the groups stay fused, no longer capturable, their learning rate a float."""
        self.capturable, self.pinned = False, None
        self._adopt()

    def close(self) -> None:
        """Give the optimiser back as it was built (hooks removed, settings restored)."""
        for hook in self._hooks:
            hook.remove()
        for group, original in zip(self.optimizer.param_groups, self.original):
            group.update(original)
            if isinstance(group["lr"], torch.Tensor):
                group["lr"] = float(group["lr"])
            if not (group["fused"] or group["capturable"]):  # the plain Adam keeps its step counters on the host
                for param in group["params"]:
                    state = self.optimizer.state.get(param)
                    if state and "step" in state:
                        state["step"] = state["step"].cpu()

    def _portable(self, optimizer, state_dict: dict) -> dict:
        """``state_dict()`` as the plain Adam would give it: the original settings, a float learning rate."""
        for group, original in zip(state_dict["param_groups"], self.original):
            group.update(original)
            if isinstance(group["lr"], torch.Tensor):
                group["lr"] = float(group["lr"])
        return state_dict


class GraphedStep:
    """One training step of the fast path on static buffers: captured as a CUDA graph, or run eagerly (CPU).

    Parameters
    ----------
    model : DRAW
        Trained in place (its parameters keep their memory).
    optimizer : torch.optim.Adam
        Made fit for the graph by a :class:`StaticAdam` (``close()`` gives it back).
    grad_clip : float
        Gradient-norm clipping, as the eager step.
    batch : int
        Images per step (the graph is for this one shape).
    capture : bool
        Capture a CUDA graph on the first call (CUDA only); False runs the same step eagerly every time.
    compile : bool, optional
        Passed to ``fast_backward`` (None: ``compile_wanted`` decides).
    """

    def __init__(self, model: DRAW, optimizer: torch.optim.Optimizer, grad_clip: float, batch: int, *,
                 capture: bool, compile: bool | None = None) -> None:
        cfg = model.config
        device = next(model.parameters()).device
        self.model, self.optimizer, self.grad_clip, self.compile = model, optimizer, grad_clip, compile
        self.params = list(model.parameters())
        self.capture = capture
        self.adam = StaticAdam(optimizer, capturable=capture)
        self.resources = PassResources()  # never cleared while the graph lives
        self.weight = 1.0 / batch
        self.x = torch.zeros(batch, cfg.channels, cfg.height, cfg.width, device=device)
        self.eps = torch.zeros(cfg.steps, batch, cfg.z_size, device=device)
        self.limit = torch.full((), math.inf, device=device)  # the explosion limit (DivergenceGuard.limit)
        self.skip = torch.zeros((), device=device)  # 1: compute everything, apply no update (warm-up, the check)
        self.found_inf = torch.zeros((), device=device)  # what the fused Adam reads: 1 skips the update
        self.outputs = torch.zeros(4, device=device)  # loss, L_x, L_z (means), 1 if the update was applied
        self.terms = torch.zeros(3, batch, device=device)  # L_x, L_z and log weight of each image
        self.graph = None
        self.check: str | None = None  # after the first captured step: "passed"

    # ------------------------------------------------------------------ the step
    def load(self, x: torch.Tensor, generator: torch.Generator | None, lr: float, limit: float) -> None:
        """Fill the static inputs of the next step: its batch (batch, C, H, W), its noise drawn from ``generator``
        as ``DRAW.forward`` draws it, the learning rate and the explosion limit (no host synchronisation)."""
        self.x.copy_(x)
        torch.randn(self.eps.shape, generator=generator, out=self.eps)  # (T, batch, Z)
        set_learning_rate(self.optimizer, lr)
        self.limit.fill_(limit)

    def _body(self) -> None:
        """The step itself, reading and writing only the static buffers, the weights and the Adam state."""
        self.optimizer.zero_grad(set_to_none=True)  # captured: the backward writes fresh gradients each replay
        terms = fast_backward(self.model, self.x, loss_weight=self.weight, compile=self.compile, eps=self.eps,
                              resources=self.resources)
        loss = terms.bound.mean()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        good = torch.isfinite(loss) & torch.isfinite(grad_norm) & (loss <= self.limit) & (self.skip == 0)
        self.found_inf.copy_(~good)
        self.optimizer.found_inf = self.found_inf
        try:
            self.optimizer.step()
        finally:
            del self.optimizer.found_inf
        self.outputs.copy_(torch.stack((loss, terms.nll_x.mean(), terms.kl.mean(), good.float())))
        self.terms.copy_(torch.stack((terms.nll_x, terms.kl, terms.log_weight)))  # (3, batch)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None, lr: float,
                 limit: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimiser step on batch ``x``; returns (loss, nll_x, kl) and whether it was applied, as tensors
        on the device (read them with the report).

        Raises
        ------
        GraphsFailed
            On the first call with ``capture``: the capture failed or differs from the eager step (nothing
            changed: train this step eagerly).
        """
        self.load(x, generator, lr, limit)
        if self.capture and self.graph is None:
            self.graph = self._capture_and_check()
        if self.graph is not None:
            self.graph.replay()
        else:
            self._body()
            if self.adam.pinned is None:
                self.adam.pin()  # as the graph would: restores copy into these tensors from now on
        out = self.outputs.clone()
        return out[0], out[1], out[2], out[3] > 0

    def last_terms(self) -> LossTerms:
        """The per-image loss terms of the last step (batch,) each."""
        return LossTerms(nll_x=self.terms[0], kl=self.terms[1], log_weight=self.terms[2])

    def close(self) -> None:
        """Drop the graph and give the optimiser back as it was."""
        self.graph = None
        self.adam.close()

    # ------------------------------------------------------------------ capture (CUDA)
    def _capture_and_check(self):
        """Warm up, capture, replay once with the update skipped and compare with the eager step; the graph."""
        before = self._state_copy()
        try:
            device = self.x.device
            stream = torch.cuda.Stream(device)
            stream.wait_stream(torch.cuda.current_stream(device))
            self.skip.fill_(1)
            with torch.cuda.stream(stream):  # the autograd tape and any compiling before capture, on its stream
                for _ in range(WARMUP_PASSES):
                    self._body()
            torch.cuda.current_stream(device).wait_stream(stream)
            eager = (self._copy(self.last_terms()), [None if p.grad is None else p.grad.clone() for p in self.params])
            self.adam.pin()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=stream):
                self._body()
            graph.replay()  # the update still skipped: the graph's loss terms and gradients
            problem = pass_difference(eager, (self.last_terms(), [p.grad for p in self.params]))
            if problem:
                raise GraphsFailed(f"the graphed step differs from the eager step on the same batch ({problem})")
            if not bool(self.outputs[3] == 0):  # the skip held: nothing was applied
                raise GraphsFailed("the graphed step applied an update it was told to skip")
        except Exception as exc:  # noqa: BLE001 - capture errors come from CUDA, inductor, autograd...: fall back
            self.graph = None
            self._restore(before)
            self.adam.release()
            self.skip.zero_()
            if isinstance(exc, GraphsFailed):
                raise
            raise GraphsFailed(f"capturing the step failed ({type(exc).__name__}: "
                               f"{(str(exc).strip().splitlines() or [''])[0][:200]})") from exc
        self.skip.zero_()
        self.check = "passed"
        return graph

    @staticmethod
    def _copy(terms: LossTerms) -> LossTerms:
        return LossTerms(*(value.clone() for value in terms))

    def _state_copy(self) -> dict:
        return {"weights": [p.detach().clone() for p in self.params],
                "adam": {p: {k: v.clone() for k, v in s.items() if isinstance(v, torch.Tensor)}
                         for p, s in self.optimizer.state.items()}}

    def _restore(self, copy: dict) -> None:
        """Put back the weights and Adam state of before the capture (whatever a failed graph did)."""
        with torch.no_grad():
            for param, value in zip(self.params, copy["weights"]):
                param.copy_(value)
            for param, state in self.optimizer.state.items():
                saved = copy["adam"].get(param)
                if saved is None:
                    state.clear()  # made by the warm-up: a fresh Adam makes it again at its first step
                    continue
                for key, value in saved.items():
                    state[key].copy_(value)
        for param in self.params:
            param.grad = None
