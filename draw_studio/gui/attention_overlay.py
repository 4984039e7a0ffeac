"""Attention windows drawn over an image pane, and the controls that choose how.

The geometry and the style are the exporter's (:mod:`draw_studio.window_style`):
by default a thin outline of the filter grid's extent and a translucent band
of the filter width outside it, so the pixels under the window stay visible;
optionally the paper's border as wide as the filter. A window past the
image's edge is clipped, its cut sides dashed on the edge and marked by an
arrow; the pane's note says so in words.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QWidget,
)

from ..window_style import BAND_ALPHA, DEFAULT_STYLE, STYLE_NAMES, STYLES, WindowShape, marker_size, window_shape

DEFAULT_OPACITY = 0.8
OUTLINE_WIDTH = 1.5  # screen pixels, whatever the zoom


def _rect_path(rect) -> QPainterPath:
    path = QPainterPath()
    x0, x1, y0, y1 = rect
    path.addRect(QRectF(x0, y0, x1 - x0, y1 - y0))
    return path


class WindowOverlay:
    """One attention window (read or write) over a pane's view box.

    ``item`` is the parent of everything drawn: it is visible exactly when
    the window is drawn (shown, with finite parameters).
    """

    def __init__(self, view_box, colour: str, name: str) -> None:
        self.colour = QColor(colour)
        self.name = name
        self.shape: WindowShape | None = None
        self.enabled = True
        self.opacity = DEFAULT_OPACITY
        self.style = DEFAULT_STYLE
        self.item = QGraphicsRectItem()  # an empty rectangle holding the parts
        self.item.setPen(QPen(Qt.PenStyle.NoPen))
        self.item.setZValue(5)
        self.item.hide()
        self.band = QGraphicsPathItem(self.item)
        self.band.setPen(QPen(Qt.PenStyle.NoPen))
        self.outline = QGraphicsPathItem(self.item)
        self.cut = QGraphicsPathItem(self.item)  # the sides past the image, dashed on its edge
        self.markers = QGraphicsPathItem(self.item)
        view_box.addItem(self.item)

    def set_style(self, enabled: bool, opacity: float, style: str) -> None:
        """Show or hide the window, at ``opacity`` (0..1), in ``style`` (one of ``STYLES``)."""
        self.enabled, self.opacity, self.style = bool(enabled), min(max(float(opacity), 0.0), 1.0), style
        self._draw()

    def place(self, params, n: int, height: int, width: int) -> None:
        """Show the window of ``params`` (5,) for an N x N grid on a height x width image; None hides it."""
        self.shape = window_shape(params, n, height, width)
        self._draw()

    def note(self) -> str:
        """What the pane should say about this window ("" when it lies on the image or is not drawn)."""
        return self.shape.note(self.name) if self.shape is not None and self.item.isVisible() else ""

    def _colour(self, alpha: float) -> QColor:
        colour = QColor(self.colour)
        colour.setAlphaF(min(max(alpha, 0.0), 1.0))
        return colour

    def _draw(self) -> None:
        shape = self.shape
        if shape is None or not self.enabled or self.opacity <= 0:
            self.item.hide()
            return
        outer, inner = shape.band(self.style)
        band = QPainterPath()
        outer_clipped = shape.clip(outer)
        if outer_clipped is not None:
            band = _rect_path(outer_clipped)
            inner_clipped = shape.clip(inner) if inner[0] <= inner[1] and inner[2] <= inner[3] else None
            if inner_clipped is not None:
                band = band.subtracted(_rect_path(inner_clipped))
        self.band.setPath(band)
        alpha = BAND_ALPHA * self.opacity if self.style == "outline" else self.opacity
        self.band.setBrush(QBrush(self._colour(alpha)))
        line = QPen(self._colour(self.opacity))
        line.setCosmetic(True)
        line.setWidthF(OUTLINE_WIDTH)
        self.outline.setPen(line)
        self.outline.setPath(self._sides_path(shape, past=False) if self.style == "outline" else QPainterPath())
        dashed = QPen(line)
        dashed.setStyle(Qt.PenStyle.DashLine)
        self.cut.setPen(dashed)
        self.cut.setPath(self._sides_path(shape, past=True))
        self.markers.setPen(QPen(Qt.PenStyle.NoPen))
        self.markers.setBrush(QBrush(self._colour(max(self.opacity, 0.6))))  # a hint must stay visible
        self.markers.setPath(self._marker_path(shape))
        self.item.show()

    @staticmethod
    def _sides_path(shape: WindowShape, past: bool) -> QPainterPath:
        """The sides of the grid's extent clipped to the image: those on the image (``past`` False: the
        outline) or those past it, drawn along the image's edge (``past`` True: the dashed cut)."""
        path = QPainterPath()
        clipped = shape.clip(shape.grid)
        if clipped is None:
            return path
        x0, x1, y0, y1 = clipped
        sides = {"left": ((x0, y0), (x0, y1)), "right": ((x1, y0), (x1, y1)),
                 "top": ((x0, y0), (x1, y0)), "bottom": ((x0, y1), (x1, y1))}
        for side, (start, end) in sides.items():
            if (side in shape.past) == past:
                path.moveTo(QPointF(*start))
                path.lineTo(QPointF(*end))
        return path

    @staticmethod
    def _marker_path(shape: WindowShape) -> QPainterPath:
        """Arrows whose tips touch the image's edge, pointing at the part of the window beyond it."""
        path = QPainterPath()
        size = marker_size(shape.width, shape.height)
        inward = {"left": (1, 0), "right": (-1, 0), "top": (0, 1), "bottom": (0, -1)}
        for x, y, side in shape.markers(size):
            dx, dy = inward[side]
            base = (x + dx * size, y + dy * size)
            half = 0.6 * size
            path.addPolygon(QPolygonF([QPointF(x, y), QPointF(base[0] + dy * half, base[1] + dx * half),
                                       QPointF(base[0] - dy * half, base[1] - dx * half)]))
            path.closeSubpath()
        return path


WRITE_TIP = "show the write window (W)"


class WindowControls(QWidget):
    """Read / write toggles, the style and the opacity of the attention windows.

    Signals
    -------
    changed : any of them changed
    """

    changed = Signal()

    def __init__(self, read_colour: str, write_colour: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.read_toggle = self._toggle("read", read_colour, "show the read window (R)", "showReadWindow")
        self.write_toggle = self._toggle("write", write_colour, WRITE_TIP, "showWriteWindow")
        self.style_box = QComboBox(objectName="windowStyle")
        for style in STYLES:
            self.style_box.addItem(STYLE_NAMES[style], style)
        self.style_box.setToolTip("how a window is drawn (B switches)")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, objectName="windowOpacity")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(DEFAULT_OPACITY * 100))
        self.opacity_slider.setMaximumWidth(90)
        self.opacity_slider.setToolTip("opacity of the windows ([ and ])")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("windows:"))
        layout.addWidget(self.read_toggle)
        layout.addWidget(self.write_toggle)
        layout.addWidget(self.style_box)
        layout.addWidget(QLabel("opacity"))
        layout.addWidget(self.opacity_slider)
        layout.addStretch(1)
        for signal in (self.read_toggle.toggled, self.write_toggle.toggled, self.style_box.currentIndexChanged,
                       self.opacity_slider.valueChanged):
            signal.connect(self.changed)

    @staticmethod
    def _toggle(text: str, colour: str, tip: str, name: str) -> QToolButton:
        button = QToolButton(objectName=name)
        button.setText(text)
        button.setCheckable(True)
        button.setChecked(True)
        button.setToolTip(tip)
        button.setStyleSheet(f"QToolButton:checked {{ color: {colour}; font-weight: bold; }} "
                             "QToolButton:disabled { color: #808080; font-weight: normal; }")  # greyed when off
        return button

    def set_write_window(self, available: bool, why: str = "") -> None:
        """Enable the write toggle, or disable it with ``why`` as its tooltip (e.g. a model that only reads)."""
        self.write_toggle.setEnabled(available)
        self.write_toggle.setToolTip(WRITE_TIP if available else why)

    @property
    def opacity(self) -> float:
        return self.opacity_slider.value() / 100

    @property
    def style(self) -> str:
        return self.style_box.currentData()

    def set_opacity(self, opacity: float) -> None:
        self.opacity_slider.setValue(round(min(max(opacity, 0.0), 1.0) * 100))

    def next_style(self) -> None:
        self.style_box.setCurrentIndex((self.style_box.currentIndex() + 1) % self.style_box.count())
