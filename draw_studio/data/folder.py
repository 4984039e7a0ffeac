"""A folder of your own images (PNG, JPEG, BMP, GIF, TIFF, WebP, PPM/PGM), read with Pillow.

Choices:

* ``--data-dir`` is the folder itself; nothing else is searched and nothing is downloaded.
* The images are the files directly in it with an image extension, in sorted
  name order; other files and sub-folders are ignored (except ``test/``).
* No resizing: every image (``test/`` included) must have the size of the
  first one, or a DataError names the first file that differs and its size.
* Colour: every image is converted to RGB (an alpha channel is dropped, a GIF
  gives its first frame); if all of them are then grey (R = G = B everywhere)
  the set is grey (n, 1, H, W), else RGB (n, 3, H, W).
* Splits: all the images are the training part; ``valid`` is its last
  ``validation_size`` images and ``train`` the rest; ``test`` is the images of
  a ``test/`` sub-folder if there is one, else the same images as ``valid``.
* There are no labels.
* Size: at most ``MAX_SIDE`` x ``MAX_SIDE`` pixels (4096, the model's bound on
  an image side) per image; a larger file is refused from its header, before
  it is decoded, and a folder whose images would not fit in the memory
  available is refused before any is read.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..config import ModelConfig
from ..errors import DataError
from ..memory import check_fits
from .imageset import DatasetSpec, ImageSet

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
TEST_FOLDER = "test"
MAX_SIDE = ModelConfig.MAX_IMAGE_SIDE


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, in sorted name order."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)


def _too_large(path: Path, size: str, fix: str) -> DataError:
    return DataError(f"{path} is {size} pixels, larger than DRAW Studio reads ({MAX_SIDE}x{MAX_SIDE} at most); "
                     f"shrink it or {fix}")


def open_picture(path: str | Path, fix: str = "remove it from the folder") -> Image.Image:
    """Open a picture lazily (nothing decoded yet), refusing one larger than ``MAX_SIDE`` on a side.

    ``fix`` ends the message of an unusable file ("shrink it or FIX", "FIX or replace it").

    Raises
    ------
    DataError
        The file is missing, not a picture, or too large.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                image = Image.open(path)
            except Image.DecompressionBombError:
                raise _too_large(Path(path), _header_size(path), fix) from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"cannot read image {path} ({' '.join(str(exc).split())}); {fix} or replace it") from None
    width, height = image.size
    if width > MAX_SIDE or height > MAX_SIDE:
        image.close()
        raise _too_large(Path(path), f"{width}x{height}", fix)
    return image


def _header_size(path: str | Path) -> str:
    """'WxH' from the header of a picture Pillow refused as a decompression bomb (nothing is decoded)."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # only to read the header of this file; restored at once
    try:
        with Image.open(path) as image:
            return f"{image.size[0]}x{image.size[1]}"
    except Exception:  # noqa: BLE001 - the size is only for the message
        return f"more than {2 * (limit or 0):,}"
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _read_rgb(path: Path) -> np.ndarray:
    """One image as (H, W, 3) uint8."""
    try:
        with open_picture(path) as image, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"cannot read image {path} ({' '.join(str(exc).split())}); "
                        "remove it from the folder or replace it") from None


def _read_all(paths: list[Path], size: tuple[int, int] | None) -> list[np.ndarray]:
    """Every image of ``paths`` as (H, W, 3), all of one (width, height) ``size``."""
    images = []
    for path in paths:
        rgb = _read_rgb(path)
        got = (rgb.shape[1], rgb.shape[0])
        size = size or got
        if got != size:
            raise DataError(f"{path} is {got[0]}x{got[1]} but the images before it are {size[0]}x{size[1]}; "
                            "make all images of the folder the same size")
        images.append(rgb)
    return images


def load_folder(directory: Path, part: str) -> ImageSet | None:
    """Read part ``"train"`` (every image) or ``"test"`` (``test/``, or None if absent).

    Returns
    -------
    ImageSet or None
        images (n, 1, H, W) if all are grey else (n, 3, H, W), uint8; no labels.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory} is not a folder; pass --data-dir to a folder of images")
    train_paths = image_files(directory)
    if not train_paths:
        raise DataError(f"no images ({', '.join(EXTENSIONS)}) in {directory}; pass --data-dir to a folder of images")
    test_dir = directory / TEST_FOLDER
    test_paths = image_files(test_dir) if test_dir.is_dir() else []
    if part == "test" and not test_paths:
        return None
    with open_picture(train_paths[0]) as first:
        width, height = first.size
    count = len(train_paths) + len(test_paths)
    check_fits(3 * count * width * height * 3, f"reading {count:,} images of {width}x{height} pixels",
               "use fewer or smaller images")
    train = _read_all(train_paths, None)
    size = (train[0].shape[1], train[0].shape[0])
    test = _read_all(test_paths, size)
    grey = all((im[..., 0] == im[..., 1]).all() and (im[..., 0] == im[..., 2]).all() for im in train + test)
    chosen = train if part == "train" else test
    stacked = np.stack(chosen).transpose(0, 3, 1, 2)  # (n, H, W, 3) -> (n, 3, H, W)
    images = np.ascontiguousarray(stacked[:, :1] if grey else stacked)
    source = str(directory if part == "train" else test_dir)
    return ImageSet(images, None, False, source)


FOLDER = DatasetSpec("image folder", "", (), load_folder, needs_data_dir=True)
