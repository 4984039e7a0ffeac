"""Edit a latent: click a cell (t, k) of the Latents heatmap, then drag z_t[k] and watch the rest repaint.

The slider spans +-4 standard deviations of the prior N(0, 1); under it the trace's own value
(white) and, for a reconstruction, the posterior's mean and +-1 sigma (blue) are marked. While it
moves, :meth:`draw_studio.explore.LatentEditor.regenerate` draws steps t..T again (every other z
the trace's) in the background, the latest value first (:class:`~.explore_common.LatestRun`), so
the window never waits for it. The edited run is shown here: its canvas and write window at the
timeline's step, what that step wrote, its final canvas, and edited minus original final canvas.
The document keeps the trace the edit starts from (the heatmap being clicked stays the one shown);
"Show in every panel" makes the full edit (:meth:`LatentEditor.edit`, with the encoder's KL for a
reconstruction) the document's trace.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QStyle, QVBoxLayout, QWidget

from ..explore import LatentEditor
from ..explore.edit import PRIOR_RANGE
from .attention_overlay import WindowOverlay
from .document import Document
from .explore_common import LatestRun, ModelFinder, grey_label, same_base
from .image_view import DIVERGING, ImagePane
from .panel import Panel
from .timeline_panel import WRITE_COLOUR

TICKS = 100  # slider positions per prior sigma


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


class ValueScale(QWidget):
    """The slider's scale: -4..4 with the trace's value and the posterior's mean +-1 sigma marked."""

    def __init__(self, slider: QSlider, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slider = slider
        self.original: float | None = None
        self.posterior: tuple[float, float] | None = None  # (mu, sigma)
        self.setFixedHeight(26)

    def set_marks(self, original: float | None, posterior: tuple[float, float] | None) -> None:
        self.original, self.posterior = original, posterior
        self.update()

    def _x(self, value: float) -> float:
        handle = self.slider.style().pixelMetric(QStyle.PixelMetric.PM_SliderLength, None, self.slider)
        span = self.width() - handle
        return handle / 2 + (min(max(value, -PRIOR_RANGE), PRIOR_RANGE) + PRIOR_RANGE) / (2 * PRIOR_RANGE) * span

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        grey = QPen(QColor("#9a9a9a"))
        painter.setPen(grey)
        for tick in range(-int(PRIOR_RANGE), int(PRIOR_RANGE) + 1):
            x = self._x(tick)
            painter.drawLine(QPointF(x, 0), QPointF(x, 4))
            painter.drawText(QRectF(x - 14, 5, 28, 12), Qt.AlignmentFlag.AlignCenter, f"{tick:+d}" if tick else "0")
        if self.posterior is not None:
            mu, sigma = self.posterior
            blue = QColor("#4da6ff")
            painter.fillRect(QRectF(self._x(mu - sigma), 19, self._x(mu + sigma) - self._x(mu - sigma), 3), blue)
            x = self._x(mu)
            painter.setBrush(blue)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawPolygon(QPolygonF([QPointF(x, 17), QPointF(x - 5, 26), QPointF(x + 5, 26)]))
        if self.original is not None:
            x = self._x(self.original)
            painter.setPen(QPen(QColor("#ffffff"), 2))
            painter.drawLine(QPointF(x, 16), QPointF(x, 26))
        painter.end()


class LatentEditPanel(Panel):
    """Set z_t[k] of the shown image with a slider; the model draws steps t..T again as it moves.

    Attributes
    ----------
    cell : tuple of (int, int) or None
        (step s = 0..T-1 as in traces, the paper's t = s + 1; latent k).
    edited : dict or None
        The last regeneration: ``canvas`` (1, T+1, C, H, W), ``z`` and with write attention
        ``write_params`` (1, T, 5), as numpy arrays.
    edited_value : float or None
        The value of z_t[k] it was drawn with.
    """

    title = "Edit a latent"
    dock_name = "latentEdit"

    def __init__(self, state: Document, finder: ModelFinder, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.finder = finder
        self.cell: tuple[int, int] | None = None
        self.edited: dict | None = None
        self.edited_value: float | None = None
        self._editor: LatentEditor | None = None
        self._editor_for = None  # (trace, image) of the editor
        self.cell_label = QLabel("click a cell (t, k) of the Latents heatmap", objectName="latentCell")
        self.cell_label.setWordWrap(True)
        self.slider = QSlider(Qt.Orientation.Horizontal, objectName="latentSlider")
        self.slider.setRange(-int(PRIOR_RANGE * TICKS), int(PRIOR_RANGE * TICKS))
        self.slider.setEnabled(False)
        self.scale = ValueScale(self.slider)
        self.value_label = QLabel(objectName="latentValue")
        self.value_label.setMinimumWidth(80)
        self.reset_button = QPushButton("Reset", objectName="latentReset")
        self.show_button = QPushButton("Show in every panel", objectName="editToDocument")
        self.show_button.setToolTip("make the edited image the trace every panel shows (with the encoder's KL "
                                    "for a reconstruction)")
        self.canvas_pane = ImagePane("edited canvas")
        self.canvas_pane.setObjectName("editedCanvas")
        self.write_box = WindowOverlay(self.canvas_pane.view_box, WRITE_COLOUR, "write")
        self.increment_pane = ImagePane("written by step t (edited)", colormap=DIVERGING)
        self.final_pane = ImagePane("edited final canvas")
        self.final_pane.setObjectName("editedFinal")
        self.difference_pane = ImagePane("edited − original final canvas", levels=(-1.0, 1.0), colormap=DIVERGING)
        self.difference_pane.setObjectName("editDifference")
        self.message = grey_label(object_name="latentMessage")

        slider_column = QVBoxLayout()
        slider_column.setSpacing(0)
        slider_column.addWidget(self.slider)
        slider_column.addWidget(self.scale)
        row = QHBoxLayout()
        row.addLayout(slider_column, 1)
        row.addWidget(self.value_label)
        row.addWidget(self.reset_button)
        panes = QGridLayout()
        panes.addWidget(self.canvas_pane, 0, 0)
        panes.addWidget(self.increment_pane, 0, 1)
        panes.addWidget(self.final_pane, 1, 0)
        panes.addWidget(self.difference_pane, 1, 1)
        for index in range(2):
            panes.setRowStretch(index, 1)
            panes.setColumnStretch(index, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.cell_label)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addLayout(panes, 1)
        layout.addWidget(self.show_button)

        self.runs = LatestRun(self)
        self.runs.done.connect(self._on_regenerated)
        self.runs.failed.connect(lambda text: self.message.setText(f"edit failed: {text}"))
        self.edit_runs = LatestRun(self)
        self.edit_runs.done.connect(self._on_full_edit)
        self.edit_runs.failed.connect(lambda text: self.message.setText(f"edit failed: {text}"))
        self.slider.valueChanged.connect(lambda position: self.set_value(position / TICKS))
        self.reset_button.clicked.connect(self.reset)
        self.show_button.clicked.connect(self.show_in_document)
        state.source_changed.connect(self._forget)
        state.trace_changed.connect(self._forget_if_other)
        state.image_changed.connect(self._forget_if_other)

    # ------------------------------------------------------------------ selection
    def _editor_now(self) -> LatentEditor | None:
        """The editor of the shown image (made anew when the trace or the image changed)."""
        trace, image = self.document.trace, self.document.image_index
        loaded, why = self.finder.for_trace(trace)
        if loaded is None:
            self.message.setText(why)
            return None
        if self._editor is None or not same_base(self._editor_for, (trace, image)) \
                or self._editor.run.model is not loaded.model:
            self._editor = LatentEditor(loaded.model, trace, image)
            self._editor_for = (trace, image)
        return self._editor

    def select_cell(self, step: int, latent: int) -> bool:
        """Edit z_step[latent] (step 0..T-1) of the shown image; the slider starts at its value."""
        editor = self._editor_now()
        if editor is None:
            return False
        trace, image = self._editor_for
        self.cell = (int(step), int(latent))
        self.edited = self.edited_value = None
        original = float(trace.z[image, step, latent])
        posterior = None
        if trace.mu is not None and trace.sigma is not None:
            posterior = (float(trace.mu[image, step, latent]), float(trace.sigma[image, step, latent]))
        self.scale.set_marks(original, posterior)
        where = f"z_t[k] with t = {step + 1} (trace step {step}), k = {latent}, image {image}"
        known = f"trace's value {original:+.3f} (white)"
        if posterior is not None:
            known += f", posterior mean {posterior[0]:+.3f} ± {posterior[1]:.3f} (blue)"
        self.cell_label.setText(f"<b>{where}</b>: {known}; the slider spans ±{PRIOR_RANGE:g} σ of the prior")
        self.slider.setEnabled(True)
        self.slider.blockSignals(True)
        self.slider.setValue(int(round(original * TICKS)))
        self.slider.blockSignals(False)
        self.set_value(original)
        return True

    def reset(self) -> None:
        """Back to the trace's own value."""
        if self.cell is not None and self._editor_for is not None:
            trace, image = self._editor_for
            self.slider.setValue(int(round(float(trace.z[image, self.cell[0], self.cell[1]]) * TICKS)))

    def set_value(self, value: float) -> None:
        """Draw the edit with z_t[k] = ``value`` (in the background; the latest value wins)."""
        editor = self._editor_now() if self.cell is not None else None
        if editor is None:
            return
        self.value_label.setText(f"z = {value:+.2f}")
        step, latent = self.cell
        tag = (self.document.generation, self._editor_for, step, latent, value)

        def regenerate():
            arrays = editor.regenerate(step, latent, value)
            return {name: array.float().cpu().numpy() for name, array in arrays.items()}

        self.runs.submit("edit", regenerate, tag=tag)

    def _on_regenerated(self, tag, arrays) -> None:
        generation, base, step, latent, value = tag
        if (generation != self.document.generation or not same_base(base, self._editor_for)
                or (step, latent) != self.cell):
            return
        self.edited, self.edited_value = arrays, value
        self.message.setText(f"steps {step}..{arrays['canvas'].shape[1] - 2} drawn again in "
                             f"{self.runs.last_seconds * 1000:.0f} ms")
        self.mark_dirty()
        if self.isVisible():  # a drag: show each regeneration as it arrives (one at a time), not at the timer's tick
            self.refresh()

    def show_in_document(self) -> None:
        """The full edit (core ``LatentEditor.edit``) as the document's shown trace."""
        if self.cell is None or self.edited_value is None or self._editor is None:
            return
        editor, (step, latent), value = self._editor, self.cell, self.edited_value
        self.edit_runs.submit("edit", lambda: editor.edit(step, latent, value), tag=self.document.generation)

    def _on_full_edit(self, generation, result) -> None:
        if generation == self.document.generation:
            info = result.intervention
            if "bound_after" in info:
                self.message.setText(f"bound {info['bound_before']:.2f} → {info['bound_after']:.2f} nats; every "
                                     "panel shows the edited image")
            self.document.add_trace(result.trace, show=True, image_index=0)

    def _forget(self, *_) -> None:
        self.cell = self.edited = self.edited_value = None
        self._editor = self._editor_for = None
        self.slider.setEnabled(False)
        self.scale.set_marks(None, None)
        self.value_label.setText("")
        self.cell_label.setText("click a cell (t, k) of the Latents heatmap")
        self.message.setText("")

    def _forget_if_other(self, *_) -> None:
        """Another trace or image is shown: an edit of the one before no longer applies."""
        if self._editor_for is not None and not same_base(self._editor_for,
                                                          (self.document.trace, self.document.image_index)):
            self._forget()

    # ------------------------------------------------------------------ drawing
    def redraw(self) -> None:
        self.show_button.setEnabled(self.edited is not None)
        self.reset_button.setEnabled(self.cell is not None)
        if self.edited is None or self._editor_for is None:
            text = "click a cell of the Latents heatmap" if self.cell is None else "drawing…"
            for pane in (self.canvas_pane, self.increment_pane, self.final_pane, self.difference_pane):
                pane.show_message(text)
            self.write_box.place(None, 1, 1, 1)
            return
        trace, image = self._editor_for
        canvas = self.edited["canvas"][0]  # (T+1, C, H, W)
        steps = canvas.shape[0] - 1
        s = min(self.document.step, steps)
        self.canvas_pane.show_image(_sigmoid(canvas[s]))
        self.canvas_pane.set_title(f"edited canvas sigmoid(c_{s})")
        cfg = trace.model_config
        write = self.edited.get("write_params")
        self.write_box.place(write[0, s - 1] if write is not None and s >= 1 else None, cfg.write_n, cfg.height,
                             cfg.width)
        if s >= 1:
            written = canvas[s] - canvas[s - 1]
            top = max(float(np.abs(written).max()), 1e-6)
            self.increment_pane.show_image(written, levels=(-top, top))
            self.increment_pane.set_title(f"edited c_{s} − c_{s - 1} (±{top:.2g})")
        else:
            self.increment_pane.show_message("t = 0: nothing written yet")
        final = _sigmoid(canvas[-1])
        self.final_pane.show_image(final)
        difference = final - _sigmoid(trace.canvas[image, -1])
        self.difference_pane.show_image(difference)
        self.difference_pane.set_title(f"edited − original final (max |Δ| {float(np.abs(difference).max()):.2f})")
