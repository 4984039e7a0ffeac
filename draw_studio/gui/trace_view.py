"""Small helpers to read what a trace holds for one image and one step (no Qt)."""

from __future__ import annotations

import numpy as np

from ..trace import Trace


def sigmoid(values: np.ndarray) -> np.ndarray:
    """Logistic function in float32 (the canvas' mean image)."""
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(values, dtype=np.float32)))).astype(np.float32)


def canvas_image(trace: Trace, image: int, step: int) -> np.ndarray:
    """sigmoid(c_step) of one image, (C, H, W) float32; step 0..T."""
    return sigmoid(trace.canvas[image, step])


def increment(trace: Trace, image: int, step: int) -> np.ndarray | None:
    """What step ``step`` (1..T) wrote, c_step - c_{step-1}, (C, H, W); None at step 0."""
    if step < 1:
        return None
    return trace.canvas[image, step] - trace.canvas[image, step - 1]


def increment_scale(trace: Trace, image: int) -> float:
    """One colour scale for every increment of an image: the 99.5th percentile of |c_s - c_{s-1}|.

    A percentile rather than the maximum, so that one large step (often the
    first, which paints the background) does not leave the others black.
    """
    steps = np.abs(np.diff(trace.canvas[image], axis=0))  # (T, C, H, W)
    top = float(np.percentile(steps, 99.5)) if steps.size else 0.0
    return top if top > 0 and np.isfinite(top) else 1.0


def images_of(trace: Trace, step: int | None = None) -> np.ndarray:
    """Mean images of every image of the trace at ``step`` (default T), (n, C, H, W)."""
    return sigmoid(trace.canvas[:, trace.steps if step is None else step])


def model_sizes(trace: Trace) -> tuple[int, int]:
    """(read N, write N) of the trace's model."""
    return int(trace.model_config.read_n), int(trace.model_config.write_n)
