"""Pixel-true image widgets: one image (:class:`ImagePane`) or a clickable grid (:class:`TileGrid`).

Images are shown with nearest-neighbour scaling and fixed levels, never
rescaled to their own range, so two pictures can be compared by eye. An
:class:`ImagePane` zooms with the mouse wheel, pans with a drag, fits the
image again on a double click, and reports the pixel under the cursor
(:attr:`ImagePane.hovered`).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QLabel, QSizePolicy, QStackedLayout, QVBoxLayout, QWidget

DIVERGING = pg.ColorMap([0.0, 0.5, 1.0], [(40, 120, 255), (0, 0, 0), (255, 90, 40)])


def display_array(image: np.ndarray) -> np.ndarray:
    """One image (C, H, W) as pyqtgraph shows it: (H, W) grey or (H, W, 3) colour."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        return image
    return image[0] if image.shape[0] == 1 else np.ascontiguousarray(image.transpose(1, 2, 0))


def tile_images(images: np.ndarray, columns: int, padding: int = 1, pad_value: float = np.nan) -> np.ndarray:
    """Tile float images (n, C, h, w) into one (rows*(h+p)+p, columns*(w+p)+p[, 3]) array.

    The padding is NaN, which pyqtgraph leaves transparent: the gaps show the background whatever the levels.
    """
    n, c, h, w = images.shape
    rows = max(1, math.ceil(n / columns))
    grid = np.full((c, rows * (h + padding) + padding, columns * (w + padding) + padding), pad_value, np.float32)
    for i in range(n):
        top = padding + (i // columns) * (h + padding)
        left = padding + (i % columns) * (w + padding)
        grid[:, top:top + h, left:left + w] = images[i]
    return display_array(grid)


class ElidedLabel(QLabel):
    """A one-line label narrower than its text ends in "…" and has the whole text as its tooltip (a plain QLabel
    would cut both ends of a centred text); :meth:`text` is always the whole text."""

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        area = self.contentsRect()
        whole = self.text()
        shown = self.fontMetrics().elidedText(whole, Qt.TextElideMode.ElideRight, area.width())
        tip = whole if shown != whole else ""
        if self.toolTip() != tip:
            self.setToolTip(tip)
        painter = QPainter(self)
        self.style().drawItemText(painter, area, int(self.alignment()), self.palette(), self.isEnabled(), shown,
                                  QPalette.ColorRole.WindowText)


class PixelView(QWidget):
    """A title, then either an image area or a message saying why there is nothing to show."""

    def __init__(self, title: str = "", levels: tuple[float, float] = (0.0, 1.0),
                 colormap: pg.ColorMap | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.levels = levels
        self.default_title = title  # shown again with a message: a title of earlier data never stays
        self.title = ElidedLabel(title)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setMinimumWidth(20)  # a long title ends in "…", it never widens the dock
        self.graphics = pg.GraphicsView()
        self.graphics.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.graphics.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self.graphics.setMinimumSize(60, 60)
        self.view_box = pg.ViewBox(lockAspect=True, invertY=True, enableMouse=False, enableMenu=False)
        self.graphics.setCentralItem(self.view_box)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        if colormap is not None:
            self.image_item.setColorMap(colormap)
        self.view_box.addItem(self.image_item)
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #9a9a9a;")
        self._stack = QStackedLayout()
        self._stack.addWidget(self.graphics)
        self._stack.addWidget(self.message)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(1)
        layout.addWidget(self.title)
        layout.addLayout(self._stack, 1)

        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._shape: tuple[int, ...] = ()

    def set_title(self, text: str) -> None:
        self.title.setText(text)


    def show_message(self, text: str) -> None:
        """Replace the image by ``text`` (e.g. why this view is empty); the title goes back to its default."""
        self.title.setText(self.default_title)
        self.message.setText(text)
        self._stack.setCurrentWidget(self.message)

    def _set_array(self, array: np.ndarray, levels: tuple[float, float] | None = None) -> None:
        """Show a (H, W) or (H, W, 3) array with fixed levels, fitting the view when the size changes."""
        self._stack.setCurrentWidget(self.graphics)
        self.image_item.setImage(array, autoLevels=False, levels=levels or self.levels)
        if array.shape[:2] != self._shape:
            self._shape = array.shape[:2]
            self.fit_view()

    def fit_view(self) -> None:
        """Show the whole image (undo any zoom and pan)."""
        if self._shape:
            height, width = self._shape
            self.view_box.setRange(xRange=(0, width), yRange=(0, height), padding=0.02)

    def showing_image(self) -> bool:
        """True when the pane shows an image (not a message)."""
        return self._stack.currentWidget() is self.graphics

    def image_array(self) -> np.ndarray | None:
        """The array the image item shows now (for tests and export)."""
        return self.image_item.image


class ImagePane(PixelView):
    """One image (C, H, W), with optional items drawn over it; wheel zoom, drag pan, double click fits.

    Signals
    -------
    hovered(int, int) : the image pixel (x, y) under the cursor, (-1, -1) when there is none
    """

    hovered = Signal(int, int)

    def __init__(self, title: str = "", levels: tuple[float, float] = (0.0, 1.0),
                 colormap: pg.ColorMap | None = None, parent: QWidget | None = None) -> None:
        super().__init__(title, levels, colormap, parent)
        self.view_box.setMouseEnabled(x=True, y=True)
        self.view_box.setLimits(minXRange=2.0, minYRange=2.0)  # at most ~2 pixels across
        self.graphics.setToolTip("wheel: zoom, drag: pan, double click: whole image")
        self.graphics.scene().sigMouseMoved.connect(self._on_move)
        self.graphics.scene().sigMouseClicked.connect(self._on_click)
        self._leave = _LeaveWatcher(self)
        self.graphics.viewport().installEventFilter(self._leave)
        self.hovered_pixel = (-1, -1)

    def pixel_at(self, scene_pos) -> tuple[int, int]:
        """The image pixel (x, y) at a scene position, or (-1, -1) outside the image or without one."""
        if not self.showing_image() or not self._shape:
            return -1, -1
        point = self.view_box.mapSceneToView(scene_pos)
        x, y = math.floor(point.x()), math.floor(point.y())
        height, width = self._shape
        return (x, y) if 0 <= x < width and 0 <= y < height else (-1, -1)

    def value_at(self, x: int, y: int) -> np.ndarray | None:
        """The shown value(s) of pixel (x, y): a scalar array for grey, (3,) for colour; None outside."""
        image = self.image_array()
        if image is None or not (0 <= y < image.shape[0] and 0 <= x < image.shape[1]):
            return None
        return np.asarray(image[y, x])

    def _on_move(self, scene_pos) -> None:
        self._set_hovered(self.pixel_at(scene_pos))

    def _set_hovered(self, pixel: tuple[int, int]) -> None:
        if pixel != self.hovered_pixel:
            self.hovered_pixel = pixel
            self.hovered.emit(*pixel)

    def _on_click(self, event) -> None:
        if event.double() and event.button() == Qt.MouseButton.LeftButton:
            self.fit_view()

    def show_image(self, image: np.ndarray, levels: tuple[float, float] | None = None) -> None:
        """Show ``image`` (C, H, W) in the pane's fixed levels (or ``levels``)."""
        self._set_array(display_array(image), levels)


class _LeaveWatcher(QObject):
    """Tells a pane that the cursor left its image area (the scene reports moves only)."""

    def __init__(self, pane: ImagePane) -> None:
        super().__init__(pane)
        self.pane = pane

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Leave:
            self.pane._set_hovered((-1, -1))
        return False


class TileGrid(PixelView):
    """Images (n, C, h, w) in a grid; a click on a tile emits :attr:`tile_clicked`."""

    tile_clicked = Signal(int)

    def __init__(self, title: str = "", levels: tuple[float, float] = (0.0, 1.0),
                 colormap: pg.ColorMap | None = None, highlight_colour: str = "#ffd400",
                 parent: QWidget | None = None) -> None:
        super().__init__(title, levels, colormap, parent)
        self.count = 0
        self.columns = 1
        self.tile_size = (1, 1)
        self.highlighted = -1
        self._highlight = QGraphicsRectItem()
        pen = QPen(QColor(highlight_colour))
        pen.setCosmetic(True)
        pen.setWidthF(2.0)
        self._highlight.setPen(pen)
        self._highlight.setZValue(10)
        self._highlight.hide()
        self.view_box.addItem(self._highlight)
        self.graphics.scene().sigMouseClicked.connect(self._on_click)

    def show_tiles(self, images: np.ndarray, columns: int | None = None, highlight: int = -1,
                   levels: tuple[float, float] | None = None) -> None:
        """Show ``images`` (n, C, h, w) tiled ``columns`` wide, tile ``highlight`` framed."""
        n = len(images)
        self.count = n
        self.columns = columns or max(1, math.ceil(math.sqrt(n)))
        self.tile_size = tuple(images.shape[2:4])
        self._set_array(tile_images(images, self.columns), levels)
        self.set_highlight(highlight)

    def set_highlight(self, index: int) -> None:
        """Frame tile ``index`` (-1: none)."""
        self.highlighted = index
        if not 0 <= index < self.count:
            self._highlight.hide()
            return
        h, w = self.tile_size
        top = 1 + (index // self.columns) * (h + 1)
        left = 1 + (index % self.columns) * (w + 1)
        self._highlight.setRect(QRectF(left - 0.5, top - 0.5, w + 1, h + 1))
        self._highlight.show()

    def tile_at(self, x: float, y: float) -> int:
        """Index of the tile under view coordinates (x, y), or -1."""
        h, w = self.tile_size
        column, row = int((x - 1) // (w + 1)), int((y - 1) // (h + 1))
        if column < 0 or row < 0 or column >= self.columns:
            return -1
        index = row * self.columns + column
        return index if index < self.count else -1

    def _on_click(self, event) -> None:
        if self.count == 0 or event.button() != Qt.MouseButton.LeftButton:
            return
        point = self.view_box.mapSceneToView(event.scenePos())
        index = self.tile_at(point.x(), point.y())
        if index >= 0:
            self.tile_clicked.emit(index)
