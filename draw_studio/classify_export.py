"""Pictures of a classify trace (an attention classifier's glimpses): one frame per glimpse t = 1..T.

For every image of the trace, frame t shows side by side

* the input, with the read window of glimpse t drawn as DRAW's read window is drawn
  (:mod:`draw_studio.window_style`, red), when ``windows`` is on;
* the glimpse itself (N x N, upscaled to the input's height, from 0 to its own largest value),
  framed in the read window's colour;

and under them one line of text: ``glimpse t/T: p(k)=0.93, label 7`` where k is the most probable
class after glimpse t (``(wrong)`` appended when k is not the label). The images are tiled in a
near-square grid (or ``columns`` wide). :mod:`draw_studio.export` writes these frames as PNG files,
a GIF or an MP4, as it does a DRAW trace's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .errors import DrawStudioError
from .images import to_uint8, upscale
from .window_style import DEFAULT_STYLE, paint_window, window_shape

READ_COLOUR = (255, 0, 0)
PADDING = 1  # pixels between the images' panels
GAP = 4  # pixels between the input and its glimpse
TEXT_HEIGHT = 14  # pixels of the text line under each panel (whatever the scale)
BACKGROUND = 32
TEXT_COLOUR = (235, 235, 235)
WRONG_COLOUR = (255, 110, 110)


def panel_shape(height: int, width: int, scale: int) -> tuple[int, int]:
    """(height, width) in pixels of one image's panel: input | glimpse, and the text line."""
    side = height * scale
    return side + TEXT_HEIGHT, width * scale + GAP + side


def classify_frame_shape(n: int, height: int, width: int, scale: int,
                         columns: int | None = None) -> tuple[int, int]:
    """(height, width) in pixels of a frame of ``n`` images of ``height`` x ``width`` at ``scale``."""
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / columns))
    panel_h, panel_w = panel_shape(height, width, scale)
    return rows * (panel_h + PADDING) + PADDING, columns * (panel_w + PADDING) + PADDING


def caption(trace, image: int, step: int) -> tuple[str, bool]:
    """The text line of ``image`` after glimpse ``step``, and whether the answer then is wrong."""
    probabilities = trace.class_probabilities[image, step - 1]  # (classes,)
    best = int(probabilities.argmax())
    text = f"glimpse {step}/{trace.steps}: p({best})={float(probabilities[best]):.2f}"
    if trace.labels is None:
        return text, False
    label = int(trace.labels[image])
    wrong = best != label
    return text + f", label {label}" + (" (wrong)" if wrong else ""), wrong


def _glimpse_picture(glimpse: np.ndarray, side: int) -> np.ndarray:
    """A glimpse (C, N, N) from 0 to its largest value, upscaled and centred in a ``side`` x ``side`` RGB square."""
    top = float(np.nanmax(glimpse)) if np.isfinite(glimpse).any() else 0.0
    pixels = to_uint8(glimpse / top if top > 1e-9 else np.zeros_like(glimpse))  # (C, N, N)
    picture = pixels.transpose(1, 2, 0)
    if picture.shape[2] == 1:
        picture = picture.repeat(3, axis=2)
    n = picture.shape[0]
    picture = upscale(picture, max(side // n, 1))[:side, :side]
    square = np.full((side, side, 3), BACKGROUND, np.uint8)
    offset = (side - picture.shape[0]) // 2
    square[offset:offset + picture.shape[0], offset:offset + picture.shape[1]] = picture
    square[[0, -1], :] = READ_COLOUR  # framed in the read window's colour: this is what the window read
    square[:, [0, -1]] = READ_COLOUR
    return square


def _write_text(panel: np.ndarray, text: str, colour: tuple[int, int, int]) -> None:
    """Draw ``text`` into the bottom TEXT_HEIGHT rows of ``panel`` (H, W, 3), left-aligned."""
    from PIL import Image, ImageDraw, ImageFont

    strip = Image.fromarray(np.ascontiguousarray(panel[-TEXT_HEIGHT:]))
    ImageDraw.Draw(strip).text((2, 1), text, fill=colour, font=ImageFont.load_default())
    panel[-TEXT_HEIGHT:] = np.asarray(strip)


def render_classify_frame(trace, step: int, scale: int = 2, windows: bool = True, columns: int | None = None,
                          style: str = DEFAULT_STYLE) -> np.ndarray:
    """The picture of glimpse ``step`` (1..T) of a classify trace.

    Returns
    -------
    ndarray, shape (H', W', 3), uint8
        :func:`classify_frame_shape` pixels.
    """
    if not 1 <= step <= trace.steps:
        raise DrawStudioError(f"glimpse {step} does not exist; a classify trace of {trace.steps} glimpses has "
                              f"frames 1..{trace.steps}")
    if scale < 1:
        raise DrawStudioError(f"scale must be a whole number of at least 1, got {scale}")
    cfg = trace.model_config
    n, height, width = trace.n, cfg.height, cfg.width
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    picture = np.full(classify_frame_shape(n, height, width, scale, columns) + (3,), BACKGROUND, np.uint8)
    panel_h, panel_w = panel_shape(height, width, scale)
    side = height * scale
    for i in range(n):
        panel = np.full((panel_h, panel_w, 3), BACKGROUND, np.uint8)
        image = to_uint8(trace.input[i]).transpose(1, 2, 0)  # (H, W, C)
        if image.shape[2] == 1:
            image = image.repeat(3, axis=2)
        region = upscale(image, scale)
        if windows:
            shape = window_shape(trace.read_params[i, step - 1], cfg.read_n, height, width)
            if shape is not None:
                paint_window(region, shape, scale, READ_COLOUR, style)
        panel[:side, :width * scale] = region
        panel[:side, width * scale + GAP:] = _glimpse_picture(trace.read_glimpse[i, step - 1], side)
        text, wrong = caption(trace, i, step)
        _write_text(panel, text, WRONG_COLOUR if wrong else TEXT_COLOUR)
        top = PADDING + (i // columns) * (panel_h + PADDING)
        left = PADDING + (i % columns) * (panel_w + PADDING)
        picture[top:top + panel_h, left:left + panel_w] = panel
    return picture


def classify_frames(trace, scale: int = 2, windows: bool = True, columns: int | None = None, multiple: int = 1,
                    style: str = DEFAULT_STYLE) -> Iterator[np.ndarray]:
    """Frames of glimpses 1..T, each padded at the bottom and right to a multiple of ``multiple`` pixels."""
    for step in range(1, trace.steps + 1):
        picture = render_classify_frame(trace, step, scale, windows, columns, style)
        if multiple > 1:
            h, w = picture.shape[:2]
            picture = np.pad(picture, ((0, -h % multiple), (0, -w % multiple), (0, 0)), constant_values=64)
        yield picture
