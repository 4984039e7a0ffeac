"""Turning image tensors into pictures: grids, nearest-neighbour upscaling, PNG files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .files import atomic_write


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] (any shape) to uint8 0..255, with fixed levels (no rescaling); NaN becomes 0."""
    images = np.nan_to_num(np.asarray(images, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def tile(images: np.ndarray, columns: int | None = None, padding: int = 1, pad_value: int = 64) -> np.ndarray:
    """Tile images into one grid.

    Parameters
    ----------
    images : ndarray, shape (n, C, H, W), uint8
    columns : int, optional
        Images per row (default: a near-square grid).
    padding : int
        Pixels between images.

    Returns
    -------
    ndarray, shape (rows*(H+p)+p, cols*(W+p)+p, C), uint8
    """
    n, c, h, w = images.shape
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / columns))
    grid = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, c), pad_value, np.uint8)
    for i in range(n):
        top = padding + (i // columns) * (h + padding)
        left = padding + (i % columns) * (w + padding)
        grid[top:top + h, left:left + w] = images[i].transpose(1, 2, 0)
    return grid


def upscale(picture: np.ndarray, factor: int) -> np.ndarray:
    """Pixel-true (nearest neighbour) upscaling by an integer ``factor``; (H, W, C) -> (fH, fW, C)."""
    factor = max(int(factor), 1)
    return picture.repeat(factor, axis=0).repeat(factor, axis=1)


def save_png(path: str | Path, picture: np.ndarray) -> None:
    """Write an (H, W, 1|3) uint8 picture as PNG, atomically."""
    from PIL import Image

    mode_picture = picture[:, :, 0] if picture.shape[2] == 1 else picture
    image = Image.fromarray(np.ascontiguousarray(mode_picture))
    atomic_write(path, lambda temp: image.save(temp, format="PNG"))


def save_grid(path: str | Path, images: np.ndarray, columns: int | None = None, scale: int = 2) -> None:
    """Tile float images (n, C, H, W) in [0, 1], upscale by ``scale`` and save as PNG."""
    save_png(path, upscale(tile(to_uint8(images), columns), scale))
