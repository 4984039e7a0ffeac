"""Fork at step t: what is decided by step t.

A fork of image i at t keeps z_1..z_t of the trace (steps 0..t-1) and draws z_{t+1}..z_T from the
prior, K times: K continuations of the same beginning. The noise is one ``(T, K, Z)`` draw of
``torch.randn`` from ``make_generator(device, seed)`` (the draw ``DRAW.generate(K)`` makes);
continuation k takes row ``[s, k]`` at each step s >= t. So a fork at t = 0 is ``generate(K)``
with that generator, and every fork point uses the same noise (common random numbers).

The commitment curve: for every t = 0..T, the mean over pixels of the standard deviation (over the K
continuations, ddof = 1) of the final mean image sigmoid(c_T) of the fork at t: how much of the
final image is still open after step t. It is 0 at t = T (nothing left to draw).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import DrawStudioError
from ..model import DRAW, StepRecorder
from ..seeding import make_generator
from ..stepping import RunState
from ..trace import Trace
from .replay import GENERATION_FIELDS, ImageRun
from .result import ExploreResult

MAX_K = 4096
Progress = Callable[[int, int], None]  # (steps done, steps in all)


class _EveryKth(StepRecorder):
    """Records only rows 0, K, 2K...: the first continuation of each fork."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def add(self, **values: torch.Tensor) -> None:
        super().add(**{name: value[::self.k] for name, value in values.items()})


def check_k(k: int, least: int = 1) -> int:
    """``k`` if it is a usable number of continuations; else a DrawStudioError."""
    if not least <= int(k) <= MAX_K:
        raise DrawStudioError(f"-k must be between {least} and {MAX_K}, got {k}")
    return int(k)


def fork_noise(model: DRAW, k: int, seed: int) -> torch.Tensor:
    """The forks' noise (T, K, Z): the draw ``DRAW.generate(k)`` makes from ``make_generator(device, seed)``."""
    cfg = model.config
    device = next(model.parameters()).device
    return torch.randn((cfg.steps, k, cfg.z_size), generator=make_generator(device, seed), device=device)


def fork(model: DRAW, trace: Trace, image: int, at: int, k: int = 16, seed: int = 0,
         file_image: int | None = None) -> ExploreResult:
    """K continuations of image ``image`` that keep its z_1..z_at and draw the rest from the prior.

    Parameters
    ----------
    model : DRAW
        The trace's model.
    trace : Trace
    image : int
        Index of the image in ``trace``.
    at : int
        t = 0..T: how many of the trace's latents to keep (steps 0..at-1).
    k : int
        Number of continuations.
    seed : int
        Seed of the prior noise (module docstring).
    file_image : int, optional
        The image's index in the trace file, when ``trace`` holds only some images.

    Returns
    -------
    ExploreResult
        A generated trace of K samples (canvases c_0..c_T each; the first ``at`` steps are the
        original's) and the intervention ``at``, ``k``, ``seed``.
    """
    steps = model.config.steps
    if not 0 <= int(at) <= steps:
        raise DrawStudioError(f"--at {at} is out of range: a fork keeps t = 0..{steps} of the {steps} latents")
    k = check_k(k)
    run = ImageRun(model, trace, image, encoder=False, file_image=file_image)
    arrays = run.continue_from(int(at), eps=fork_noise(model, k, seed), rows=k, encoder=False)
    intervention = {"tool": "fork", **run.describe(), "at": int(at), "k": k, "seed": int(seed),
                    "kept_steps": f"0..{int(at) - 1}" if at else "none",
                    "noise": "torch.randn((T, K, Z)) from make_generator(device, seed); continuation k, step s >= at "
                             "takes row [s, k]"}
    return ExploreResult(run.trace_of(arrays, mode="generate", seed=seed, source="explore/fork"), intervention)


@torch.inference_mode()
def commitment_run(run: ImageRun, k: int, seed: int, progress: Progress | None = None,
                   ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Every fork t = 0..T of ``run``'s image with K continuations, in one growing batch.

    At step s the forks t <= s are running ((s+1) K rows); the fork at t = s joins from the
    replay's state before step s. Steps before a fork point are the replay's and are not run again.
    ``progress(s + 1, T)`` is called after each step s (the work of a step grows with s).

    Returns
    -------
    curve : Tensor, shape (T+1,)
    pixel_std : Tensor, shape (T+1, C, H, W)
        The per-pixel standard deviation behind each point of the curve.
    first : dict
        Trace fields of continuation 0 of each fork (T+1 rows): ``canvas`` (T+1, T+1, C, H, W), ...
    """
    model, steps = run.model, run.steps
    eps = fork_noise(model, k, seed)  # (T, K, Z)
    first = {name: value.expand(steps + 1, *value.shape[1:]).clone()
             for name, value in run.record.items() if name in GENERATION_FIELDS}
    state = None
    for s in range(steps):
        joining = run.states[s]
        joining = RunState(*(value[:, :0] if i < 2 else value for i, value in enumerate(joining)))  # no encoder
        joining = RunState(*(value.expand(k, *value.shape[1:]) for value in joining))
        state = joining if state is None else RunState(*(torch.cat(pair) for pair in zip(state, joining)))
        noise = eps[s].repeat(s + 1, 1)[None].expand(s + 1, -1, -1)  # row (t, k) of step s takes eps[s, k]
        recorder = _EveryKth(k)
        state = model.run_steps(state, s, s + 1, eps=noise, recorder=recorder).state
        for name, value in recorder.stacked().items():  # (s+1, 1, ...): forks 0..s, continuation 0
            first[name][:s + 1, s + (name == "canvas")] = value[:, 0]
        if progress is not None:
            progress(s + 1, steps)
    final = torch.cat((state.canvas, run.states[steps].canvas.expand(k, -1, -1, -1)))  # ((T+1) K, C, H, W)
    means = torch.sigmoid(final).view(steps + 1, k, *final.shape[1:])
    pixel_std = means.std(dim=1, unbiased=True)  # (T+1, C, H, W)
    return pixel_std.flatten(1).mean(1), pixel_std, first


def half_step(curve) -> int | None:
    """The first t whose commitment is below half its value at t = 0 (None if none is)."""
    values = [float(v) for v in curve]
    return next((t for t, value in enumerate(values) if value < values[0] / 2), None)


def commitment(model: DRAW, trace: Trace, image: int, k: int = 16, seed: int = 0,
               file_image: int | None = None, progress: Progress | None = None) -> ExploreResult:
    """The commitment curve of image ``image`` (module docstring), with the forks behind it.

    ``progress(done, total)``, if given, is called after each of the T steps of the growing batch
    (``done`` = 1..T, ``total`` = T; in the caller's thread).

    Returns
    -------
    ExploreResult
        A generated trace of T+1 samples, sample t being continuation 0 of the fork at t; root
        datasets ``commitment`` (T+1,) and ``commitment_pixel_std`` (T+1, C, H, W); the
        intervention ``k``, ``seed``, the ``curve`` and ``half_step``.
    """
    k = check_k(k, least=2)
    run = ImageRun(model, trace, image, encoder=False, file_image=file_image)
    curve, pixel_std, first = commitment_run(run, k, seed, progress)
    curve_values = curve.cpu().numpy()
    intervention = {"tool": "commitment", **run.describe(), "k": k, "seed": int(seed), "std_ddof": 1,
                    "curve": curve_values, "half_step": half_step(curve_values),
                    "samples": "sample t is continuation 0 of the fork at t (fork --at t -k K --seed SEED)"}
    datasets = {"commitment": (curve_values, ("fork_step",)),
                "commitment_pixel_std": (pixel_std.cpu().numpy(), ("fork_step", "channel", "y", "x"))}
    result_trace = run.trace_of(first, mode="generate", seed=seed, source="explore/commitment")
    return ExploreResult(result_trace, intervention, datasets)
