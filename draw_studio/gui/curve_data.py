"""The numbers behind the curves, in numpy (no Qt): smoothing and min/max thinning for drawing.

Both are quick enough for a million points (tens of ms) and both extend incrementally, so a live
run's new points cost only their own share. :mod:`draw_studio.gui.curves` runs them off the window
thread when there are many points to (re)compute.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..curve_meaning import DRAW

BUCKET = 4  # rows per bucket grow by this factor from one level to the next (4, 16, 64, ...)
MAX_SCALE_EXP = 230.0  # within one block the scale factors w^-j stay below e^230 (~1e100)
SMOOTHED = ("bound", "nll_x", "kl")  # the training curves drawn raw (faint) and smoothed
PLAIN = ("lr",)  # drawn as they are
INLINE_ROWS = 50_000  # up to this many rows to (re)compute, the window thread does it at once (a few ms)
POINTS_PER_PIXEL = 2  # thinning keeps about this many buckets per pixel of plot width
# x axis -> (column, axis label); epochs and images seen are the step column scaled by the run's own numbers
X_AXES = {"step": ("step", "step"), "wall_time": ("wall_time", "wall time (s)"), "epoch": ("step", "epoch"),
          "images": ("step", "images seen")}


def exponential_moving_average(values: np.ndarray, weight: float, start: int = 0,
                               previous: np.ndarray | None = None) -> np.ndarray:
    """EMA s_i = weight * s_{i-1} + (1 - weight) * v_i, seeded with the first value.

    With ``previous`` (the EMA of ``values[:start]``) only the new tail is
    computed. NaNs are skipped (the average carries over them).

    Parameters
    ----------
    values : ndarray, shape (N,)
    weight : float
        In [0, 1): 0 gives the values themselves.

    Returns
    -------
    ndarray, shape (N,), float64
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.empty(len(values), dtype=np.float64)
    if start:
        out[:start] = previous[:start]
    out[start:] = ema_tail(values[start:], weight, out[start - 1] if start else np.nan)
    return out


def ema_tail(values: np.ndarray, weight: float, last: float) -> np.ndarray:
    """The EMA of ``values`` (K,) going on from ``last``, the average just before them (NaN: none yet)."""
    values = np.asarray(values, dtype=np.float64)
    kept = ~np.isnan(values)
    picked = values[kept]  # (K',) the values the average runs over
    if picked.size == 0:
        return np.full(len(values), last)
    if last != last:  # nothing to carry over: the first value seeds the average
        smooth = np.concatenate((picked[:1], _ema_from(picked[1:], weight, picked[0])))
    else:
        smooth = _ema_from(picked, weight, last)
    latest = np.cumsum(kept) - 1  # (K,) index into smooth of the last value at or before each row
    return np.where(latest >= 0, smooth[np.maximum(latest, 0)], last)


def _ema_from(values: np.ndarray, weight: float, state: float) -> np.ndarray:
    """s_i = w s_{i-1} + (1 - w) v_i with s_{-1} = ``state``, vectorised in blocks.

    Within a block of L rows, s_i = (1 - w) w^i sum_{j <= i} v_j w^-j + w^(i+1) s_{-1}; L keeps
    w^-L below ~1e100, so a block's carry into the one after next is below 1e-100 of it.
    """
    n = len(values)
    if n == 0:
        return np.empty(0)
    if weight <= 0.0:
        return values.copy()
    length = max(1, min(n, int(MAX_SCALE_EXP / -math.log(weight))))
    blocks = -(-n // length)
    padded = np.zeros(blocks * length)
    padded[:n] = values
    padded = padded.reshape(blocks, length)  # (blocks, L)
    exponent = np.arange(length, dtype=np.float64)
    scale = np.power(weight, -exponent)  # (L,) w^-j
    local = np.cumsum(padded * scale, axis=1) / scale * (1.0 - weight)  # (blocks, L): each block started at 0
    decay = np.power(weight, exponent + 1)  # (L,) w^(i+1)
    carry = np.empty(blocks)  # the average just before each block
    carry[0] = state
    if blocks > 1:
        ends = local[:, -1]
        carry[1:] = ends[:-1]
        carry[2:] += decay[-1] * ends[:-2]  # two blocks back: w^L of it; three back would be w^2L < 1e-200
        carry[1] += decay[-1] * state
    return (local + carry[:, None] * decay).reshape(-1)[:n]


class MinMaxPyramid:
    """Minimum and maximum of a curve over buckets of 4, 16, 64, ... rows.

    A view of any range then draws a few thousand points that keep every peak
    (:meth:`window`), whatever the length. :meth:`extended` adds rows without
    touching what existing pyramids read (buffers only grow past their ends), so
    one pyramid may be drawn in the window thread while the next is built elsewhere.
    """

    def __init__(self) -> None:
        self._buffers: list[tuple[np.ndarray, np.ndarray]] = []  # per level: (low, high) with spare room
        self.sizes: list[int] = []  # complete buckets per level
        self.rows = 0

    def extended(self, values: np.ndarray) -> MinMaxPyramid:
        """The pyramid of ``values`` (N,), whose first :attr:`rows` rows must be those this one covers."""
        grown = MinMaxPyramid()
        grown._buffers, grown.sizes, grown.rows = list(self._buffers), list(self.sizes), len(values)
        below_low = below_high = np.asarray(values, dtype=np.float64)  # level 0: the rows themselves
        below_size = len(values)
        level = 0
        while below_size >= BUCKET:
            if level == len(grown.sizes):
                grown._buffers.append((np.empty(0), np.empty(0)))
                grown.sizes.append(0)
            low, high = grown._buffers[level]
            have, need = grown.sizes[level], below_size // BUCKET
            if need > len(low):
                room = max(need, 2 * len(low), 256)
                low, high = _regrow(low, have, room), _regrow(high, have, room)
                grown._buffers[level] = (low, high)
            if need > have:
                span = slice(have * BUCKET, need * BUCKET)
                low[have:need] = np.fmin.reduce(below_low[span].reshape(-1, BUCKET), axis=1)
                high[have:need] = np.fmax.reduce(below_high[span].reshape(-1, BUCKET), axis=1)
                grown.sizes[level] = need
            below_low, below_high, below_size = low, high, need
            level += 1
        return grown

    def level(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Low and high of the complete buckets of level ``index`` (bucket size 4^(index+1))."""
        low, high = self._buffers[index]
        return low[:self.sizes[index]], high[:self.sizes[index]]

    def window(self, x: np.ndarray, values: np.ndarray, first: int, last: int,
               points: int) -> tuple[np.ndarray, np.ndarray]:
        """At most about ``2 * points`` points drawing rows ``first:last`` of (``x``, ``values``).

        Rows are taken as they are when there are at most ``points`` of them; otherwise each
        bucket of the coarsest level that still gives ``points / 4`` buckets or more becomes two
        points (its low and its high, at the x of its first row), and rows after the last
        complete bucket are taken as they are.
        """
        count = last - first
        level = -1
        while count // BUCKET ** (level + 2) >= max(points // BUCKET, 1) and level + 1 < len(self.sizes):
            level += 1
        if count <= points or level < 0:
            return x[first:last], values[first:last]
        size = BUCKET ** (level + 1)
        low, high = self.level(level)
        begin, end = first // size, min(-(-last // size), len(low))
        rest = max(end * size, first)
        xs = np.repeat(x[begin * size:end * size:size], 2)  # (2 * buckets,)
        ys = np.empty(len(xs))
        ys[0::2], ys[1::2] = low[begin:end], high[begin:end]
        return np.concatenate((xs, x[rest:last])), np.concatenate((ys, values[rest:last]))


def x_source(axis: str, steps_per_epoch: float | None, batch_size: int | None) -> tuple[str, float]:
    """The column and scale that give the x axis ``axis`` (a key of ``X_AXES``) for a run with these
    numbers; the scale is NaN when the run does not record what it needs."""
    column = X_AXES[axis][0]
    if axis == "epoch":
        return column, 1.0 / steps_per_epoch if steps_per_epoch else math.nan
    if axis == "images":
        return column, float(batch_size) if batch_size else math.nan
    return column, 1.0


def _regrow(buffer: np.ndarray, keep: int, room: int) -> np.ndarray:
    bigger = np.empty(room, dtype=np.float64)
    bigger[:keep] = buffer[:keep]
    return bigger


def visible_rows(x: np.ndarray, low: float, high: float, sorted_x: bool) -> tuple[int, int]:
    """The rows of ``x`` between ``low`` and ``high`` plus one on each side (all rows when x is not sorted)."""
    if not sorted_x:
        return 0, len(x)
    first = int(np.searchsorted(x, low, side="left"))
    last = int(np.searchsorted(x, high, side="right"))
    return max(first - 1, 0), min(last + 1, len(x))


def is_sorted(x: np.ndarray) -> bool:
    """Whether ``x`` never decreases (NaNs count as unsorted)."""
    return bool(len(x) < 2 or np.all(x[1:] >= x[:-1]))


@dataclass(eq=False)
class CurveRequest:
    """What to compute: a snapshot of a history (views the history never writes over) and the options."""

    generation: int
    revision: int
    weight: float
    x_column: str
    train: dict[str, np.ndarray]  # name -> (N,): step, wall_time, bound, nll_x, kl, lr
    valid: dict[str, np.ndarray]  # name -> (M,): step, wall_time, bound
    x_scale: float = 1.0  # x = x_column * x_scale (epochs: 1 / steps per epoch; images seen: batch size)
    kind: str = DRAW  # what the points are (draw_studio.curve_meaning): "draw" or "classifier"


@dataclass(eq=False)
class CurveSet:
    """Everything the curves draw for one snapshot: full-resolution arrays and their pyramids."""

    generation: int
    revision: int
    weight: float
    x_column: str
    rows: int
    x: np.ndarray  # (N,)
    x_sorted: bool
    train: dict[str, np.ndarray]  # (N,) each, as in the request
    smooth: dict[str, np.ndarray]  # name in SMOOTHED -> (N,), views of buffers with room to grow
    pyramids: dict[str, MinMaxPyramid]  # "raw:NAME" and "smooth:NAME"
    valid: dict[str, np.ndarray]  # (M,) each
    has_lr: bool = False  # some learning rate is recorded
    x_scale: float = 1.0
    kind: str = DRAW  # the request's
    computed_in: str = field(default_factory=lambda: threading.current_thread().name)

    def reusable_for(self, request: CurveRequest) -> bool:
        """Whether a later snapshot of the same points can extend this one."""
        return (self.generation == request.generation and self.x_column == request.x_column
                and same_scale(self.x_scale, request.x_scale) and self.rows <= len(request.train["step"]))

    @property
    def valid_x(self) -> np.ndarray:
        """The x of the validation points, (M,)."""
        column = self.valid[self.x_column]
        return column if self.x_scale == 1.0 else column * self.x_scale

    def visible(self, low: float, high: float) -> tuple[int, int]:
        """The rows drawn for the x range ``low..high`` (see :func:`visible_rows`)."""
        return visible_rows(self.x, low, high, self.x_sorted)

    def row_near(self, x: float) -> int:
        """The row whose x is nearest to ``x``."""
        values = self.x
        if self.x_sorted:
            right = int(np.clip(np.searchsorted(values, x), 1, len(values) - 1)) if len(values) > 1 else 0
            return right - 1 if right and abs(values[right - 1] - x) <= abs(values[right] - x) else right
        distance = np.abs(values - x)
        return int(np.nanargmin(distance)) if np.isfinite(distance).any() else 0

    def points(self, name: str, smoothed: bool, first: int, last: int,
               points: int) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) drawing rows ``first:last`` of a curve (raw or smoothed), thinned to about ``points``
        min/max pairs (:meth:`MinMaxPyramid.window`)."""
        values = self.smooth[name] if smoothed else self.train[name]
        return self.pyramids[f"{'smooth' if smoothed else 'raw'}:{name}"].window(self.x, values, first, last, points)


def same_scale(a: float, b: float) -> bool:
    """Equal x scales (NaN, an unknown scale, equals NaN)."""
    return a == b or (a != a and b != b)


def rows_to_compute(previous: CurveSet | None, request: CurveRequest) -> int:
    """How many rows :func:`compute_curves` goes through (all, or only the new ones)."""
    rows = len(request.train["step"])
    if previous is None or not previous.reusable_for(request):
        return rows
    return rows if previous.weight != request.weight else rows - previous.rows


def compute_curves(request: CurveRequest, previous: CurveSet | None = None,
                   cancelled: Callable[[], bool] = lambda: False) -> CurveSet | None:
    """Smooth and thin the curves of ``request``, extending ``previous`` when it holds the same points.

    Returns None when ``cancelled()`` turned true on the way.
    """
    train = request.train
    rows = len(train["step"])
    reuse = previous if previous is not None and previous.reusable_for(request) else None
    start = reuse.rows if reuse is not None else 0
    x = train[request.x_column] if request.x_scale == 1.0 else train[request.x_column] * request.x_scale
    x_sorted = is_sorted(x) if reuse is None else reuse.x_sorted and is_sorted(x[max(start - 1, 0):])
    smooth: dict[str, np.ndarray] = {}
    pyramids: dict[str, MinMaxPyramid] = {}
    for name in SMOOTHED + PLAIN:
        if cancelled():
            return None
        base = reuse.pyramids[f"raw:{name}"] if reuse is not None else MinMaxPyramid()
        pyramids[f"raw:{name}"] = base.extended(train[name])
        if name not in SMOOTHED:
            continue
        if reuse is not None and reuse.weight == request.weight:  # only the new rows; the buffer grows past its end
            before = reuse.smooth[name]
            last = before[-1] if start else np.nan
            smooth[name] = _grown(before, rows)
            smooth[name][start:] = ema_tail(train[name][start:], request.weight, last)
            base = reuse.pyramids[f"smooth:{name}"]
        else:
            smooth[name] = exponential_moving_average(train[name], request.weight)
            base = MinMaxPyramid()
        pyramids[f"smooth:{name}"] = base.extended(smooth[name])
    has_lr = bool(reuse is not None and reuse.has_lr) or bool(np.isfinite(train["lr"][start:]).any())
    return CurveSet(request.generation, request.revision, request.weight, request.x_column, rows, x, x_sorted,
                    dict(train), smooth, pyramids, dict(request.valid), has_lr, request.x_scale, request.kind)


def _grown(view: np.ndarray, rows: int) -> np.ndarray:
    """A view of ``rows`` values starting with ``view``'s, in its buffer when there is room past its end, else
    in a new buffer twice as big (the values past ``len(view)`` are to be filled)."""
    base = view.base if view.base is not None else view
    if view.base is not None and view.__array_interface__["data"][0] == base.__array_interface__["data"][0] \
            and len(base) >= rows:
        return base[:rows]
    bigger = np.empty(max(rows, 2 * len(view), 1024))
    bigger[:len(view)] = view
    return bigger[:rows]
