"""Several runs' curves in the one plot of :class:`~draw_studio.gui.curves.CurvesPlot`, one colour per run.

When the runs view ticks more than the open source's run, the plot draws, for every ticked run, its
training curve (the bound, or L_x or L_z: :attr:`RunOverlay.series`; smoothed as the plot's slider
says) as a solid line and its validation bound as a dashed line with dots, both in the run's colour
(items named ``runCurve:NAME:train`` and ``runCurve:NAME:valid``). Every point is kept; the
smoothing and min/max thinning are those of one run (:mod:`~draw_studio.gui.curve_data`), off the
window thread when there are many rows. The open source's run reuses the curves the plot computes
for it (a live run's keep growing). Selecting a run (:meth:`RunOverlay.set_highlight`) draws its
curves thick and on top and dims the others; the mouse over a curve emits ``run_hovered``, a click
``run_clicked``.

Runs whose curves are other quantities are not drawn on one y axis together (:mod:`draw_studio.curve_meaning`):
only the runs of one kind are drawn (the open source's run's when it is ticked; else the open source's, e.g. a
DRAW model's when the shipped runs include a classifier's, if a ticked run has it; else the first ticked
row's), and the legend names the others (:meth:`RunOverlay.other_kind`). Runs of attention classifiers
are drawn as their cross-entropy (nats per image, the left axis; whatever training curve is chosen: their
L_x repeats it, their L_z is 0) and their validation error in percent, against the plot's right axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal

from ..curve_meaning import CLASSIFIER, DRAW
from .curve_data import INLINE_ROWS, CurveRequest, CurveSet, compute_curves, rows_to_compute, same_scale, x_source
from .curve_tasks import BackgroundLane
from .history import TRAIN_COLUMNS, VALID_COLUMNS, TrainingHistory
from .run_colours import faded

SERIES = {"bound": "bound L", "nll_x": "L_x", "kl": "L_z"}  # training curve drawn per run -> label
WIDTH = {"normal": 2.0, "highlighted": 4.0, "dimmed": 1.0}
Z_VALUE = {"normal": 1.0, "highlighted": 10.0, "dimmed": 0.0}
DIMMED_ALPHA = 60
HOVER_WIDTH_PX = 8  # the mouse counts as over a curve this close to it


@dataclass(eq=False)
class OverlayRun:
    """A run to draw: its key and name, its colour, its points, and whether it is the open source's run."""

    key: str
    name: str
    colour: str
    history: TrainingHistory
    current: bool = False


class RunCurve(pg.PlotCurveItem):
    """One curve of one run: reports the mouse over it and clicks on it to its :class:`RunOverlay`."""

    def __init__(self, overlay: RunOverlay, key: str, **options) -> None:
        super().__init__(**options)
        self.overlay, self.key = overlay, key
        self.setClickable(True, HOVER_WIDTH_PX)
        self.sigClicked.connect(lambda *_: overlay.run_clicked.emit(self.key))

    def hoverEvent(self, event) -> None:  # noqa: N802 - pyqtgraph's name
        """The mouse moved over (or near) this item: over the curve itself, or off it."""
        over = not event.isExit() and self.mouseShape().contains(event.pos())
        self.overlay.curve_hovered(self, event.pos() if over else None)


class RunOverlay(QObject):
    """Draws the ticked runs into ``curves``' plot (see the module documentation).

    Signals
    -------
    run_hovered(object) : the key of the run whose curve is under the mouse (None: none)
    run_clicked(str) : a run's curve was clicked
    series_changed(str) : the training curve drawn per run (a key of :data:`SERIES`)
    kinds_changed() : the kind of the runs drawn (:attr:`kind`), or the runs left out (:meth:`other_kind`), changed
    """

    run_hovered = Signal(object)
    run_clicked = Signal(str)
    series_changed = Signal(str)
    kinds_changed = Signal()

    def __init__(self, curves) -> None:
        super().__init__(curves)
        self.curves = curves
        self.runs: list[OverlayRun] | None = None  # None: the plot shows one run in detail
        self.series = "bound"
        self.highlighted: str | None = None
        self.hovered: str | None = None
        self.sets: dict[str, CurveSet] = {}  # key -> curves computed for a run other than the open source's
        self.items: dict[str, tuple[RunCurve, RunCurve, pg.ScatterPlotItem]] = {}  # key -> train, valid, dots
        self._under_mouse: dict[RunCurve, float] = {}  # curve -> x (in the plot's unit) under the mouse
        self._lane = BackgroundLane("run curves", self)
        self._computing = ""  # repr of {key: options} being computed in the background
        self._drawn: dict[str, tuple] = {}  # key -> (curve set, first row, last row, points, series) drawn
        self._kinds: tuple = (DRAW, [])  # (kind, runs of other kinds) when last drawn

    @property
    def active(self) -> bool:
        """Several runs (or none but another run) are drawn instead of one run in detail."""
        return self.runs is not None

    @property
    def busy(self) -> bool:
        return self._lane.busy

    @property
    def kind(self) -> str:
        """What the runs drawn are (``draw`` or ``classifier``): the open source's run's kind when it is drawn,
        else the open source's kind when a ticked run has it, else the first run's (``draw`` with none)."""
        if not self.runs:
            return DRAW
        first = self.runs[0]
        if first.current:
            return first.history.kind
        shown = self.curves.shown
        source = shown.kind if shown is not None else self.curves.history.kind
        return source if any(run.history.kind == source for run in self.runs) else first.history.kind

    def other_kind(self) -> list[str]:
        """Names of the ticked runs that are not drawn: their curves are other quantities than the first run's."""
        kind = self.kind
        return [run.name for run in self.runs or () if run.history.kind != kind]

    # ------------------------------------------------------------------ what to draw
    def set_runs(self, runs: list[OverlayRun] | None) -> None:
        """Draw these runs (None: none; the plot shows the open source's run in detail)."""
        self.runs = None if runs is None else list(runs)
        keys = {run.key for run in self.runs or ()}
        for key in [key for key in self.items if key not in keys]:
            for item in self.items.pop(key):
                self._remove(item)
            self.sets.pop(key, None)
            self._drawn.pop(key, None)
        for curve in [curve for curve in self._under_mouse if curve.key not in keys]:
            del self._under_mouse[curve]
        for run in self.runs or ():
            if run.key not in self.items:
                self.items[run.key] = self._make_items(run.key)
            train, valid, dots = self.items[run.key]
            train.setObjectName(f"runCurve:{run.name}:train")  # names follow the table's (made unique there)
            valid.setObjectName(f"runCurve:{run.name}:valid")
            dots.setObjectName(f"runPoints:{run.name}:valid")
        self._style()
        self.refresh()

    def _make_items(self, key: str) -> tuple[RunCurve, RunCurve, pg.ScatterPlotItem]:
        train, valid, dots = RunCurve(self, key), RunCurve(self, key), pg.ScatterPlotItem(size=6, pen=None)
        for item in (train, valid, dots):
            self.curves.plot.addItem(item)
        return train, valid, dots

    def _remove(self, item) -> None:
        """Take ``item`` out of the plot (the main view box, or the right axis' one)."""
        if item.getViewBox() is self.curves.lr_view:
            self.curves.lr_view.removeItem(item)
        else:
            self.curves.plot.removeItem(item)

    def _place(self, items, right: bool) -> None:
        """Put ``items`` in the right axis' view box (an attention classifier's validation errors, in %) or in the
        main one."""
        for item in items:
            if (item.getViewBox() is self.curves.lr_view) != right:
                self._remove(item)
                if right:
                    self.curves.lr_view.addItem(item)
                else:
                    self.curves.plot.addItem(item)

    def set_series(self, series: str) -> None:
        """Draw this training curve of every run (a key of :data:`SERIES`)."""
        if series != self.series:
            self.series = series  # every series is smoothed already: only drawn anew
            self.series_changed.emit(series)
            self.refresh()

    def set_highlight(self, key: str | None) -> None:
        """Draw run ``key``'s curves thick and on top, the others dimmed (None: all alike)."""
        self.highlighted = key
        self._style()

    def run_of(self, key: str) -> OverlayRun | None:
        return next((run for run in self.runs or () if run.key == key), None)

    def _style(self) -> None:
        for key, (train, valid, dots) in self.items.items():
            run = self.run_of(key)
            look = "normal" if self.highlighted is None or self.highlighted not in self.items else \
                "highlighted" if key == self.highlighted else "dimmed"
            colour = faded(run.colour, DIMMED_ALPHA if look == "dimmed" else 255)
            train.setPen(pg.mkPen(colour, width=WIDTH[look]))
            valid.setPen(pg.mkPen(colour, width=max(WIDTH[look] - 0.5, 1.0), style=Qt.PenStyle.DashLine))
            dots.setBrush(pg.mkBrush(colour))
            for z, item in enumerate((train, valid, dots)):
                item.setZValue(Z_VALUE[look] + z * 0.1)

    # ------------------------------------------------------------------ computing
    def options(self, history: TrainingHistory) -> tuple:
        """(generation, revision, smoothing weight, x column, x scale) of a run's curves as the plot asks now."""
        column, scale = x_source(self.curves.x_axis_key, history.steps_per_epoch, history.batch_size)
        return history.generation, history.revision, self.curves.smoothing_weight, column, scale

    def _fresh(self, run: OverlayRun) -> bool:
        shown = self.sets.get(run.key)
        if shown is None:
            return False
        generation, revision, weight, column, scale = self.options(run.history)
        return (shown.generation, shown.revision, shown.weight, shown.x_column) == (generation, revision, weight,
                                                                                   column) \
            and same_scale(shown.x_scale, scale)

    def refresh(self) -> None:
        """Compute the curves of runs whose points or options changed (at once when few rows, else in the
        background), then draw."""
        if not self.active:
            self.draw()
            return
        stale = [run for run in self.runs if not run.current and not self._fresh(run)]
        wanted = {run.key: self.options(run.history) for run in stale}
        if stale and not (self._lane.busy and self._computing == repr(wanted)):  # repr: NaN scales compare equal
            requests = []
            for run in stale:
                generation, revision, weight, column, scale = wanted[run.key]
                history = run.history
                request = CurveRequest(generation, revision, weight, column,
                                       {name: history.train.column(name) for name in TRAIN_COLUMNS},
                                       {name: history.valid.column(name) for name in VALID_COLUMNS}, scale,
                                       history.kind)
                previous = self.sets.get(run.key)
                requests.append((run.key, request, previous if previous is not None
                                 and previous.reusable_for(request) else None))
            if sum(rows_to_compute(previous, request) for _, request, previous in requests) <= INLINE_ROWS:
                self._lane.cancel()
                self._computing = ""
                self._adopt({key: compute_curves(request, previous) for key, request, previous in requests})
                return
            self._computing = repr(wanted)
            self._lane.submit(lambda _progress, cancelled: _compute_all(requests, cancelled), self._adopt)
        self.draw()

    def _adopt(self, computed: dict[str, CurveSet] | None) -> None:
        if computed is not None:
            keys = {run.key for run in self.runs or ()}
            self.sets.update({key: curves for key, curves in computed.items() if key in keys and curves is not None})
        if not self._lane.busy:
            self._computing = ""
        self.draw()

    # ------------------------------------------------------------------ drawing
    def curves_of(self, run: OverlayRun) -> CurveSet | None:
        """What is drawn for ``run``: the plot's own curves for the open source's run."""
        return self.curves.shown if run.current else self.sets.get(run.key)

    def draw(self) -> None:
        """Give pyqtgraph the visible points of every ticked run (thinned as the plot thins one run)."""
        view = self.curves.plot.getViewBox()
        following = view.state["autoRange"][0]
        low, high = view.viewRange()[0]
        points = self.curves.points_per_view()
        kind = self.kind
        for key, (train, valid, dots) in self.items.items():
            run = self.run_of(key)
            curves = self.curves_of(run) if run is not None else None
            usable = curves is not None and not math.isnan(curves.x_scale) and self.series in curves.train \
                and curves.kind == kind and run.history.kind == kind  # other quantities: not on these axes
            for item in (train, valid, dots):
                item.setVisible(self.active and usable)
            if not (self.active and usable):
                self._drawn.pop(key, None)
                continue
            first, last = (0, curves.rows) if following else curves.visible(low, high)
            name = self.series_of(curves)
            self._place((valid, dots), right=kind == CLASSIFIER)
            drawn = (curves, first, last, points, name)
            if self._drawn.get(key) is not None and all(a is b or a == b for a, b in zip(self._drawn[key], drawn)):
                continue  # the same points are drawn already
            self._drawn[key] = drawn
            train.setData(*curves.points(name, name in curves.smooth, first, last, points), connect="finite")
            valid_x, valid_y = curves.valid_x, curves.valid["bound"]
            valid.setData(valid_x, valid_y, connect="finite")
            dots.setData(valid_x if len(valid_x) <= points // 2 else [], valid_y if len(valid_x) <= points // 2
                         else [])
        kinds = (kind, self.other_kind()) if self.active else (DRAW, [])
        if kinds != self._kinds:
            self._kinds = kinds
            self.kinds_changed.emit()

    def series_of(self, curves: CurveSet) -> str:
        """The training curve drawn of a run: the chosen one, or an attention classifier's cross-entropy (its L_x
        repeats it, its L_z is 0)."""
        return "bound" if curves.kind == CLASSIFIER else self.series

    def missing(self) -> list[str]:
        """Names of ticked runs that cannot be drawn on this x axis (steps per epoch or batch size unknown)."""
        return [run.name for run in self.runs or ()
                if math.isnan(self.options(run.history)[4])]

    # ------------------------------------------------------------------ the mouse
    def curve_hovered(self, curve: RunCurve, position) -> None:
        """``curve`` has the mouse over it at ``position`` (its coordinates), or not (None)."""
        if position is None:
            self._under_mouse.pop(curve, None)
        else:
            self._under_mouse[curve] = position.x()
        on_top = max(self._under_mouse, key=lambda item: item.zValue(), default=None)
        key = on_top.key if on_top is not None else None
        if on_top is not None:
            self.curves.hover_text.emit(self.describe(on_top.key, self._under_mouse[on_top]))
        elif self.hovered is not None:
            self.curves.hover_text.emit("")
        if key != self.hovered:
            self.hovered = key
            self.run_hovered.emit(key)

    def describe(self, key: str, x: float) -> str:
        """One line: the run, and its step and values nearest to ``x``."""
        run = self.run_of(key)
        curves = self.curves_of(run) if run is not None else None
        if curves is None or curves.rows == 0:
            return run.name if run is not None else ""
        row = curves.row_near(x)
        name = self.series_of(curves)
        value = curves.smooth[name][row] if name in curves.smooth else curves.train[name][row]
        label = "cross-entropy" if curves.kind == CLASSIFIER else SERIES[name]
        return f"{run.name}: step {int(curves.train['step'][row]):,}  ·  {label} {value:.2f}"


def _compute_all(requests, cancelled) -> dict[str, CurveSet] | None:
    computed = {}
    for key, request, previous in requests:
        computed[key] = compute_curves(request, previous, cancelled)
        if cancelled():
            return None
    return computed
