"""How an attention window is drawn, shared by the exporter and the window's timeline (no Qt here).

A window is the extent of its N x N filter grid, from
:func:`draw_studio.attention.window_extent`, drawn so that it never hides the
image (style ``"outline"``, the default):

- a thin outline of the grid's extent, just outside it: the pixels the grid
  covers are left as they are;
- the filter width shown as a translucent band of width sqrt(sigma2) outside
  the outline (how far the outermost filters reach), never over the grid.

Style ``"border"`` is the paper's figure: a solid border centred on the
grid's extent, as wide as the filter (it may cover the image).

A window partly outside the image is clipped to the image; each side that
lies past an edge is drawn dashed on that edge and marked by an arrow
pointing outward. A window wholly outside the image leaves only arrows on
the edges facing it. :meth:`WindowShape.note` says so in words.

Coordinates are the image's: pixel i covers [i, i + 1) along x (columns) and
y (rows, downward); 1-based paper coordinate a is the centre of pixel a - 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .attention import window_extent
from .trace_checks import finite_window

STYLES = ("outline", "border")
STYLE_NAMES = {"outline": "outline + filter band", "border": "paper: border as wide as the filter"}
DEFAULT_STYLE = "outline"
BAND_ALPHA = 0.25  # opacity of the filter band of the outline style, times the window opacity
SIDES = ("left", "right", "top", "bottom")

Rect = tuple[float, float, float, float]  # (x0, x1, y0, y1), x0 <= x1 and y0 <= y1


@dataclass(frozen=True)
class WindowShape:
    """Where one attention window lies on an image of ``width`` x ``height`` pixels.

    Attributes
    ----------
    x0, x1, y0, y1 : float
        The grid's extent (outermost filter centres) in image coordinates.
    sigma : float
        The filter width sqrt(sigma2), in pixels.
    width, height : int
        The image's size.
    """

    x0: float
    x1: float
    y0: float
    y1: float
    sigma: float
    width: int
    height: int

    @property
    def grid(self) -> Rect:
        return self.x0, self.x1, self.y0, self.y1

    @property
    def past(self) -> tuple[str, ...]:
        """The sides of the grid that lie beyond the image's edges, of ``left, right, top, bottom``."""
        beyond = (self.x0 < 0, self.x1 > self.width, self.y0 < 0, self.y1 > self.height)
        return tuple(side for side, out in zip(SIDES, beyond, strict=True) if out)

    @property
    def outside(self) -> bool:
        """True when no part of the grid lies on the image."""
        return (self.x1 < 0 or self.x0 > self.width or self.y1 < 0 or self.y0 > self.height)

    @property
    def facing(self) -> tuple[str, ...]:
        """For a window wholly outside: the edges of the image that face it (else the sides past the image)."""
        if not self.outside:
            return self.past
        away = (self.x1 < 0, self.x0 > self.width, self.y1 < 0, self.y0 > self.height)
        return tuple(side for side, out in zip(SIDES, away, strict=True) if out)

    def grown(self, margin: float) -> Rect:
        """The grid's extent grown by ``margin`` pixels on every side (a negative margin shrinks it)."""
        return self.x0 - margin, self.x1 + margin, self.y0 - margin, self.y1 + margin

    def clip(self, rect: Rect) -> Rect | None:
        """``rect`` intersected with the image, or None when they do not meet (or ``rect`` is empty)."""
        x0, x1 = max(rect[0], 0.0), min(rect[1], float(self.width))
        y0, y1 = max(rect[2], 0.0), min(rect[3], float(self.height))
        return (x0, x1, y0, y1) if x0 <= x1 and y0 <= y1 else None

    def band(self, style: str) -> tuple[Rect, Rect]:
        """(outer, inner) edges of the band that shows the filter width in ``style`` (the band lies between).

        The inner rectangle is empty (x0 > x1) when a border is wider than the grid.
        """
        if style == "border":
            half = max(self.sigma, 0.1) / 2
            return self.grown(half), self.grown(-half)
        return self.grown(self.sigma), self.grid

    def markers(self, size: float) -> list[tuple[float, float, str]]:
        """Arrows at the image's edge, one per side in :attr:`facing`: (x, y, side) of each tip.

        The tip lies on the edge, at the middle of the clipped grid along it
        (for a window wholly outside: the grid's centre moved onto the edge),
        kept ``size`` from the image's corners.
        """
        centre_x = min(max((max(self.x0, 0.0) + min(self.x1, self.width)) / 2, size), self.width - size)
        centre_y = min(max((max(self.y0, 0.0) + min(self.y1, self.height)) / 2, size), self.height - size)
        tips = {"left": (0.0, centre_y), "right": (float(self.width), centre_y),
                "top": (centre_x, 0.0), "bottom": (centre_x, float(self.height))}
        return [(*tips[side], side) for side in self.facing]

    def note(self, name: str) -> str:
        """``"read window extends past the image (left)"``, ``"... wholly outside the image (right)"``, or ""."""
        if self.outside:
            return f"{name} window wholly outside the image ({', '.join(self.facing)})"
        if self.past:
            return f"{name} window extends past the image ({', '.join(self.past)})"
        return ""


def window_shape(params, n: int, height: int, width: int) -> WindowShape | None:
    """The shape of the window of ``params`` (5,) for an N x N grid, or None when it cannot be drawn.

    Parameters
    ----------
    params : array-like, shape (5,)
        ``gx, gy, delta, sigma2, gamma`` in the paper's 1-based pixel units.
    n : int
        Grid size N.
    height, width : int
        The image's size.
    """
    if params is None or not finite_window(params):
        return None
    x0, x1, y0, y1 = window_extent(params, n)
    sigma = math.sqrt(max(float(params[3]), 0.0))
    return WindowShape(x0 - 0.5, x1 - 0.5, y0 - 0.5, y1 - 0.5, sigma, int(width), int(height))


def marker_size(width: int, height: int) -> float:
    """The length of an edge arrow, in image pixels: 7% of the image's smaller side, at least 1.5."""
    return max(1.5, 0.07 * min(width, height))


# ---------------------------------------------------------------------- pictures (the exporter)
def _inside(rect: Rect, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Mask (len(ys), len(xs)) of the points (xs, ys) inside ``rect`` (closed)."""
    x0, x1, y0, y1 = rect
    return ((ys >= y0) & (ys <= y1))[:, None] & ((xs >= x0) & (xs <= x1))[None, :]


def paint_window(region: np.ndarray, shape: WindowShape, scale: int, colour: tuple[int, int, int],
                 style: str = DEFAULT_STYLE) -> None:
    """Draw one window onto ``region`` (height*scale, width*scale, 3), uint8, in place.

    The picture shows the image upscaled ``scale`` times; everything drawn is
    clipped to it. See the module docstring for the styles.
    """
    if style not in STYLES:
        raise ValueError(f"unknown window style {style!r}; use one of {', '.join(STYLES)}")
    xs = (np.arange(shape.width * scale) + 0.5) / scale  # centres of the picture's columns, image coordinates
    ys = (np.arange(shape.height * scale) + 0.5) / scale
    colour = np.asarray(colour, dtype=np.float32)
    outer, inner = shape.band(style)
    band = _inside(outer, xs, ys)
    if inner[0] <= inner[1] and inner[2] <= inner[3]:
        band &= ~_inside(inner, xs, ys)
    alpha = BAND_ALPHA if style == "outline" else 1.0
    region[band] = (region[band] * (1 - alpha) + colour * alpha + 0.5).astype(np.uint8)
    line = max(1, round(scale / 3)) / scale  # the outline's width: a third of an image pixel, >= 1 picture pixel
    if style == "outline":
        outline = _inside(shape.grown(line), xs, ys) & ~_inside(shape.grid, xs, ys)
        region[outline] = colour
    clipped = shape.clip(shape.grid)
    if clipped is not None:  # a dashed line on each edge the grid goes past, along the clipped grid
        dashes_x = ((np.arange(shape.width * scale) // max(scale, 2)) % 2 == 0)[None, :]
        dashes_y = ((np.arange(shape.height * scale) // max(scale, 2)) % 2 == 0)[:, None]
        along_x = _inside((clipped[0], clipped[1], -1, shape.height + 1), xs, ys)
        along_y = _inside((-1, shape.width + 1, clipped[2], clipped[3]), xs, ys)
        edges = {"left": (xs < line)[None, :] & along_y & dashes_y,
                 "right": (xs > shape.width - line)[None, :] & along_y & dashes_y,
                 "top": (ys < line)[:, None] & along_x & dashes_x,
                 "bottom": (ys > shape.height - line)[:, None] & along_x & dashes_x}
        for side in shape.past:
            region[edges[side]] = colour
    size = marker_size(shape.width, shape.height)
    for tip_x, tip_y, side in shape.markers(size):
        depth = np.abs(xs - tip_x)[None, :] if side in ("left", "right") else np.abs(ys - tip_y)[:, None]
        across = np.abs(ys - tip_y)[:, None] if side in ("left", "right") else np.abs(xs - tip_x)[None, :]
        region[(depth <= size) & (across <= 0.6 * depth + 0.5 / scale)] = colour
