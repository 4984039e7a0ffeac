"""Cluttered MNIST: one MNIST digit on a large black canvas among small crops of other digits.

The recipe of the public generator of the recurrent attention papers (Mnih et al., 2014; Ba et al.,
2015; the DRAW paper's section 4.1 and Table 1), as implemented here:

* a black ``canvas`` x ``canvas`` image (default 100 x 100);
* the digit (28 x 28) pasted at a position drawn uniformly among those where it lies fully inside;
* ``distractors`` (default 8) distractors, each a ``distractor_size`` x ``distractor_size`` (default
  8 x 8) crop, at a uniformly drawn position inside the digit image, of another image of the same
  split (never the digit's own image), pasted at a uniformly drawn position fully inside the canvas;
* everything added up and clipped to [0, 1] (here: to 255 on the 0..255 grey levels, the same
  numbers), stored as uint8.

Image i of a split is built around digit i of the same MNIST split and keeps its label, so a split
has as many images as its source: train 50,000 (MNIST's first 50,000 training images), valid 10,000
(the last ``validation_size`` training images), test 10,000 (MNIST's test images; their clutter
comes from test digits only). The random stream of a split is numpy's PCG64 seeded with
``SeedSequence([seed, split number])``; the draws are, in this order, the digit rows, the digit
columns, the distractor sources, their crop rows and columns, and their rows and columns on the canvas
(every position 0-based, top-left corner). :func:`clutter_digits` returns these positions with the
images.

Fresh clutter (``draw-studio train --clutter fresh``, the attention classifier's default): instead of
the cached training split, every epoch of a run sees its training digits cluttered anew by the same
recipe, from the stream ``SeedSequence([seed, 3, run seed, epoch])``; digit i keeps its place and
label, only its position and distractors change. Like dynamic binarisation for DRAW, it keeps a
classifier from learning one fixed clutter by heart. Validation and test are always the cached splits.

A split is built once and cached in ``$XDG_CACHE_HOME/draw-studio/cluttered-mnist/`` (default
``~/.cache``), one ``.npz`` file per split, named by its settings and a fingerprint of its source
digits, written atomically; a cache file that cannot be read, or does not hold what its name says,
is built again and replaced.
"""

from __future__ import annotations

import functools
import hashlib
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ..errors import DataError, DrawStudioError
from ..files import atomic_write
from .imageset import DatasetSpec, ImageSet
from .locate import cache_dir
from .mnist import IDX_FILES, download_mnist, load_idx_pair

CANVAS, DISTRACTORS, DISTRACTOR_SIZE = 100, 8, 8
SEED = 1502_04623
SPLIT_NUMBERS = {"train": 0, "valid": 1, "test": 2}
FRESH_STREAM = 3  # the streams of fresh training clutter: SeedSequence([seed, FRESH_STREAM, run seed, epoch])
CACHE_VERSION = 1
CHUNK = 4096  # images built at a time (bounds the index arrays)


@dataclass
class ClutteredDigits:
    """A cluttered split and where everything in it came from.

    Attributes
    ----------
    images : ndarray, shape (n, C, canvas, canvas), uint8
    labels : ndarray, shape (n,), int64, or None
        The label of each image's digit (digit i of the source split).
    digit_position : ndarray, shape (n, 2), int64
        Row and column of the digit's top-left pixel on the canvas.
    distractor_source : ndarray, shape (n, k), int64
        Index in the source split of the image each distractor was cut from (never i itself).
    distractor_crop : ndarray, shape (n, k, 2), int64
        Row and column of each crop's top-left pixel in its source image.
    distractor_position : ndarray, shape (n, k, 2), int64
        Row and column of each distractor's top-left pixel on the canvas.
    """

    images: np.ndarray
    labels: np.ndarray | None
    digit_position: np.ndarray
    distractor_source: np.ndarray
    distractor_crop: np.ndarray
    distractor_position: np.ndarray


def clutter_digits(source: ImageSet, seed: int, canvas: int = CANVAS, distractors: int = DISTRACTORS,
                   distractor_size: int = DISTRACTOR_SIZE) -> ClutteredDigits:
    """Place every digit of ``source`` on a cluttered canvas (see the module docstring).

    Parameters
    ----------
    source : ImageSet
        Digit images (n, C, h, w), grey levels 0..255, n >= 2 when there are distractors.
    seed : int
        Seed of the PCG64 stream (one per split: see :func:`split_seed`).
    canvas : int
        Side of the square output images, at least the digits' sides.
    distractors : int
        Distractors per image (0: the digit alone).
    distractor_size : int
        Side of each square distractor crop, at most the digits' sides.

    Returns
    -------
    ClutteredDigits

    Raises
    ------
    DataError
        Settings that do not fit the digits.
    """
    n, channels, height, width = source.images.shape
    _check_settings(source, canvas, distractors, distractor_size)
    rng = np.random.Generator(np.random.PCG64(seed))
    rows = rng.integers(0, canvas - height + 1, size=n)
    cols = rng.integers(0, canvas - width + 1, size=n)
    others = rng.integers(1, max(n, 2), size=(n, distractors))
    distractor_source = (np.arange(n)[:, None] + others) % n  # (n, k): never the image's own digit
    crop = np.stack((rng.integers(0, height - distractor_size + 1, size=(n, distractors)),
                     rng.integers(0, width - distractor_size + 1, size=(n, distractors))), axis=-1)  # (n, k, 2)
    position = np.stack((rng.integers(0, canvas - distractor_size + 1, size=(n, distractors)),
                         rng.integers(0, canvas - distractor_size + 1, size=(n, distractors))), axis=-1)
    images = np.zeros((n, channels, canvas, canvas), dtype=np.uint8)  # (n, C, S, S)
    for start in range(0, n, CHUNK):
        part = slice(start, min(start + CHUNK, n))
        _paste(source.images, part, images[part], rows[part], cols[part], distractor_source[part], crop[part],
               position[part], distractor_size)
    labels = None if source.labels is None else np.asarray(source.labels, dtype=np.int64)
    return ClutteredDigits(images, labels, np.stack((rows, cols), axis=-1).astype(np.int64),
                           distractor_source.astype(np.int64), crop.astype(np.int64), position.astype(np.int64))


def _check_settings(source: ImageSet, canvas: int, distractors: int, distractor_size: int) -> None:
    n, _, height, width = source.images.shape
    if source.binary:
        raise DataError("cluttered digits are built from grey images (0..255), not binary ones; use MNIST")
    if not height <= canvas or not width <= canvas:
        raise DataError(f"a canvas of {canvas}x{canvas} cannot hold digits of {height}x{width}; use a canvas of at "
                        f"least {max(height, width)}")
    if distractors < 0:
        raise DataError(f"the number of distractors must be 0 or more, got {distractors}")
    if distractors and not 1 <= distractor_size <= min(height, width):
        raise DataError(f"distractor crops of {distractor_size}x{distractor_size} do not fit in digits of "
                        f"{height}x{width}; use a size from 1 to {min(height, width)}")
    if distractors and n < 2:
        raise DataError(f"distractors are cut from other digits of the split, but it holds {n}; use more digits")


def _paste(digits: np.ndarray, index: slice, out: np.ndarray, rows, cols, sources, crop, position,
           size: int) -> None:
    """Fill ``out`` (m, C, S, S), zeros, with images ``index`` of the split: the digit plus every distractor.

    Every addend is non-negative, so adding one piece at a time with the sum clipped to 255 gives
    min(total, 255): the clipping of the recipe, without a wider copy of the canvas.
    """
    m = len(rows)
    channels, height, width = digits.shape[1:]
    image = np.arange(m)[:, None, None, None]  # (m, 1, 1, 1)
    channel = np.arange(channels)[None, :, None, None]  # (1, C, 1, 1)
    down, across = np.arange(height)[None, None, :, None], np.arange(width)[None, None, None, :]
    out[image, channel, rows[:, None, None, None] + down, cols[:, None, None, None] + across] = digits[index]
    down, across = np.arange(size)[None, None, :, None], np.arange(size)[None, None, None, :]
    for k in range(sources.shape[1]):  # one distractor of every image at a time: no pixel twice in one add
        pieces = digits[sources[:, k, None, None, None], channel, crop[:, k, 0, None, None, None] + down,
                        crop[:, k, 1, None, None, None] + across]  # (m, C, size, size)
        where = (image, channel, position[:, k, 0, None, None, None] + down,
                 position[:, k, 1, None, None, None] + across)
        out[where] = np.minimum(out[where].astype(np.uint16) + pieces, 255)


def split_seed(seed: int, split: str) -> int:
    """The seed of split ``split``'s stream: 128 bits of ``SeedSequence([seed, split number])``."""
    return stream_seed(int(seed), SPLIT_NUMBERS[split])


def stream_seed(*entropy: int) -> int:
    """128 bits of ``SeedSequence(list(entropy))`` as one int (a PCG64 seed)."""
    state = np.random.SeedSequence(list(entropy)).generate_state(4, np.uint32)
    return int.from_bytes(state.tobytes(), "little")


class FreshClutter:
    """The training digits of a run cluttered anew for every epoch (module docstring, "Fresh clutter").

    Parameters
    ----------
    source : ImageSet
        The training digits the cached training split is built from (n, C, h, w), grey levels 0..255.
    settings : ClutterSettings
        The dataset's options (canvas, distractors, crop size, seed).
    run_seed : int
        The run's seed: two runs of different seeds see different clutter.

    Raises
    ------
    DataError
        Settings that do not fit the digits.
    """

    def __init__(self, source: ImageSet, settings: ClutterSettings, run_seed: int) -> None:
        _check_settings(source, settings.canvas, settings.distractors, settings.distractor_size)
        self.source, self.settings, self.run_seed = source, settings, int(run_seed)

    def seed(self, epoch: int) -> int:
        """The seed of epoch ``epoch``'s clutter: 128 bits of ``SeedSequence([seed, 3, run seed, epoch])``."""
        return stream_seed(int(self.settings.seed), FRESH_STREAM, self.run_seed, int(epoch))

    def digits(self, epoch: int) -> ClutteredDigits:
        """Epoch ``epoch``'s cluttered training images (n, C, canvas, canvas) uint8 and where everything came from."""
        cfg = self.settings
        return clutter_digits(self.source, self.seed(epoch), cfg.canvas, cfg.distractors, cfg.distractor_size)

    def images(self, epoch: int) -> np.ndarray:
        """Epoch ``epoch``'s cluttered training images (n, C, canvas, canvas) uint8, image i built around digit i."""
        return self.digits(epoch).images


# ---------------------------------------------------------------------- the cache
def cluttered_cache_dir() -> Path:
    """Where built splits are kept: ``$XDG_CACHE_HOME/draw-studio/cluttered-mnist`` (default ``~/.cache``)."""
    return cache_dir().parent / "cluttered-mnist"


def source_fingerprint(source: ImageSet) -> str:
    """16 hex digits naming the source digits and labels (another MNIST or validation size: another cache)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{source.images.dtype.str}{source.images.shape}".encode())
    digest.update(np.ascontiguousarray(source.images).reshape(-1).view(np.uint8))
    if source.labels is not None:
        digest.update(np.ascontiguousarray(source.labels, dtype=np.int64).view(np.uint8))
    return digest.hexdigest()


@dataclass(frozen=True)
class ClutterSettings:
    """The options of a cluttered dataset (module docstring)."""

    canvas: int = CANVAS
    distractors: int = DISTRACTORS
    distractor_size: int = DISTRACTOR_SIZE
    seed: int = SEED

    def cache_name(self, split: str, fingerprint: str) -> str:
        return (f"{split}-{self.canvas}px-{self.distractors}x{self.distractor_size}px-seed{self.seed}-"
                f"{fingerprint}-v{CACHE_VERSION}.npz")


def cluttered_split(source: ImageSet, split: str, settings: ClutterSettings = ClutterSettings(),
                    cache: Path | None = None) -> ClutteredDigits:
    """Split ``split`` of cluttered digits built from ``source`` (that split of MNIST), from the cache if there.

    Parameters
    ----------
    source : ImageSet
        The same split of the source digits.
    split : str
        ``"train"``, ``"valid"`` or ``"test"`` (chooses the seed).
    settings : ClutterSettings
    cache : Path, optional
        Folder of the cache files (default :func:`cluttered_cache_dir`); built files are written there
        when it can be created and written, else the split is built every time.
    """
    if split not in SPLIT_NUMBERS:
        raise DataError(f"unknown split {split!r}; use one of {', '.join(SPLIT_NUMBERS)}")
    folder = cache or cluttered_cache_dir()
    path = folder / settings.cache_name(split, source_fingerprint(source))
    expected = (len(source), source.images.shape[1], settings.canvas, settings.canvas)
    cached = read_cache(path, expected, settings.distractors)
    if cached is not None:
        return cached
    built = clutter_digits(source, split_seed(settings.seed, split), settings.canvas, settings.distractors,
                           settings.distractor_size)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_cache(path, built)
    except (OSError, DrawStudioError):
        pass  # an unwritable cache only costs building the split again next time
    return built


def write_cache(path: Path, digits: ClutteredDigits) -> None:
    """Write ``digits`` to ``path`` (.npz, deflate: mostly black, a split of 10,000 is about 4 MB) atomically."""
    arrays = {f.name: getattr(digits, f.name) for f in fields(ClutteredDigits) if getattr(digits, f.name) is not None}

    def write(temp: str) -> None:
        with open(temp, "wb") as handle:
            np.savez_compressed(handle, version=np.int64(CACHE_VERSION), **arrays)

    atomic_write(path, write)


def read_cache(path: Path, shape: tuple[int, ...], distractors: int) -> ClutteredDigits | None:
    """The split cached at ``path`` if it is there, readable and holds images of ``shape``; else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            values = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None  # damaged: built again and replaced
    n = shape[0]
    wanted = {"images": (shape, np.uint8), "digit_position": ((n, 2), np.int64),
              "distractor_source": ((n, distractors), np.int64), "distractor_crop": ((n, distractors, 2), np.int64),
              "distractor_position": ((n, distractors, 2), np.int64)}
    if "labels" in values:
        wanted["labels"] = ((n,), np.int64)
    for name, (want_shape, dtype) in wanted.items():
        value = values.get(name)
        if value is None or value.shape != want_shape or value.dtype != dtype:
            return None
    if values.get("version") is None or int(values["version"]) != CACHE_VERSION:
        return None
    return ClutteredDigits(labels=values.get("labels"), **{name: values[name] for name in wanted if name != "labels"})


# ---------------------------------------------------------------------- the datasets
def derive_cluttered(source: ImageSet, split: str, settings: ClutterSettings = ClutterSettings()) -> ImageSet:
    """The cluttered version of MNIST split ``split`` (cached), as an ImageSet with the digits' labels."""
    built = cluttered_split(source, split, settings)
    name = f"cluttered {settings.canvas}x{settings.canvas}, {settings.distractors} distractors"
    return ImageSet(built.images, built.labels, False, f"{name} from {source.source}")


@dataclass(frozen=True)
class ClutteredDatasetSpec(DatasetSpec):
    """A :class:`DatasetSpec` of cluttered digits, with the options its splits are built with."""

    settings: ClutterSettings = ClutterSettings()


def cluttered_mnist(canvas: int = CANVAS, distractors: int = DISTRACTORS, distractor_size: int = DISTRACTOR_SIZE,
                    seed: int = SEED) -> DatasetSpec:
    """A cluttered-MNIST dataset with these options (``cluttered-mnist`` is the default one).

    Raises
    ------
    DataError
        A canvas smaller than 28, a negative number of distractors, or crops outside 1..28.
    """
    if canvas < 28 or distractors < 0 or not 1 <= distractor_size <= 28:
        raise DataError(f"cluttered MNIST needs a canvas of at least 28, 0 or more distractors and crops of 1..28 "
                        f"pixels; got canvas {canvas}, {distractors} distractors of {distractor_size}")
    settings = ClutterSettings(canvas, distractors, distractor_size, seed)
    pretty = f"cluttered MNIST {canvas}x{canvas} (built from MNIST)"
    return ClutteredDatasetSpec(pretty, "mnist", IDX_FILES, load_idx_pair, download_mnist,
                                derive=functools.partial(derive_cluttered, settings=settings), settings=settings)


CLUTTERED_MNIST = cluttered_mnist()
CLUTTERED_MNIST_60 = cluttered_mnist(canvas=60, distractors=4)  # the 60 x 60 variant of Mnih et al. (2014)

__all__ = ["CLUTTERED_MNIST", "CLUTTERED_MNIST_60", "ClutterSettings", "ClutteredDatasetSpec", "ClutteredDigits",
           "FreshClutter", "clutter_digits",
           "cluttered_cache_dir", "cluttered_mnist", "cluttered_split"]
