"""A picture of any size as the model sees an image: its channels, its size, centred like an MNIST digit.

For a grey model (one channel) the picture is prepared the way MNIST's digits were
(LeCun et al., 1998), generalised to the model's size H x W:

1. grey levels in [0, 1]; a transparent pixel counts as background; a picture whose border is
   mostly bright (dark ink on paper) is inverted, so that the ink is bright on black
   (``invert=None``; True / False force it);
2. the bounding box of the ink (pixels above ``INK``) is cropped and resized, keeping its aspect
   ratio, to fit a box of round(20 H / 28) x round(20 W / 28) pixels (20 x 20 for 28 x 28; Lanczos,
   anti-aliased), unless it already fits that box exactly along its longer side;
3. it is placed in an H x W black image so that its centre of mass (0-based pixel indices) lies at
   (H / 2, W / 2), rounded to whole pixels and kept inside the image: MNIST's digits have their
   centre of mass there (14.0, 14.0 on average).

``centre=False`` skips steps 2-3 and resizes the whole picture to H x W instead. A colour model
gets the picture in RGB, its centre cropped to the model's aspect ratio and resized (no centring).
Finally a Bernoulli model sees the pixels binarised at 0.5; a discretised-logistic model sees them
rounded to the 256 levels k / 255.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import ModelConfig
from ..data.folder import open_picture
from ..errors import DrawStudioError

INK = 0.05  # a pixel above this grey level is ink (for the bounding box)
MNIST_SIDE, MNIST_BOX = 28, 20


def _resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """A float picture (h, w) resized to (height, width) with Lanczos (anti-aliased), clipped to [0, 1]."""
    from PIL import Image

    if array.shape == (height, width):
        return array
    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32))  # mode "F"
    return np.clip(np.asarray(image.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32), 0, 1)


def centre_by_mass(grey: np.ndarray, height: int, width: int) -> tuple[np.ndarray, dict]:
    """Steps 2-3 of the module docstring: ink (h, w) in [0, 1] -> (height, width), and what was done.

    Raises
    ------
    DrawStudioError
        The picture has no ink.
    """
    rows, cols = np.nonzero(grey > INK)
    if rows.size == 0:
        raise DrawStudioError("the drawing is empty (no pixel brighter than the background); draw something")
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    crop = grey[top:bottom, left:right]
    box_h, box_w = max(1, round(MNIST_BOX * height / MNIST_SIDE)), max(1, round(MNIST_BOX * width / MNIST_SIDE))
    scale = min(box_h / crop.shape[0], box_w / crop.shape[1])
    size = (max(1, min(box_h, round(crop.shape[0] * scale))), max(1, min(box_w, round(crop.shape[1] * scale))))
    crop = _resize(crop, *size)
    mass = crop.sum()
    if mass <= 0:
        raise DrawStudioError("the drawing is empty after resizing it to the model's size; draw larger strokes")
    y, x = np.indices(crop.shape)
    centre_y, centre_x = (y * crop).sum() / mass, (x * crop).sum() / mass  # within the crop
    top_at = int(np.clip(round(height / 2 - centre_y), 0, height - size[0]))
    left_at = int(np.clip(round(width / 2 - centre_x), 0, width - size[1]))
    out = np.zeros((height, width), dtype=np.float32)
    out[top_at:top_at + size[0], left_at:left_at + size[1]] = crop
    return out, {"ink_box": [int(top), int(left), int(bottom - top), int(right - left)], "resized_to": list(size),
                 "placed_at": [top_at, left_at]}


def _centre_crop(image, aspect: float):
    """The centre of a PIL image cropped to width / height = ``aspect``."""
    width, height = image.size
    if width / height > aspect:
        keep = round(height * aspect)
        return image.crop(((width - keep) // 2, 0, (width - keep) // 2 + keep, height))
    keep = round(width / aspect)
    return image.crop((0, (height - keep) // 2, width, (height - keep) // 2 + keep))


def load_drawing(path: str | Path, config: ModelConfig, centre: bool = True,
                 invert: bool | None = None) -> tuple[np.ndarray, dict]:
    """Read a picture file as the model sees an image (module docstring).

    Parameters
    ----------
    path : str or Path
        PNG, JPEG... of any size (at most 4096 on a side).
    config : ModelConfig
        The model's channels, size and likelihood.
    centre : bool
        Centre by mass like MNIST (grey models).
    invert : bool, optional
        Invert the grey levels; None: when the picture's border is mostly bright.

    Returns
    -------
    pixels : ndarray, shape (1, C, H, W), float32
        Binary for a Bernoulli model, levels k / 255 otherwise.
    info : dict
        What was done: ``file``, ``original_size`` (width, height), ``inverted``, ``centred`` and its
        details, ``pixels`` (``"binarised at 0.5"`` or ``"256 levels"``).
    """
    with open_picture(path, "pass another picture") as image:
        try:
            image.load()
        except (OSError, ValueError) as exc:
            raise DrawStudioError(f"cannot read image {path} ({' '.join(str(exc).split())}); pass another "
                                  "picture") from None
        pixels, info = prepare_picture(image, config, centre, invert)
    return pixels, {"file": Path(path).name, **info}


def prepare_picture(picture, config: ModelConfig, centre: bool = True,
                    invert: bool | None = None) -> tuple[np.ndarray, dict]:
    """:func:`load_drawing` for a picture in memory: a PIL image, or an array (h, w) or (h, w, 3|4).

    Arrays of floats are grey levels in [0, 1]; of integers, 0..255.
    """
    from PIL import Image

    if isinstance(picture, np.ndarray):
        array = picture
        if array.dtype.kind == "f":
            array = np.round(np.clip(array, 0, 1) * 255)
        picture = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
    height, width = config.height, config.width
    info = {"original_size": list(picture.size), "original_mode": picture.mode}
    rgba = picture.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    flat = Image.alpha_composite(background, rgba)  # transparent pixels count as black
    if config.channels == 1:
        grey = np.asarray(flat.convert("L"), dtype=np.float32) / 255  # (h, w)
        border = np.concatenate((grey[0], grey[-1], grey[:, 0], grey[:, -1]))
        inverted = bool(np.median(border) > 0.5) if invert is None else bool(invert)
        grey = 1 - grey if inverted else grey
        info["inverted"] = inverted
        if centre:
            grey, details = centre_by_mass(grey, height, width)
            info.update(centred=True, **details)
        else:
            grey = _resize(grey, height, width)
            info["centred"] = False
        pixels = grey[None]  # (1, H, W)
    else:
        rgb = _centre_crop(flat.convert("RGB"), width / height).resize((width, height), Image.Resampling.LANCZOS)
        pixels = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255  # (3, H, W)
        info.update(inverted=bool(invert), centred=False)
        if invert:
            pixels = 1 - pixels
    if config.likelihood == "bernoulli":
        pixels = (pixels >= 0.5).astype(np.float32)
        info["pixels"] = "binarised at 0.5"
    else:
        pixels = np.round(pixels * 255).astype(np.float32) / 255
        info["pixels"] = "256 levels"
    return pixels[None].astype(np.float32), info
