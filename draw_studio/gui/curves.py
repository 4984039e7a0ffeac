"""Live curves of the bound and its terms, training and validation, and the learning rate.

Every point is kept (:class:`~draw_studio.gui.history.TrainingHistory`). Smoothing (EMA) and
min/max thinning (:mod:`~draw_studio.gui.curve_data`) run off the window thread when there are
many points to (re)compute, and pyqtgraph gets a few thousand points per curve whatever the
length, so a million-row log never stalls the window. The smoothed curve is drawn over the faint
raw one; the learning rate, when recorded, against the right axis (:mod:`~draw_studio.gui.lr_axis`).
The view follows new points until the user zooms or pans; "Fit", or a new source (a new run, another
log), follows again; its y range leaves out the outlying 2% of the values (``Y_SHOWN``).
Hovering says the step and the values there (:attr:`CurvesPlot.hover_text`,
:mod:`~draw_studio.gui.curve_hover`). Reading a log and writing the CSV also run off the window thread
(:mod:`~draw_studio.gui.curve_files`). The x axis is the step, the wall time, the epoch or the images
seen. Several runs are drawn in the same plot, one colour per run, by its :attr:`CurvesPlot.overlay`
(:mod:`~draw_studio.gui.runs_overlay`).

An attention classifier's training log (:mod:`draw_studio.curve_meaning`, the history's ``kind``) holds
other quantities: its one training curve is the cross-entropy in nats per image (the log's L_x repeats
it, its L_z is 0: neither is drawn), and its validation points are the error in percent, drawn against
the right axis ("validation error, %") in place of the learning rate (still in the hover read-out).

New points are given to pyqtgraph in one event-loop turn and painted in the next (a small log is read
in one turn, given to pyqtgraph in the next and painted in a third): no turn holds the window for all
of it.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..curve_meaning import CLASSIFIER
from .axis_painting import cache_axes, lay_out_axes, steady_width
from .curve_controls import CurveControls
from .curve_data import (
    INLINE_ROWS,
    PLAIN,
    POINTS_PER_PIXEL,
    SMOOTHED,
    X_AXES,
    CurveRequest,
    CurveSet,
    compute_curves,
    rows_to_compute,
    same_scale,
    x_source,
)
from .curve_files import CurveFiles
from .curve_hover import CurveHover
from .curve_legend import (
    CLASSIFIER_CURVES,
    HOVER_LABELS,
    LR_COLOUR,
    TRAIN_CURVES,
    VALID_COLOUR,
    detail_legend,
    overlay_legend,
)
from .curve_tasks import BackgroundLane
from .history import TRAIN_COLUMNS, VALID_COLUMNS, TrainingHistory
from .lr_axis import LearningRateAxis
from .runs_overlay import SERIES, RunOverlay

EMPTY_NOTE = "no curves yet: press Start, or open a training log"
Y_SHOWN = 0.98  # y fits this share of the points (TensorBoard's "ignore outliers"): the first steps' ~2,500 nats
# of a 60x60 run would flatten the rest; "log y" or zooming out shows them
MAX_MARKED_POINTS = 300  # validation points get circles up to this many (more overlap into a line, and cost a turn)


def _faint(colour: str) -> pg.QtGui.QColor:
    faint = pg.mkColor(colour)
    faint.setAlpha(70)
    return faint


class CurvesPlot(QWidget):
    """Plot of a :class:`TrainingHistory` with smoothing, log-y, x-axis choice, hover read-out and CSV export.

    Call :meth:`refresh` (from the window's redraw timer) to draw new points.

    Signals
    -------
    export_requested() : the user asked for a CSV export (the panel asks for a file name)
    hover_text(str) : the step and values under the mouse ("" when it leaves the plot)
    log_loaded(object) : a training log read by :meth:`open_log` is shown (the ``TrainingLog``)
    log_failed(str) : a log could not be read (one line)
    csv_progress(int, int) : rows written so far, rows in all
    csv_written(str) : a CSV export finished ("wrote N points to PATH")
    csv_failed(str) : a CSV export failed (one line)
    """

    export_requested = Signal()
    hover_text = Signal(str)
    log_loaded = Signal(object)
    log_failed = Signal(str)
    csv_progress = Signal(int, int)
    csv_written = Signal(str)
    csv_failed = Signal(str)

    def __init__(self, history: TrainingHistory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = history
        self.shown: CurveSet | None = None  # what is drawn
        self._requested: tuple = ()  # (generation, revision, weight, x column) last asked for
        self._computing: tuple | None = None  # (generation, weight, x column) being computed in the background
        self._drawn: tuple = ()  # (curve set, first row, last row, points) given to pyqtgraph (compared by identity)
        self._generation = history.generation
        self._lane = BackgroundLane("curves", self)
        self.files = CurveFiles(self)

        self.controls = controls = CurveControls(self)
        self.smoothing, self.log_y, self.x_axis = controls.smoothing, controls.log_y, controls.x_axis
        self.fit_button, self.export_button = controls.fit_button, controls.export_button

        # the legend is a line above the plot: it never sits on the data
        self.legend = QLabel(objectName="curvesLegend")
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet("font-size: 8pt;")

        self.plot = pg.PlotWidget()
        self.plot.setObjectName("curvesPlot")
        self.plot.setMinimumHeight(140)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("left", "nats / image")
        self.plot.setLabel("bottom", "step")
        self.raw_items: dict[str, pg.PlotDataItem] = {}
        self.smooth_items: dict[str, pg.PlotDataItem] = {}
        for name, (_, _, colour) in TRAIN_CURVES.items():
            self.raw_items[name] = self.plot.plot(pen=pg.mkPen(_faint(colour), width=1))
            self.smooth_items[name] = self.plot.plot(pen=pg.mkPen(colour, width=2))
        self.empty_note = pg.TextItem(EMPTY_NOTE, color="#9a9a9a", anchor=(0.5, 0.5))
        self.empty_note.setPos(0.5, 0.2)
        self.plot.addItem(self.empty_note, ignoreBounds=True)
        self.valid_item = self.plot.plot(pen=pg.mkPen(VALID_COLOUR, width=2), symbol="o", symbolSize=6,
                                         symbolBrush=VALID_COLOUR, symbolPen=None)
        self.hover = CurveHover(self, HOVER_LABELS)
        self.cursor = self.hover.cursor
        self.lr_axis = LearningRateAxis(self.plot.getPlotItem(), LR_COLOUR, VALID_COLOUR)
        self.lr_view, self.lr_item = self.lr_axis.view, self.lr_axis.item
        cache_axes(self.plot.getPlotItem())  # a hover cursor or new points repaint the grid's axes: from pixmaps
        steady_width(self.plot.getPlotItem().getAxis("left"))  # a log's first paint never lays the plot out anew
        self.overlay = RunOverlay(self)
        self.overlay.series_changed.connect(lambda _: self._update_legend(self.shown is not None and self.shown.has_lr))
        self.overlay.kinds_changed.connect(self._overlay_axes)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(controls)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot, 1)

        self._redraw_soon = QTimer(self, singleShot=True, interval=0)
        self._reading = False  # in open_log (a small log is read and computed there)
        self._redraw_soon.timeout.connect(self._draw)
        self._settle_soon = QTimer(self, singleShot=True, interval=0)  # ranges and axes: the turn after the points
        self._settle_soon.timeout.connect(self._settle_view)
        self.smoothing.valueChanged.connect(self._on_smoothing)
        self.log_y.toggled.connect(self._on_log)
        self.x_axis.currentIndexChanged.connect(self._on_x_axis)
        self.fit_button.clicked.connect(self.fit)
        self.export_button.clicked.connect(self.export_requested)
        self.plot.getViewBox().sigXRangeChanged.connect(lambda *_: self._redraw_soon.start())
        self.plot.getViewBox().sigResized.connect(lambda *_: self._redraw_soon.start())
        self._update_legend(lr=False)

    # ------------------------------------------------------------------ options
    @property
    def smoothing_weight(self) -> float:
        return self.controls.smoothing_weight

    @property
    def x_axis_key(self) -> str:
        """The x axis: ``step``, ``wall_time``, ``epoch`` or ``images`` (a key of ``X_AXES``)."""
        return self.controls.x_axis_key

    def set_x_axis(self, key: str) -> None:
        """Choose the x axis (a key of ``X_AXES``), as the combo box does."""
        self.controls.set_x_axis(key)

    @property
    def x_source(self) -> tuple[str, float]:
        """The column and scale giving the x axis for the open source's run (see ``x_source``)."""
        return x_source(self.x_axis_key, self.history.steps_per_epoch, self.history.batch_size)

    def points_per_view(self) -> int:
        """About how many min/max pairs a curve is thinned to for the plot's width (in steps of 128 pixels, about the
        view's width: the right axis coming or going, or a few pixels more, never makes every curve drawn anew)."""
        return max(200, self.plot.width() // 128 * 128 * POINTS_PER_PIXEL)

    @property
    def kind(self) -> str:
        """What the plot draws (:mod:`draw_studio.curve_meaning`): ``draw`` or ``classifier`` (the runs overlaid, or the
        open source's run: the points drawn, else the history's)."""
        if self.overlay.active:
            return self.overlay.kind
        return self.shown.kind if self.shown is not None else self.history.kind

    def _update_legend(self, lr: bool) -> None:
        if self.overlay.active:  # one colour per run: the legend says what the line styles mean
            self.legend.setText(overlay_legend(self.overlay.kind, SERIES[self.overlay.series], self.overlay.missing(),
                                               self.overlay.other_kind()))
        else:
            self.legend.setText(detail_legend(self.kind, lr))

    def _on_smoothing(self) -> None:
        self.refresh()  # the zoom stays

    def _on_x_axis(self) -> None:
        self.plot.setLabel("bottom", X_AXES[self.x_axis_key][1])
        self._update_legend(self.shown is not None and self.shown.has_lr)
        self.refresh()
        self.fit()

    def set_overlay(self, runs) -> None:
        """Draw these runs (:class:`~draw_studio.gui.runs_overlay.OverlayRun`), one colour each, instead of the
        open source's run in detail (None: that run in detail again)."""
        was = self.overlay.active
        self.overlay.set_runs(runs)
        self._update_legend(self.shown is not None and self.shown.has_lr)
        self._drawn = ()
        self._draw()
        if was != self.overlay.active:
            self.fit()

    def _on_log(self, checked: bool) -> None:
        self.plot.setLogMode(y=checked)
        self.lr_axis.keep_linear()
        self.fit()

    def fit(self) -> None:
        """Show every step and all but the outlying values (see ``Y_SHOWN``), and follow new points again."""
        self._follow()
        self.lr_axis.fit()

    def _follow(self) -> None:
        """Let the view follow the points: x all of them, y all but the outliers."""
        self.plot.enableAutoRange()
        self.plot.getViewBox().enableAutoRange(axis=pg.ViewBox.YAxis, enable=Y_SHOWN)

    @property
    def user_zoomed(self) -> bool:
        """The user has zoomed or panned (the view no longer follows new points)."""
        state = self.plot.getViewBox().state["autoRange"]
        return not (state[0] and state[1])

    @property
    def busy(self) -> bool:
        """Curves are being computed, a log read or a CSV written off the window thread."""
        return self._lane.busy or self.files.busy or self.overlay.busy

    # ------------------------------------------------------------------ computing
    def refresh(self) -> None:
        """Draw the history's new points (at once when few rows need computing, else when the background is done)."""
        if self._redraw_soon.isActive() and not self._reading:
            self._redraw_soon.stop()  # what waits for the next turn is drawn now (the window's redraw_now, tests)
            self._draw()
        if self._settle_soon.isActive() and not self._reading:
            self._settle_soon.stop()
            self._settle_view()
        self._request_curves()

    def _request_curves(self) -> None:
        """Compute the curves of the history's new points (or other options): here when few, else in the background."""
        history = self.history
        column, scale = self.x_source
        if self.overlay.active:
            self.overlay.refresh()
        key = (history.generation, history.revision, self.smoothing_weight, column, scale)
        if key[:4] == self._requested[:4] and same_scale(key[4], self._requested[4]):
            return
        if history.generation != self._generation:  # a new run or another log: show it all, follow it
            self._generation = history.generation
            self.fit()
        options = (history.generation, self.smoothing_weight, column, repr(scale))
        if self._lane.busy and self._computing == options:
            return  # new points of what is being computed: added when it is done (see _show)
        self._requested = key
        request = CurveRequest(history.generation, history.revision, self.smoothing_weight, column,
                               {name: history.train.column(name) for name in TRAIN_COLUMNS},
                               {name: history.valid.column(name) for name in VALID_COLUMNS}, scale, history.kind)
        previous = self.shown if self.shown is not None and self.shown.reusable_for(request) else None
        # at once when little is to compute, unless a background computation may be extending `previous`
        if rows_to_compute(previous, request) <= INLINE_ROWS and (previous is None or not self._lane.busy):
            if self._lane.busy:
                self._lane.cancel()  # it computes other options or other points: nothing of it is needed
                self._computing = None
            self._show(compute_curves(request, previous))
        else:  # replaces (and stops) a computation for other options or other points
            self._computing = options
            self._lane.submit(lambda _progress, cancelled: compute_curves(request, previous, cancelled), self._show)

    def _show(self, curves: CurveSet | None) -> None:
        if curves is not None:
            self.shown = curves
            if self._reading:  # a small log read just now: drawn in the next turn, reading and drawing never
                self._redraw_soon.start()  # hold the window together
            else:
                self._draw()
        if not self._lane.busy:
            self._computing = None
            self._request_curves()  # the points that came meanwhile (what waits for the next turn still waits)

    def detail_items(self) -> list[pg.PlotDataItem]:
        """The items drawing the open source's run in detail."""
        return [*self.raw_items.values(), *self.smooth_items.values(), self.valid_item, self.lr_item,
                self.lr_axis.error_item]

    def _draw(self) -> None:
        """Give pyqtgraph the points of the visible range, thinned to a few per pixel."""
        overlay = self.overlay.active
        for item in self.detail_items():
            item.setVisible(not overlay)
        if overlay:
            self.overlay.draw()
            self._overlay_axes()
            self.empty_note.setText("tick runs in the Runs tab to see their curves")
            self.empty_note.setVisible(not self.overlay.runs)
            if not self.overlay.runs:
                self._show_nothing()
            self._settle_view()
            return
        curves = self.shown
        unknown = curves is not None and curves.x_scale != curves.x_scale  # no steps per epoch / batch size
        self.empty_note.setText(f"this run does not record what the {X_AXES[self.x_axis_key][1]} axis needs"
                                if unknown else EMPTY_NOTE)
        if curves is None or unknown:
            for item in self.detail_items():
                item.setData([], [])
            self.lr_axis.hide()
            self.empty_note.setVisible(True)
            self._show_nothing()
            self._drawn = ()
            return
        self._update_legend(curves.has_lr)  # a line longer or shorter: the plot's new size now, not after its points
        self.layout().activate()
        view = self.plot.getViewBox()
        first, last = 0, curves.rows
        if not view.state["autoRange"][0]:  # zoomed: only what is visible (following: everything)
            low, high = view.viewRange()[0]
            first, last = curves.visible(low, high)
        points = self.points_per_view()
        if self._drawn and self._drawn[0] is curves and self._drawn[1:] == (first, last, points):
            return
        self._paint_next_turn()  # giving pyqtgraph the points, fitting the ranges and painting take a turn each
        self._settle_soon.start()
        self._drawn = (curves, first, last, points)
        valid_x = curves.valid_x
        marked = len(valid_x) <= min(points // 2, MAX_MARKED_POINTS)
        if curves.kind == CLASSIFIER:  # the cross-entropy; the error in % against the right axis
            self._draw_classifier(curves, first, last, points, marked)
        else:
            for name in SMOOTHED:
                self.raw_items[name].setData(*curves.points(name, False, first, last, points))
                self.smooth_items[name].setData(*curves.points(name, True, first, last, points))
            for name in PLAIN:
                self.lr_axis.show(*curves.points(name, False, first, last, points), curves.has_lr)
            # no scatter unmarked
            self.valid_item.setData(valid_x, curves.valid["bound"], symbol="o" if marked else None)
        self.empty_note.setVisible(curves.rows == 0 and len(valid_x) == 0)
        if curves.rows == 0 and len(valid_x) == 0:
            self._show_nothing()

    def _overlay_axes(self) -> None:
        """Runs overlaid: the right axis holds the attention classifiers' validation errors (else none); the legend
        says what the runs drawn are."""
        if not self.overlay.active:
            return
        if self.overlay.kind == CLASSIFIER:
            self.lr_axis.hold_errors()
        else:
            self.lr_axis.show_axis(False)
        self._update_legend(False)

    def _draw_classifier(self, curves: CurveSet, first: int, last: int, points: int, marked: bool) -> None:
        """An attention classifier's points: its cross-entropy (the ``bound`` column) raw and smoothed, and its
        validation error in percent against the right axis; its copy of the loss (``nll_x``) and its zero ``kl``
        not drawn."""
        for name in SMOOTHED:
            if name in CLASSIFIER_CURVES:
                self.raw_items[name].setData(*curves.points(name, False, first, last, points))
                self.smooth_items[name].setData(*curves.points(name, True, first, last, points))
            else:
                self.raw_items[name].setData([], [])
                self.smooth_items[name].setData([], [])
        self.valid_item.setData([], [])
        self.lr_axis.show_errors(curves.valid_x, curves.valid["bound"], marked)

    def _show_nothing(self) -> None:
        """No points: the axes at 0..1 (not the ranges of what was shown before), the note in the middle."""
        view = self.plot.getViewBox()
        view.setRange(xRange=(0.0, 1.0), yRange=(0.0, 1.0), padding=0.0)
        self._follow()  # the first points are followed again

    def _settle_view(self) -> None:
        """Fit the ranges to what was just given to pyqtgraph and lay out the axes, now rather than in the next
        paint (which may come a turn later): the view's range is right at once, and the paint does less."""
        for box in (self.plot.getViewBox(), self.lr_view):
            if any(box.autoRangeEnabled()):
                box.updateAutoRange()
        lay_out_axes(self.plot.getPlotItem())
        viewport = self.plot.viewport()
        if not viewport.updatesEnabled():  # held by _paint_next_turn: the paint gets a turn of its own too
            QTimer.singleShot(1, self, lambda: viewport.setUpdatesEnabled(True))

    def _paint_next_turn(self) -> None:
        """Hold the plot's painting until the ranges are settled (:meth:`_settle_view`, the next turn); it then
        paints everything at once, in the turn after."""
        self.plot.viewport().setUpdatesEnabled(False)

    # ------------------------------------------------------------------ files
    def open_log(self, path, loaded=None, failed=None) -> None:
        """Read a training log and show its curves (see :meth:`CurveFiles.open_log`)."""
        self._reading = True
        try:
            self.files.open_log(path, loaded, failed)
        finally:
            self._reading = False

    def export_csv(self, path, written=None, failed=None, progress=None) -> bool:
        """Write every point to a CSV (see :meth:`CurveFiles.export_csv`); False while one is being written."""
        return self.files.export_csv(path, written, failed, progress)

    def point_counts(self) -> dict[str, int]:
        """Points held per curve (training curves share one count)."""
        return {"train": self.history.train.size, "valid": self.history.valid.size}
