"""One training run on several processes started by ``torchrun``: the process group, the ranks, the devices,
and the one all-reduce of each step.

``torchrun --nproc-per-node=N -m draw_studio train ...`` starts N copies of the command with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous in the environment; :func:`setup` joins that group
(NCCL on CUDA, gloo on the CPU) and chooses each process's device (``cuda:LOCAL_RANK`` or the CPU).
Without those variables (or with ``WORLD_SIZE=1``) nothing is joined and a run is the one-process run
of today, bit for bit.

How a run stays one run (``draw_studio.train`` does this with the pieces here):

* ``--batch-size`` is the global batch: every rank builds the same global batch from the seed (order,
  dynamic binarisation) and the same global noise eps_t, and takes its rows (:meth:`Ranks.rows`), so the
  numbers do not depend on the number of ranks beyond float32 summation order;
* each rank differentiates ``sum over its images / global batch``, and :class:`StepReducer` adds the
  gradients of all ranks in one flattened all-reduce that also carries the loss sums, a count of ranks
  whose loss was not finite and a count of stop requests, so every rank skips, restores and stops at
  the same step and applies the same update (the same Adam on the same gradients);
* the plain autograd path (``--plain``, bf16) uses the same explicit all-reduce rather than
  ``DistributedDataParallel``: the fast path's backward bypasses autograd (DDP's hooks would never fire),
  one mechanism serves both paths, and the flags travel in the same call;
* the initial weights are broadcast from rank 0 (:func:`broadcast_weights`); validation is split by chunks
  across ranks and summed (:func:`sum_over_ranks`); rank 0 alone writes checkpoints, logs and snapshots
  and prints.
"""

from __future__ import annotations

import collections
import datetime
import os
from dataclasses import dataclass

import torch

from .device import resolve_device
from .errors import DrawStudioError
from .evaluate import evaluate_in_parts
from .handwritten_step import fast_backward
from .model import DRAW, LossTerms

ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK")  # what torchrun sets for each process
SCALARS = ("loss", "nll_x", "kl", "nonfinite", "stop")  # after the gradients in the all-reduced buffer


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in a run of several (one process: rank 0 of 1).

    Attributes
    ----------
    rank : int
        This process's place among all processes (0 writes the files).
    world_size : int
        Processes training the run.
    local_rank : int
        Its place among the processes of its machine (its GPU: ``cuda:local_rank``).
    backend : str or None
        ``"gloo"`` or ``"nccl"`` when a process group is joined.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def active(self) -> bool:
        """Whether several processes train (a process group is joined)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, logs and snapshots and prints reports (rank 0)."""
        return self.rank == 0

    def rows(self, batch: int) -> slice:
        """This rank's rows of a global batch of ``batch`` images (a multiple of ``world_size``)."""
        share = batch // self.world_size
        return slice(self.rank * share, (self.rank + 1) * share)

    def check_batch(self, batch: int, resumed: bool = False) -> None:
        """Raise ``DrawStudioError`` unless a global batch of ``batch`` images divides among the ranks."""
        if batch % self.world_size:
            fix = (f"resume on a number of processes that divides {batch}" if resumed
                   else f"pass a --batch-size that is a multiple of {self.world_size}")
            raise DrawStudioError(f"the global batch of {batch} images does not divide among {self.world_size} "
                                  f"processes; {fix}")

    def describe(self) -> str:
        """E.g. ``"rank 0 of 2 (gloo)"``; empty for one process."""
        return f"rank {self.rank} of {self.world_size} ({self.backend})" if self.active else ""


ONE_PROCESS = Ranks()


def _environment_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise DrawStudioError(f"the environment variable {name}={text!r} is not a whole number; "
                              "start several processes with torchrun, which sets it") from None
    if value < 0:
        raise DrawStudioError(f"the environment variable {name}={value} is negative; start several processes with "
                              "torchrun, which sets it")
    return value


def ranks_from_environment() -> Ranks:
    """The ranks torchrun gave this process (``ONE_PROCESS`` without them); joins nothing."""
    world = _environment_int("WORLD_SIZE", 1)
    if world <= 1:
        return ONE_PROCESS
    rank, local = _environment_int("RANK", 0), _environment_int("LOCAL_RANK", 0)
    if rank >= world:
        raise DrawStudioError(f"RANK={rank} is not below WORLD_SIZE={world}; start the processes with torchrun")
    return Ranks(rank, world, local)


def process_device(name: str, ranks: Ranks) -> torch.device:
    """This process's device: ``name`` for one process; with several, ``cuda:LOCAL_RANK`` for ``auto`` or
    ``cuda`` on a machine with CUDA, else the CPU.

    Raises
    ------
    DrawStudioError
        ``cuda:N`` or ``mps`` asked of several processes, or fewer GPUs than processes on this machine.
    """
    if not ranks.active:
        return resolve_device(name)
    name = (name or "auto").strip().lower()
    if name == "auto":  # MPS has no process-group backend: without CUDA, several processes train on the CPU
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if resolve_device(name).type == "cpu":  # an unknown or absent device: its message
        return torch.device("cpu")
    if name == "cuda":
        count = torch.cuda.device_count()
        if ranks.local_rank >= count:
            raise DrawStudioError(f"process {ranks.local_rank} of this machine would use cuda:{ranks.local_rank}, "
                                  f"but this machine has {count} GPU(s); start at most {count} processes per machine "
                                  "(torchrun --nproc-per-node)")
        return torch.device("cuda", ranks.local_rank)
    raise DrawStudioError(f"--device {name} cannot be shared by {ranks.world_size} processes: pass --device auto "
                          "or cuda (each process takes cuda:LOCAL_RANK) or cpu")


def setup(device_name: str = "auto", timeout_s: float | None = None) -> tuple[Ranks, torch.device]:
    """Join the process group torchrun describes in the environment (if any) and choose this process's device.

    Parameters
    ----------
    device_name : str
        ``--device``: ``auto``, ``cpu``, ``cuda``... (see :func:`process_device`).
    timeout_s : float, optional
        How long a collective waits for the other processes (PyTorch's default when None).

    Returns
    -------
    ranks : Ranks
        ``ONE_PROCESS`` without torchrun (or with one process): nothing is joined.
    device : torch.device
    """
    ranks = ranks_from_environment()
    device = process_device(device_name, ranks)
    if not ranks.active:
        return ranks, device
    import torch.distributed as dist

    if not dist.is_available():
        raise DrawStudioError("this PyTorch was built without torch.distributed; train with one process")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        options = {"timeout": datetime.timedelta(seconds=timeout_s)} if timeout_s else {}
        try:
            dist.init_process_group(backend, **options)
        except (RuntimeError, ValueError) as exc:
            raise DrawStudioError(f"could not join the {ranks.world_size} training processes ({backend}): "
                                  f"{str(exc).splitlines()[0][:200]}; check torchrun's --rdzv-endpoint and that every "
                                  "machine reaches it") from None
    return Ranks(dist.get_rank(), dist.get_world_size(), ranks.local_rank, backend), device


def teardown() -> None:
    """Leave the process group (if one was joined)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_weights(model: torch.nn.Module, ranks: Ranks) -> None:
    """Give every rank rank 0's weights and buffers (one flattened broadcast per dtype)."""
    if not ranks.active:
        return
    import torch.distributed as dist

    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for tensor in model.state_dict().values():
        by_dtype.setdefault(tensor.dtype, []).append(tensor)
    for tensors in by_dtype.values():
        flat = torch.cat([t.detach().reshape(-1) for t in tensors])
        dist.broadcast(flat, src=0)
        with torch.no_grad():
            for tensor, part in zip(tensors, flat.split([t.numel() for t in tensors])):
                tensor.copy_(part.view_as(tensor))


def sum_over_ranks(values: list[float], ranks: Ranks, device: torch.device) -> list[float]:
    """``values`` summed over every rank (float64; one all-reduce); as given for one process."""
    if not ranks.active:
        return list(values)
    import torch.distributed as dist

    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


class StepReducer:
    """The one all-reduce of a training step: every gradient, the loss sums and two flags in one flat buffer.

    Parameters
    ----------
    model : torch.nn.Module
        Its trainable parameters' ``.grad`` are summed over the ranks (each rank's gradient is that of
        the sum of its images' bounds divided by the global batch, so the sum is the global mean's).
    device : torch.device
    """

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.sizes = [p.numel() for p in self.params]
        self.flat = torch.zeros(sum(self.sizes) + len(SCALARS), device=device)  # reused every step
        self.views = list(self.flat[:-len(SCALARS)].split(self.sizes))

    def reduce(self, sums: torch.Tensor, nonfinite: torch.Tensor, stop: bool) -> torch.Tensor:
        """Sum the gradients over the ranks (each ``.grad`` becomes the sum) with this rank's scalars.

        Parameters
        ----------
        sums : Tensor, shape (3,)
            This rank's sums over its images of the bound, L_x and L_z.
        nonfinite : Tensor, shape ()
            1 when this rank's loss is not finite, else 0.
        stop : bool
            Whether this rank was asked to stop.

        Returns
        -------
        Tensor, shape (5,)
            Summed over the ranks, in the order of ``SCALARS``: the three sums, the number of ranks whose loss
            was not finite and the number asked to stop (on the device; read it once).
        """
        import torch.distributed as dist

        with torch.no_grad():
            for view, param in zip(self.views, self.params):
                if param.grad is None:  # the same parameters on every rank: none of them got a gradient
                    view.zero_()
                else:
                    view.copy_(param.grad.reshape(-1))
            scalars = self.flat[-len(SCALARS):]
            scalars[:3].copy_(sums.detach().float())
            scalars[3:4].copy_(nonfinite.detach().float().reshape(1))
            scalars[4].fill_(1.0 if stop else 0.0)
            dist.all_reduce(self.flat)
            for view, param in zip(self.views, self.params):
                if param.grad is not None:
                    param.grad = view.view_as(param)  # the summed gradient, without a copy
        return scalars.clone()


def global_noise(model: DRAW, batch: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """The noise eps_t of a pass over a global batch (T, batch, Z), drawn as ``DRAW.forward`` draws it."""
    cfg = model.config
    return torch.randn((cfg.steps, batch, cfg.z_size), generator=generator, device=device, dtype=torch.float32)


def terms_with_noise(model: DRAW, x: torch.Tensor, eps: torch.Tensor) -> LossTerms:
    """``DRAW.forward(x)``'s loss terms with the noise ``eps`` (T, batch, Z) given (a rank's rows of the global
    noise): the same numbers ``forward`` gives with that noise (it is the same ``run_steps``)."""
    model.check_images(x)
    run = model.run_steps(model.start_state(x.shape[0]), 0, model.config.steps, x=x, eps=eps)
    nll_x = model.nll(run.state.canvas, x)
    return LossTerms(nll_x=nll_x, kl=run.kl, log_weight=run.log_ratio - nll_x)


def share_of_step(model: DRAW, x: torch.Tensor, generator: torch.Generator | None, ranks: Ranks, *, fast: bool,
                  bf16: bool = False, compile: bool | None = None) -> LossTerms:
    """Forward and backward of this rank's rows of the global batch ``x`` (batch, C, H, W), with its rows of
    the global noise drawn from ``generator``.

    Each parameter's ``.grad`` gets the gradient of (sum of this rank's bounds) / (global batch): summed over
    the ranks (:class:`StepReducer`), the gradient of the global batch's mean bound.

    Parameters
    ----------
    fast : bool
        The hand-written fast path (``handwritten_step.fast_backward``); else autograd through the model's steps
        (under bf16 autocast with ``bf16``).

    Returns
    -------
    LossTerms
        This rank's terms, (batch / world_size,) each, in float32.
    """
    batch = x.shape[0]
    rows = ranks.rows(batch)
    eps = global_noise(model, batch, generator, x.device)[:, rows]  # (T, batch / ranks, Z)
    x = x[rows]
    if fast:
        return fast_backward(model, x, loss_weight=1.0 / batch, compile=compile, eps=eps)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        terms = terms_with_noise(model, x, eps)
    terms = LossTerms(nll_x=terms.nll_x.float(), kl=terms.kl.float(), log_weight=terms.log_weight.float())
    (terms.bound.sum() / batch).backward()
    return terms


def sharded_bound(model: DRAW, pixels: torch.Tensor, batch_size: int, seed: int, ranks: Ranks,
                  device: torch.device) -> float:
    """``evaluate(model, pixels, batch_size, seed).bound`` with the chunks shared among the ranks (each chunk
    with the noise it has in one process) and the sums added: the same number to float64 rounding."""
    parts = collections.deque(evaluate_in_parts(model, pixels, batch_size, seed,
                                                shard=(ranks.rank, ranks.world_size)), maxlen=1)
    totals = parts[0] if parts else {"bound": 0.0, "images": 0}  # the last yield holds this rank's sums
    bound, images = sum_over_ranks([totals["bound"], float(totals["images"])], ranks, device)
    return bound / images
