"""A drawing pad at the model's image size, shown large: bright ink on black, as MNIST's digits are.

The pad holds grey levels in [0, 1], one per model pixel (H x W). The brush is round with a
soft edge one pixel wide, its diameter in model pixels; a stroke is painted along the segments
between the mouse positions (every quarter pixel), so fast strokes stay unbroken. The eraser is
the same brush taking ink away.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

GRID_FROM = 10  # screen pixels per model pixel from which the pixel grid is drawn


def brush_stamp(ink: np.ndarray, x: float, y: float, diameter: float, erase: bool = False) -> None:
    """Paint one round brush mark centred at (x, y) (pixel units: pixel (i, j) spans [j, j+1] x [i, i+1])."""
    height, width = ink.shape
    radius = diameter / 2
    reach = radius + 1
    top, bottom = max(0, int(math.floor(y - reach))), min(height, int(math.ceil(y + reach)))
    left, right = max(0, int(math.floor(x - reach))), min(width, int(math.ceil(x + reach)))
    if top >= bottom or left >= right:
        return
    rows, cols = np.mgrid[top:bottom, left:right]
    distance = np.hypot(cols + 0.5 - x, rows + 0.5 - y)  # from each pixel's centre
    strength = np.clip(radius + 0.5 - distance, 0.0, 1.0).astype(np.float32)  # soft edge one pixel wide
    block = ink[top:bottom, left:right]
    ink[top:bottom, left:right] = np.minimum(block, 1 - strength) if erase else np.maximum(block, strength)


class DrawingCanvas(QWidget):
    """Draw with the left mouse button; ``stroke_finished`` when it is released.

    Attributes
    ----------
    ink : ndarray, shape (H, W), float32
        Grey levels in [0, 1] (1: ink).
    diameter : float
        Brush diameter in model pixels.
    erasing : bool

    Signals
    -------
    stroke_finished() : a stroke ended (mouse released)
    changed() : the ink changed
    """

    stroke_finished = Signal()
    changed = Signal()

    def __init__(self, height: int = 28, width: int = 28, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ink = np.zeros((height, width), np.float32)
        self.diameter = 2.5
        self.erasing = False
        self._last: tuple[float, float] | None = None
        self.setMinimumSize(140, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("draw with the left mouse button; the model reconstructs your drawing when you let go")

    # ------------------------------------------------------------------ content
    def set_size(self, height: int, width: int) -> None:
        """Use a pad of ``height`` x ``width`` model pixels (cleared when the size changes)."""
        if self.ink.shape != (height, width):
            self.ink = np.zeros((height, width), np.float32)
            self.update()

    def set_ink(self, ink: np.ndarray) -> None:
        """Replace the drawing by ``ink`` (H, W) in [0, 1]."""
        self.ink = np.clip(np.asarray(ink, dtype=np.float32), 0, 1).copy()
        self.update()
        self.changed.emit()

    def clear(self) -> None:
        self.set_ink(np.zeros_like(self.ink))

    def invert(self) -> None:
        self.set_ink(1 - self.ink)

    @property
    def empty(self) -> bool:
        return not bool((self.ink > 0).any())

    def draw_stroke(self, points: list[tuple[float, float]], finish: bool = True) -> None:
        """Draw through ``points`` (x, y in model pixels) as a mouse stroke would; ``finish``: as if released."""
        for i, (x, y) in enumerate(points):
            self._paint_to(x, y, start=i == 0)
        self._last = None
        self.update()
        self.changed.emit()
        if finish:
            self.stroke_finished.emit()

    def _paint_to(self, x: float, y: float, start: bool) -> None:
        if start or self._last is None:
            brush_stamp(self.ink, x, y, self.diameter, self.erasing)
        else:
            x0, y0 = self._last
            count = max(1, int(math.ceil(math.hypot(x - x0, y - y0) * 4)))  # every quarter pixel
            for j in range(1, count + 1):
                brush_stamp(self.ink, x0 + (x - x0) * j / count, y0 + (y - y0) * j / count, self.diameter,
                            self.erasing)
        self._last = (x, y)

    # ------------------------------------------------------------------ geometry
    def image_rect(self) -> QRectF:
        """Where the pad is drawn: the largest rectangle of the pad's aspect in the widget, centred."""
        height, width = self.ink.shape
        scale = min(self.width() / width, self.height() / height)
        w, h = width * scale, height * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def to_pixels(self, position: QPointF) -> tuple[float, float]:
        """A widget position as pad coordinates (x, y) in model pixels."""
        rect = self.image_rect()
        height, width = self.ink.shape
        return ((position.x() - rect.x()) / rect.width() * width, (position.y() - rect.y()) / rect.height() * height)

    # ------------------------------------------------------------------ Qt events
    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.button() == Qt.MouseButton.LeftButton:
            self._paint_to(*self.to_pixels(event.position()), start=True)
            self.update()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.buttons() & Qt.MouseButton.LeftButton and self._last is not None:
            self._paint_to(*self.to_pixels(event.position()), start=False)
            self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if event.button() == Qt.MouseButton.LeftButton and self._last is not None:
            self._last = None
            self.changed.emit()
            self.stroke_finished.emit()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#202020"))
        grey = np.ascontiguousarray(np.round(self.ink * 255).astype(np.uint8))
        height, width = grey.shape
        image = QImage(grey.data, width, height, width, QImage.Format.Format_Grayscale8)
        rect = self.image_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(rect, image)
        if rect.width() / width >= GRID_FROM:  # a faint pixel grid: the model sees these squares
            pen = QPen(QColor(255, 255, 255, 28))
            pen.setCosmetic(True)
            painter.setPen(pen)
            for column in range(1, width):
                x = rect.x() + rect.width() * column / width
                painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
            for row in range(1, height):
                y = rect.y() + rect.height() * row / height
                painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
        painter.setPen(QPen(QColor("#606060")))
        painter.drawRect(rect)
        painter.end()
