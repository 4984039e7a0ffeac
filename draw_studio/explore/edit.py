"""Edit a latent: set z_s[k] to a value and let DRAW draw steps s..T-1 again.

Steps before s are the replay's (their canvases c_0..c_s are untouched, bit for bit); the edited
z_s changes c_{s+1} onwards. What feeds the steps after s is a choice (``later``):

- ``"keep"`` (default): the trace's own z_{s+1}..z_T, so the decoder runs in generation mode with
  every latent imposed and the difference to the original is the edit's effect alone;
- ``"posterior"`` / ``"mean"`` (reconstructions only): the encoder reads the changed canvas and
  the later z's come from its posterior, sampled with the trace's own noise or at its mean.

For a reconstruction the encoder also runs alongside with ``"keep"``: the trace then shows the
glimpses of the edited canvas, and the posterior and KL the encoder gives for that history (z itself
imposed).
"""

from __future__ import annotations

import math

import torch

from ..errors import DrawStudioError
from ..model import DRAW
from ..stepping import StepControls
from ..trace import Trace
from .replay import ImageRun
from .result import ExploreResult

PRIOR_RANGE = 4.0  # an editor's natural range: +-4 standard deviations of the prior N(0, 1)


def check_step(step: int, steps: int, what: str = "--step") -> int:
    """``step`` if it is a step index 0..T-1; else a DrawStudioError."""
    if not 0 <= int(step) < steps:
        raise DrawStudioError(f"{what} {step} is out of range: the model draws in {steps} steps, indexed "
                              f"0..{steps - 1} (the paper's t = step + 1)")
    return int(step)


def check_latent(latent: int, size: int) -> int:
    """``latent`` if it indexes z (0..Z-1); else a DrawStudioError."""
    if not 0 <= int(latent) < size:
        raise DrawStudioError(f"--latent {latent} is out of range: z has {size} entries (0..{size - 1})")
    return int(latent)


class LatentEditor:
    """Repeated edits of one image's latents, each re-running only the steps from the edited one.

    Parameters
    ----------
    model : DRAW
    trace : Trace
    image : int
        Index of the image in ``trace``.
    file_image : int, optional
        Its index in the trace file when ``trace`` holds only some images.
    """

    def __init__(self, model: DRAW, trace: Trace, image: int, file_image: int | None = None) -> None:
        self.run = ImageRun(model, trace, image, file_image=file_image)

    def edited_z(self, step: int, latent: int, value: float) -> torch.Tensor:
        """The trace's z (1, T, Z) with z_step[latent] = value."""
        cfg = self.run.model.config
        step, latent = check_step(step, cfg.steps), check_latent(latent, cfg.z_size)
        if not math.isfinite(float(value)):
            raise DrawStudioError(f"--value must be a finite number, got {value}")
        z = self.run.z.clone()
        z[0, step, latent] = float(value)
        return z

    def regenerate(self, step: int, latent: int, value: float) -> dict[str, torch.Tensor]:
        """The live path (a slider): steps ``step``..T-1 again in generation mode, every other z the trace's.

        Returns
        -------
        dict
            ``canvas`` (1, T+1, C, H, W), ``z`` (1, T, Z) and with write attention ``write_params``
            (1, T, 5) and ``write_patch``.
        """
        return self.run.continue_from(step, StepControls(z=self.edited_z(step, latent, value)), encoder=False)

    def edit(self, step: int, latent: int, value: float, later: str = "keep") -> ExploreResult:
        """The edit as a one-image trace with its ``intervention`` (see the module docstring)."""
        run = self.run
        z = self.edited_z(step, latent, value)
        mask, eps = run.controls_after(step + 1, later)
        arrays = run.continue_from(step, StepControls(z=z, z_mask=mask), eps=eps)
        intervention = {"tool": "edit-latent", **run.describe(), "step": step, "paper_step": step + 1,
                        "latent": latent, "old_value": float(run.z[0, step, latent]), "new_value": float(value),
                        "later": later, "encoder": run.encoder}
        if run.reconstruction:
            intervention.update(posterior_mu=float(run.trace.mu[run.image, step, latent]),
                                posterior_sigma=float(run.trace.sigma[run.image, step, latent]))
        if run.encoder:
            intervention.update(bound_before=float(run.bound[0]), bound_after=float(arrays["bound"][0]))
        return ExploreResult(run.trace_of(arrays), intervention)


def edit_latent(model: DRAW, trace: Trace, image: int, step: int, latent: int, value: float, later: str = "keep",
                file_image: int | None = None) -> ExploreResult:
    """Set z_step[latent] of image ``image`` to ``value`` and draw steps ``step``..T-1 again.

    Parameters
    ----------
    model : DRAW
        The trace's model.
    trace : Trace
    image : int
        Index of the image in ``trace``.
    step : int
        0..T-1, as in traces (the paper's t = step + 1): ``canvas[step + 1]`` is the first to change.
    latent : int
        0..Z-1.
    value : float
        The new z_step[latent] (the prior is N(0, 1): +-4 covers it).
    later : str
        ``"keep"``, ``"posterior"`` or ``"mean"`` (module docstring).
    file_image : int, optional
        The image's index in the trace file, when ``trace`` holds only some images.

    Returns
    -------
    ExploreResult
        A one-image trace (the source's mode) and the intervention: ``step``, ``latent``,
        ``old_value``, ``new_value``, ``later``, and for a reconstruction the posterior's
        ``posterior_mu`` / ``posterior_sigma`` there and ``bound_before`` / ``bound_after``.
    """
    return LatentEditor(model, trace, image, file_image).edit(step, latent, value, later)
