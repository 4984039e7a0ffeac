"""Move a window: override the write (or, for a reconstruction, the read) window of the timeline's step.

Type gx, gy, delta, sigma^2, gamma (the trace's 1-based pixel units), or drag on the canvas
here to move the window's centre. Only the fields changed are overridden. Steps t..T then run
again (:class:`draw_studio.explore.WindowMover`, which keeps the image's replay between moves so
that a drag costs steps t..T only; in the background, latest change first); for a
reconstruction the encoder reads the changed error image and the later z's come from its
posterior with the trace's own noise, so the bound's change and each later step's KL change show
how the model corrects itself. The moved run is shown here (the timeline keeps the original);
"Show in every panel" makes it the document's trace.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from ..attention import PARAM_COLUMNS
from ..explore import WindowMover
from ..window_style import DEFAULT_STYLE
from .attention_overlay import WindowOverlay
from .document import Document
from .explore_common import LatestRun, ModelFinder, grey_label, same_base
from .image_view import DIVERGING, ImagePane
from .panel import Panel
from .timeline_panel import READ_COLOUR, WRITE_COLOUR

LABELS = {"gx": "gx", "gy": "gy", "delta": "δ", "sigma2": "σ²", "gamma": "γ"}
RANGES = {"gx": (-100.0, 400.0), "gy": (-100.0, 400.0), "delta": (0.001, 100.0), "sigma2": (0.001, 1000.0),
          "gamma": (0.001, 1000.0)}
KL_BEFORE, KL_CHANGE = "#9a9a9a", "#ffb000"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


class WindowEditPanel(Panel):
    """The attention window of step t, typed or dragged, and what the rest of the drawing does about it.

    Attributes
    ----------
    overrides : dict
        head (``write`` / ``read``) -> {parameter: value} set by the user for the current base.
    result : ExploreResult or None
        The last move (:meth:`WindowMover.move`) for the current base.
    """

    title = "Move a window"
    dock_name = "windowEdit"

    def __init__(self, state: Document, finder: ModelFinder, parent=None) -> None:
        super().__init__(state, parent)
        self.finder = finder
        self.overrides: dict[str, dict[str, float]] = {"write": {}, "read": {}}
        self.result = None
        self._base = None  # (trace, image, step) the fields hold
        self._mover: WindowMover | None = None
        self._mover_for = None  # (trace, image) of the mover
        self._filling = False
        self.head = QComboBox(objectName="windowHead")
        self.head.addItems(["write", "read"])
        self.fields: dict[str, QDoubleSpinBox] = {}
        row = QHBoxLayout()
        row.addWidget(self.head)
        for name in PARAM_COLUMNS:
            box = QDoubleSpinBox(objectName=f"window_{name}", decimals=3, prefix=f"{LABELS[name]} ")
            box.setRange(*RANGES[name])
            box.setSingleStep(0.5 if name in ("gx", "gy") else 0.1)
            box.setKeyboardTracking(False)  # typing runs the model once, when the value is complete
            box.valueChanged.connect(lambda value, name=name: self._on_field(name, value))
            self.fields[name] = box
            row.addWidget(box)
        self.reset_button = QPushButton("Reset", objectName="windowReset")
        self.show_button = QPushButton("Show in every panel", objectName="windowToDocument")
        row.addWidget(self.reset_button)
        self.step_label = QLabel(objectName="windowStep")
        self.step_label.setWordWrap(True)
        self.bound_label = QLabel(objectName="windowBound")
        self.bound_label.setWordWrap(True)
        self.message = grey_label(object_name="windowMessage")
        self.canvas_pane = ImagePane("moved run")
        self.canvas_pane.setObjectName("movedCanvas")
        self.canvas_pane.view_box.mouseDragEvent = self._on_drag  # a drag moves the window (no pan here)
        self.canvas_pane.graphics.setToolTip("drag: move the window's centre; wheel: zoom; double click: whole image")
        self.originals = {head: WindowOverlay(self.canvas_pane.view_box, colour, head)
                          for head, colour in (("write", WRITE_COLOUR), ("read", READ_COLOUR))}
        for overlay in self.originals.values():
            overlay.set_style(True, 0.3, DEFAULT_STYLE)
        self.moved = {head: WindowOverlay(self.canvas_pane.view_box, colour, head)
                      for head, colour in (("write", WRITE_COLOUR), ("read", READ_COLOUR))}
        self.final_pane = ImagePane("final canvas, moved")
        self.difference_pane = ImagePane("moved − original final canvas", levels=(-1.0, 1.0), colormap=DIVERGING)
        self.kl_plot = pg.PlotWidget(objectName="windowKlPlot")
        self.kl_plot.setMenuEnabled(False)
        self.kl_plot.setMinimumHeight(120)
        plot = self.kl_plot.getPlotItem()
        plot.setTitle("KL per step (nats): before (grey line), change (bars)", size="8pt")
        plot.setLabel("bottom", "step t")
        plot.showGrid(y=True, alpha=0.2)
        self.kl_before = plot.plot(pen=pg.mkPen(KL_BEFORE, width=1.5))
        self.kl_change = pg.BarGraphItem(x=[], height=[], width=0.8, brush=KL_CHANGE)
        plot.addItem(self.kl_change)

        panes = QGridLayout()
        panes.addWidget(self.canvas_pane, 0, 0)
        panes.addWidget(self.final_pane, 0, 1)
        panes.addWidget(self.difference_pane, 0, 2)
        for index in range(3):
            panes.setColumnStretch(index, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.step_label)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addLayout(panes, 2)
        layout.addWidget(self.bound_label)
        layout.addWidget(self.kl_plot, 1)
        layout.addWidget(self.show_button)

        self.runs = LatestRun(self)
        self.runs.done.connect(self._on_moved)
        self.runs.failed.connect(lambda text: self.message.setText(f"could not move the window: {text}"))
        self.head.currentTextChanged.connect(lambda _: self._fill())
        self.reset_button.clicked.connect(self.reset)
        self.show_button.clicked.connect(self.show_in_document)
        for signal in (state.source_changed, state.trace_changed, state.image_changed, state.step_changed):
            signal.connect(self._on_selection)

    # ------------------------------------------------------------------ the base: trace, image, step
    def _current_base(self):
        trace, step = self.document.trace, self.document.step
        if trace is None or step < 1:
            return None
        return trace, self.document.image_index, step - 1

    def _on_selection(self, *_) -> None:
        base = self._current_base()
        if base is None or self._base is None or not (same_base(base, self._base) and base[2] == self._base[2]):
            self._base, self.result = base, None
            self.overrides = {"write": {}, "read": {}}
            self._fill()

    def _params(self, head: str):
        """The trace's parameters (5,) of ``head`` at the base's step, or None."""
        if self._base is None:
            return None
        trace, image, step = self._base
        params = trace.write_params if head == "write" else trace.read_params
        return None if params is None else params[image, step]

    def _fill(self) -> None:
        """Fields: the head's overridden values, else the trace's."""
        params = self._params(self.head.currentText())
        self._filling = True
        for column, (name, box) in enumerate(self.fields.items()):
            box.setEnabled(params is not None)
            if params is not None:
                box.setValue(self.overrides[self.head.currentText()].get(name, float(params[column])))
        self._filling = False
        self.mark_dirty()

    def reset(self) -> None:
        """Back to the trace's windows."""
        self.overrides = {"write": {}, "read": {}}
        self.result = None
        self._fill()

    # ------------------------------------------------------------------ moving
    def _on_field(self, name: str, value: float) -> None:
        if self._filling or self._base is None:
            return
        self.overrides[self.head.currentText()][name] = float(value)
        self.run()

    def set_window(self, head: str, **values: float) -> None:
        """Override ``values`` (e.g. gx=14, gy=9) of ``head``'s window at the timeline's step, and run."""
        if head != self.head.currentText():
            self.head.setCurrentText(head)
        self.overrides[head].update({name: float(value) for name, value in values.items()})
        self._fill()
        self.run()

    def run(self) -> bool:
        """Run steps t..T again with the overridden windows (in the background, the latest first)."""
        base = self._base
        if base is None:
            self.message.setText("move the timeline to a step t ≥ 1: the window of that step is the one moved")
            return False
        trace, image, step = base
        loaded, why = self.finder.for_trace(trace)
        if loaded is None:
            self.message.setText(why)
            return False
        write, read = dict(self.overrides["write"]) or None, dict(self.overrides["read"]) or None
        if not write and not read:
            self.result = None
            self.mark_dirty()
            return False
        mover = self._mover_of(loaded.model, trace, image)
        self.runs.submit("move window", lambda: mover.move(step, write=write, read=read),
                         tag=(self.document.generation, base, write, read))
        return True

    def _mover_of(self, model, trace, image: int) -> WindowMover:
        """The mover of (trace, image), kept while the user drags (made anew for another image or model)."""
        if self._mover is None or not same_base(self._mover_for, (trace, image)) or self._mover.run.model is not model:
            self._mover = WindowMover(model, trace, image)
            self._mover_for = (trace, image)
        return self._mover

    def _on_moved(self, tag, result) -> None:
        generation, base, write, read = tag
        if generation != self.document.generation or self._base is None or not same_base(base, self._base) \
                or base[2] != self._base[2]:
            return
        if (write or {}) != self.overrides["write"] or (read or {}) != self.overrides["read"]:
            return  # a later change is on its way
        self.result = result
        self.message.setText(f"steps {base[2]}..{base[0].steps - 1} drawn again in "
                             f"{self.runs.last_seconds * 1000:.0f} ms")
        self.mark_dirty()
        if self.isVisible():  # a drag: show each run as it arrives (one at a time), not at the timer's next tick
            self.refresh()

    def _on_drag(self, event, axis=None) -> None:
        event.accept()
        if self._base is None or self._params(self.head.currentText()) is None:
            return
        point = self.canvas_pane.view_box.mapToView(event.pos())
        # view x spans pixel j as [j, j+1]; the paper's 1-based centre of pixel j is j + 1
        self.set_window(self.head.currentText(), gx=round(point.x() + 0.5, 2), gy=round(point.y() + 0.5, 2))

    def show_in_document(self) -> None:
        if self.result is not None:
            self.document.add_trace(self.result.trace, show=True, image_index=0)

    # ------------------------------------------------------------------ drawing
    def redraw(self) -> None:
        base = self._base
        self.show_button.setEnabled(self.result is not None)
        trace = self.document.trace
        loaded, why = self.finder.for_trace(trace)
        if base is None or loaded is None:
            self.step_label.setText(why if loaded is None else "move the timeline to a step t ≥ 1")
            for pane in (self.canvas_pane, self.final_pane, self.difference_pane):
                pane.show_message("no step chosen")
            for overlay in (*self.originals.values(), *self.moved.values()):
                overlay.place(None, 1, 1, 1)
            return
        trace, image, step = base
        cfg = trace.model_config
        reads = trace.mode == "reconstruct" and trace.read_params is not None
        self.step_label.setText(f"<b>step t = {step + 1}</b> (trace step {step}) of image {image}: type the "
                                "window's parameters (1-based pixels) or drag on the canvas below"
                                + ("" if reads else "; a generated trace has no read window and no encoder: "
                                   "only the canvas moves"))
        arrays = self.result.trace if self.result is not None else trace
        row = 0 if self.result is not None else image
        self.canvas_pane.show_image(_sigmoid(arrays.canvas[row, step + 1]))
        self.canvas_pane.set_title(f"{'moved' if self.result is not None else 'original'} canvas sigmoid(c_{step + 1})")
        for head, n in (("write", cfg.write_n), ("read", cfg.read_n)):
            original = self._params(head)
            params = arrays.write_params if head == "write" else arrays.read_params
            self.originals[head].place(original if self.result is not None else None, n, cfg.height, cfg.width)
            self.moved[head].place(params[row, step] if params is not None else None, n, cfg.height, cfg.width)
        final = _sigmoid(arrays.canvas[row, -1])
        self.final_pane.show_image(final)
        self.difference_pane.show_image(final - _sigmoid(trace.canvas[image, -1]))
        self._draw_information(step)

    def _draw_information(self, step: int) -> None:
        info = self.result.intervention if self.result is not None else {}
        if "bound_after" not in info:
            self.bound_label.setText("" if self.result is None else "no encoder ran (generated trace): no bound")
            self.kl_before.setData([], [])
            self.kl_change.setOpts(x=[], height=[])
            return
        change = info["bound_after"] - info["bound_before"]
        self.bound_label.setText(f"bound {info['bound_before']:.2f} → <b>{info['bound_after']:.2f} nats</b> "
                                 f"({change:+.2f}); KL of the later steps: {float(np.sum(info['kl_change'])):+.2f} "
                                 "nats in all")
        t = np.arange(1, len(info["kl_before"]) + 1)
        self.kl_before.setData(t, np.asarray(info["kl_before"], dtype=float))
        self.kl_change.setOpts(x=t[step:], height=np.asarray(info["kl_change"], dtype=float)[step:], width=0.8)
