"""Interpolate between two images in DRAW's latent space.

Each image's latents are its posterior means mu_1..mu_T along the mean path: the encoder reads the
image and every z_t is its own mean mu_t (no noise), so they depend on the image alone. The two
sequences are interpolated in ``count`` steps (alpha = 0, 1/(count-1), ..., 1), linearly and/or
spherically (per step t, on the Z-vectors mu_t), and decoded as generation with those z's. The
endpoints are the two images' mean-z generations exactly (alpha 0 and 1 give back mu itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np
import torch

from .. import SOFTWARE
from ..errors import DrawStudioError
from ..model import DRAW, StepRecorder
from ..stepping import StepControls
from ..trace import Trace
from .replay import GENERATION_FIELDS
from .result import ExploreResult

METHODS = ("linear", "spherical")


@torch.inference_mode()
def posterior_means(model: DRAW, images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """mu_1..mu_T (n, T, Z) of ``images`` (n, C, H, W) along the mean path (z_t = mu_t)."""
    device = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(images, dtype=np.float32), device=device)
    model.check_images(x)
    cfg = model.config
    recorder = StepRecorder()
    eps = torch.zeros(cfg.steps, len(x), cfg.z_size, device=device)  # z = mu + sigma * 0 = mu
    model.run_steps(model.start_state(len(x)), 0, cfg.steps, x=x, eps=eps, recorder=recorder)
    return recorder.stacked()["mu"]


def lerp(a: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """(1 - alpha) a + alpha b for each alpha: a, b (T, Z), alpha (m,) -> (m, T, Z)."""
    alpha = alpha[:, None, None]
    return (1 - alpha) * a + alpha * b


def slerp(a: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of each step's vector: a, b (T, Z), alpha (m,) -> (m, T, Z).

    sin((1 - alpha) w) / sin w a + sin(alpha w) / sin w b, w the angle between a_t and b_t; steps
    whose vectors are (anti)parallel or zero fall back to :func:`lerp`.
    """
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)  # (T,)
    omega = torch.arccos(cos.clamp(-1, 1))
    sin = torch.sin(omega)  # (T,)
    flat = sin.abs() < 1e-6
    safe = torch.where(flat, torch.ones_like(sin), sin)
    w = alpha[:, None]  # (m, 1)
    left = torch.sin((1 - w) * omega) / safe  # (m, T)
    right = torch.sin(w * omega) / safe
    spherical = left[..., None] * a + right[..., None] * b
    return torch.where(flat[None, :, None], lerp(a, b, alpha), spherical)


@torch.inference_mode()
def decode(model: DRAW, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """Generation with every latent given: z (n, T, Z) -> trace fields (canvas (n, T+1, C, H, W), ...)."""
    recorder = StepRecorder()
    start = model.start_state(len(z))
    recorder.add(canvas=start.canvas)
    model.run_steps(start, 0, model.config.steps, controls=StepControls(z=z), recorder=recorder)
    return recorder.stacked()


def interpolate(model: DRAW, first: np.ndarray, second: np.ndarray, count: int = 9,
                methods: Sequence[str] = METHODS, first_info: dict | None = None, second_info: dict | None = None,
                checkpoint_sha256: str = "") -> ExploreResult:
    """Decode ``count`` interpolations between two images' mean-path latents, per method.

    Parameters
    ----------
    model : DRAW
    first, second : ndarray, shape (C, H, W) or (1, C, H, W)
        The two images as the model sees them (binary for a Bernoulli model).
    count : int
        Points per method, alpha = 0..1 evenly (at least 2).
    methods : sequence of str
        ``"linear"`` and/or ``"spherical"``; rows of the trace are method by method.
    first_info, second_info : dict, optional
        Where the images came from, for the intervention.
    checkpoint_sha256 : str
        Recorded in the trace.

    Returns
    -------
    ExploreResult
        A generated trace of ``count * len(methods)`` samples and the intervention: ``from``,
        ``to``, ``methods``, ``alphas``.
    """
    if count < 2:
        raise DrawStudioError(f"--count must be at least 2 (the two endpoints), got {count}")
    unknown = [m for m in methods if m not in METHODS] or ([] if methods else ["none"])
    if unknown:
        raise DrawStudioError(f"unknown interpolation {unknown[0]!r}; use {' or '.join(METHODS)}")
    cfg = model.config
    pair = np.stack([np.asarray(image, dtype=np.float32).reshape(cfg.channels, cfg.height, cfg.width)
                     for image in (first, second)])
    mu = posterior_means(model, pair)  # (2, T, Z)
    alpha = torch.linspace(0, 1, count, device=mu.device)
    z = torch.cat([(lerp if method == "linear" else slerp)(mu[0], mu[1], alpha) for method in methods])
    arrays = {name: value.cpu().numpy() for name, value in decode(model, z).items() if name in GENERATION_FIELDS}
    trace = Trace(mode="generate", model_config=cfg, seed=0, checkpoint_sha256=checkpoint_sha256,
                  created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), software=SOFTWARE,
                  batch_size=len(z), source="explore/interpolate", **arrays)
    intervention = {"tool": "interpolate", "from": first_info or {}, "to": second_info or {}, "count": count,
                    "methods": list(methods), "alphas": alpha.cpu().numpy(),
                    "rows": f"method m, alpha j is sample m * {count} + j",
                    "z": "posterior means along the mean path (z_t = mu_t), interpolated per step"}
    return ExploreResult(trace, intervention)
