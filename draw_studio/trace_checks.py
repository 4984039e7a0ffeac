"""Checks of a trace: datasets whose shapes fit together, and non-finite values.

Every dataset of a trace file must have the shape its model settings give
(``shared/spec/trace-format.md``): n images, T steps, the model's channels,
image size, grid sizes and latent size. A file whose shapes disagree is
refused (:func:`layout_problem`), so that nothing downstream (the window,
``export``) ever indexes past an array.

A trace recorded from a diverged model holds NaN or infinite values. Such a
trace opens: :func:`displayable` gives the copy that the window shows, in
which every non-finite value is 0 (the canvas then shows mid-grey) and the
attention parameters of every step with a non-finite parameter are all NaN,
so that no window is drawn for that step (:func:`finite_window`, which also
skips windows with parameters beyond a million pixels; ``export`` draws no
such window either).
"""

from __future__ import annotations

import dataclasses

import numpy as np

PARAMS = 5  # gx, gy, delta, sigma2, gamma
FLOAT_FIELDS = ("input", "canvas", "read_params", "read_glimpse", "write_params", "write_patch", "z", "mu",
                "sigma", "kl", "nll_x")


def expected_shapes(config, n: int, steps: int) -> dict[str, tuple[int, ...]]:
    """The shape of every trace field for ``n`` images of a model with settings ``config`` run ``steps`` steps."""
    c, h, w, z = config.channels, config.height, config.width, config.z_size
    return {
        "input": (n, c, h, w), "labels": (n,), "source_index": (n,), "canvas": (n, steps + 1, c, h, w),
        "read_params": (n, steps, PARAMS), "read_glimpse": (n, steps, 2 * c, config.read_n, config.read_n),
        "write_params": (n, steps, PARAMS), "write_patch": (n, steps, c, config.write_n, config.write_n),
        "z": (n, steps, z), "mu": (n, steps, z), "sigma": (n, steps, z), "kl": (n, steps), "nll_x": (n,),
    }


def layout_problem(shapes: dict[str, tuple[int, ...]], kinds: dict[str, str], config,
                   where: dict[str, str] | None = None) -> str | None:
    """Why datasets of these ``shapes`` (and numpy dtype ``kinds``) are not a trace of ``config``, or None.

    Parameters
    ----------
    shapes, kinds : dict
        By trace field name (``canvas``, ``read_params``...): the dataset's shape and ``dtype.kind``.
    config : ModelConfig
    where : dict, optional
        The dataset's path in the file by field name, for the message (default: the field name).
    """
    where = where or {}
    canvas = shapes.get("canvas")
    if canvas is None or "z" not in shapes:
        return "canvas or latent/z missing"
    if len(canvas) != 5 or canvas[0] < 1:
        return f"canvas has shape {canvas}, expected (images >= 1, T + 1, C, H, W)"
    if canvas[1] != config.steps + 1:
        return f"canvas holds {canvas[1]} states but the model draws in {config.steps} steps ({config.steps + 1})"
    wanted = expected_shapes(config, canvas[0], config.steps)
    for name, shape in shapes.items():
        if tuple(shape) != wanted[name]:
            return (f"{where.get(name, name)} has shape {tuple(shape)}, expected {wanted[name]} for this model "
                    f"and {canvas[0]} images")
        if kinds.get(name, "f") not in "fiu":
            return f"{where.get(name, name)} holds {kinds[name]!r} values, not numbers"
    return None


def nonfinite_fields(trace) -> list[str]:
    """Names of the trace's arrays that hold NaN or infinite values."""
    return [name for name in FLOAT_FIELDS
            if (value := getattr(trace, name, None)) is not None and not np.isfinite(value).all()]


def displayable(trace):
    """``trace`` itself when all its values are finite, else a copy the window can draw (module docstring)."""
    bad = nonfinite_fields(trace)
    if not bad:
        return trace
    changes = {}
    for name in bad:
        value = np.asarray(getattr(trace, name), dtype=np.float32)
        if name.endswith("_params"):
            value = value.copy()
            value[~np.isfinite(value).all(axis=-1)] = np.nan  # no window for those steps
        else:
            value = np.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0)
        changes[name] = value
    return dataclasses.replace(trace, **changes)


MAX_WINDOW_VALUE = 1e6  # pixels: a window parameter beyond this is a diverged model's, not a place to draw


def finite_window(params) -> bool:
    """True when an attention window's parameters (5,) are all finite and within +-1e6, i.e. it can be drawn."""
    values = np.asarray(params, dtype=np.float64)
    return bool(np.isfinite(values).all() and (np.abs(values) <= MAX_WINDOW_VALUE).all())
