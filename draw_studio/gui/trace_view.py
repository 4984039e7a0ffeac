"""Small helpers to read what a trace holds for one image and one step (no Qt)."""

from __future__ import annotations

import numpy as np

from ..trace import Trace


def increment_scale(trace: Trace, image: int) -> float:
    """One colour scale for every increment of an image: the 99.5th percentile of |c_s - c_{s-1}|.

    A percentile rather than the maximum, so that one large step (often the
    first, which paints the background) does not leave the others black.
    """
    steps = np.abs(np.diff(trace.canvas[image], axis=0))  # (T, C, H, W)
    top = float(np.percentile(steps, 99.5)) if steps.size else 0.0
    return top if top > 0 and np.isfinite(top) else 1.0


def model_sizes(trace: Trace) -> tuple[int, int]:
    """(read N, write N) of the trace's model."""
    return int(trace.model_config.read_n), int(trace.model_config.write_n)
