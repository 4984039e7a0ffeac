"""Move a window: override the write (and for a reconstruction the read) attention of step s.

Steps s..T-1 run again with that step's window parameters replaced (``gx, gy, delta, sigma2,
gamma``, the trace's 1-based pixel units; any subset). The write window of step s shapes what step
s adds (``canvas[s + 1]`` onwards); the read window of step s changes what the encoder reads at
step s, hence z_s and every later step.

For a reconstruction the encoder then reads the changed error image, and the later z's come from
its posterior (``later="posterior"``, the default: sampled with the trace's own noise, so that
nothing but the window differs from the original run; ``"mean"``: the posterior mean; ``"keep"``:
the trace's own z's). The result reports the change of the bound and of each step's KL. A
generated trace has no encoder: its later z's are kept, and only the canvas moves.
"""

from __future__ import annotations

import math

import torch

from ..attention import PARAM_COLUMNS
from ..errors import DrawStudioError
from ..model import DRAW
from ..stepping import StepControls
from ..trace import Trace
from .edit import check_step
from .replay import ImageRun
from .result import ExploreResult

ALIASES = {"sigma^2": "sigma2", "sigma_2": "sigma2", "sigma²": "sigma2"}
POSITIVE = ("delta", "sigma2", "gamma")


def parse_window(text: str, what: str = "--write") -> dict[str, float]:
    """``"gx=14,gy=9"`` -> {"gx": 14.0, "gy": 9.0}: the parameters to override.

    Names are ``gx, gy, delta, sigma2`` (also ``sigma^2``) and ``gamma``; values finite, and
    positive for ``delta``, ``sigma2`` and ``gamma``.

    Raises
    ------
    DrawStudioError
        One line naming the bad entry.
    """
    values: dict[str, float] = {}
    for part in (piece.strip() for piece in str(text).split(",")):
        name, sep, number = part.partition("=")
        name = ALIASES.get(name.strip().lower(), name.strip().lower())
        if not sep or name not in PARAM_COLUMNS:
            raise DrawStudioError(f"{what} {text!r}: {part!r} is not NAME=VALUE with NAME one of "
                                  f"{', '.join(PARAM_COLUMNS)}; write e.g. gx=14,gy=9")
        try:
            value = float(number)
        except ValueError:
            raise DrawStudioError(f"{what} {text!r}: {number.strip()!r} is not a number") from None
        if not math.isfinite(value) or (name in POSITIVE and value <= 0):
            kind = "a positive" if name in POSITIVE else "a finite"
            raise DrawStudioError(f"{what} {text!r}: {name} must be {kind} number, got {number.strip()}")
        if name in values:
            raise DrawStudioError(f"{what} {text!r}: {name} is given twice")
        values[name] = value
    return values


def _window(values: dict[str, float] | None, step: int, steps: int, device) -> torch.Tensor | None:
    """(1, T, 5) of NaN but the given parameters at ``step``; None when nothing is given."""
    if not values:
        return None
    window = torch.full((1, steps, len(PARAM_COLUMNS)), math.nan, device=device)
    for name, value in values.items():
        window[0, step, PARAM_COLUMNS.index(name)] = value
    return window


class WindowMover:
    """Repeated moves of one image's windows, each running only steps s..T-1 again.

    The replay of the image (:class:`~draw_studio.explore.replay.ImageRun`, with the encoder for a
    reconstruction) is kept between calls, so a dragged window costs one pass over steps s..T-1
    (encoder and decoder together where the trace is a reconstruction), not a replay of the
    steps before it as well. :func:`move_window` is one call of :meth:`move`.

    Parameters
    ----------
    model : DRAW
        The trace's model.
    trace : Trace
    image : int
        Index of the image in ``trace``.
    file_image : int, optional
        Its index in the trace file when ``trace`` holds only some images.
    """

    def __init__(self, model: DRAW, trace: Trace, image: int, file_image: int | None = None) -> None:
        self.run = ImageRun(model, trace, image, file_image=file_image)

    def _check(self, step: int, write: dict[str, float] | None, read: dict[str, float] | None) -> int:
        if not write and not read:
            raise DrawStudioError("nothing to move: give --write and/or --read, e.g. --write gx=14,gy=9")
        cfg = self.run.model.config
        step = check_step(step, cfg.steps)
        if write and not cfg.write_attention:
            raise DrawStudioError("this model writes without attention (eq 18): it has no write window to move")
        if read and not cfg.read_attention:
            raise DrawStudioError("this model reads without attention (eq 17): it has no read window to move")
        if read and not self.run.reconstruction:
            raise DrawStudioError("a generated trace has no read window (the encoder never ran); move --write only")
        return step

    def regenerate(self, step: int, write: dict[str, float] | None = None, read: dict[str, float] | None = None,
                   later: str | None = None) -> dict[str, torch.Tensor]:
        """Steps ``step``..T-1 again with the windows of ``step`` overridden (arguments as :func:`move_window`).

        Returns
        -------
        dict
            Trace fields of the moved run as tensors of one row (``canvas`` (1, T+1, C, H, W),
            ``write_params`` (1, T, 5)...), with ``kl``, ``nll_x`` and ``bound`` for a reconstruction.
        """
        step = self._check(step, write, read)
        run = self.run
        later = later or ("posterior" if run.reconstruction else "keep")
        mask, eps = run.controls_after(step, later)
        controls = StepControls(z=run.z, z_mask=mask, read_window=_window(read, step, run.steps, run.device),
                                write_window=_window(write, step, run.steps, run.device))
        return run.continue_from(step, controls, eps=eps)

    def move(self, step: int, write: dict[str, float] | None = None, read: dict[str, float] | None = None,
             later: str | None = None) -> ExploreResult:
        """:meth:`regenerate` as a one-image trace with its ``intervention`` (see :func:`move_window`)."""
        run, step = self.run, self._check(step, write, read)
        later = later or ("posterior" if run.reconstruction else "keep")
        arrays = self.regenerate(step, write, read, later)
        intervention = {"tool": "move-window", **run.describe(), "step": step, "paper_step": step + 1,
                        "later": later, "columns": list(PARAM_COLUMNS)}
        for head, values in (("write", write), ("read", read)):
            if values:
                intervention[head] = {"set": values, "old": run.record[f"{head}_params"][0, step].cpu().numpy(),
                                      "new": arrays[f"{head}_params"][0, step].cpu().numpy()}
        if run.encoder:
            before, after = run.record["kl"][0].cpu().numpy(), arrays["kl"][0].cpu().numpy()  # (T,) each
            intervention.update(bound_before=float(run.bound[0]), bound_after=float(arrays["bound"][0]),
                                kl_before=before, kl_after=after, kl_change=after - before)
        return ExploreResult(run.trace_of(arrays), intervention)


def move_window(model: DRAW, trace: Trace, image: int, step: int, write: dict[str, float] | None = None,
                read: dict[str, float] | None = None, later: str | None = None,
                file_image: int | None = None) -> ExploreResult:
    """Override the attention window(s) of step ``step`` of image ``image`` and run steps ``step``..T-1 again.

    Parameters
    ----------
    model : DRAW
        The trace's model.
    trace : Trace
    image : int
        Index of the image in ``trace``.
    step : int
        0..T-1, as in traces (the paper's t = step + 1).
    write, read : dict, optional
        Parameters to override (see :func:`parse_window`); at least one of the two.
    later : str, optional
        ``"posterior"`` (default for a reconstruction), ``"mean"`` or ``"keep"`` (the only choice,
        and the default, for a generated trace).
    file_image : int, optional
        The image's index in the trace file, when ``trace`` holds only some images.

    Returns
    -------
    ExploreResult
        A one-image trace and the intervention: per head the ``old`` and ``new`` parameters and the
        values ``set``; for a reconstruction ``bound_before``, ``bound_after``, ``kl_before``,
        ``kl_after`` (per step) and ``kl_change``.
    """
    if not write and not read:
        raise DrawStudioError("nothing to move: give --write and/or --read, e.g. --write gx=14,gy=9")
    return WindowMover(model, trace, image, file_image=file_image).move(step, write, read, later)
