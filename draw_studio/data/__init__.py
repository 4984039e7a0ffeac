"""Datasets: where they are found, how they are read, and how they are binarised.

Every loader returns an :class:`ImageSet` of uint8 images (n, C, H, W). The
public entry point is :func:`load_split`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from .binarize import FIXED_BINARIZATION_SEED, fixed_binarization
from .locate import cache_dir, candidate_dirs, downloads_allowed, find_dir_with, find_file, missing_error
from .idx import read_idx

SPLITS = ("train", "valid", "test")


@dataclass
class ImageSet:
    """Images of one split.

    Attributes
    ----------
    images : ndarray, shape (n, C, H, W), uint8
        Grey levels 0..255, or 0/1 when ``binary`` is true.
    labels : ndarray, shape (n,), int64, or None
    binary : bool
        Pixels are already 0/1 (e.g. the Salakhutdinov-Murray files).
    source : str
        Where the data came from, for messages and logs.
    """

    images: np.ndarray
    labels: np.ndarray | None
    binary: bool
    source: str

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    def subset(self, index) -> "ImageSet":
        labels = None if self.labels is None else self.labels[index]
        return ImageSet(self.images[index], labels, self.binary, self.source)


@dataclass(frozen=True)
class DatasetSpec:
    """How to find and read one dataset.

    ``load(directory, part)`` reads part ``"train"`` or ``"test"`` from a folder
    holding ``files``; ``download(directory)`` fetches them (or is None).
    """

    pretty: str
    folder: str
    files: tuple[str, ...]
    load: Callable[[Path, str], ImageSet]
    download: Callable[[Path], None] | None = None
    system_dirs: tuple[str, ...] = ()
    has_validation_file: bool = False


def _load_idx_pair(directory: Path, part: str) -> ImageSet:
    prefix = "train" if part == "train" else "t10k"
    images_path = find_file(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = find_file(directory, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(images_path)
    labels = read_idx(labels_path).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{images_path} and {labels_path} do not match: {images.shape} images, "
                        f"{labels.shape} labels; replace them with the original files")
    return ImageSet(images[:, None], labels, False, str(directory))


MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("MNIST", "mnist", MNIST_FILES, _load_idx_pair),
}


def get_dataset(name: str) -> DatasetSpec:
    """Return the spec of dataset ``name`` or raise a clear error listing the choices."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def locate(name: str, data_dir: str | Path | None = None, download: bool = True) -> Path:
    """Folder holding dataset ``name``, downloading it to the cache if allowed.

    Raises
    ------
    DataError
        One line naming every folder searched and the fix.
    """
    spec = get_dataset(name)
    dirs = candidate_dirs(spec.folder, data_dir, spec.system_dirs)
    found = find_dir_with(list(spec.files), dirs)
    if found is not None:
        return found
    if spec.download is None or not downloads_allowed(download):
        reason = "downloads are off" if spec.download is not None else "it cannot be downloaded automatically"
        raise missing_error(spec.pretty, dirs, reason)
    target = cache_dir() / spec.folder
    try:
        spec.download(target)
    except DataError as exc:
        raise missing_error(spec.pretty, dirs, f"download failed: {exc}") from None
    return target


def load_split(name: str, split: str, data_dir: str | Path | None = None, validation_size: int = 10_000,
               download: bool = True) -> ImageSet:
    """Load one split of a dataset.

    Parameters
    ----------
    name : str
        A key of ``DATASETS``.
    split : str
        ``"train"`` (training images minus the validation split), ``"valid"``
        (the last ``validation_size`` training images, or the dataset's own
        validation file) or ``"test"``.
    data_dir : str or Path, optional
        Searched first (see ``draw_studio.data.locate``).
    validation_size : int
        Images held out of the training data for validation.
    download : bool
        Allow a download to the cache folder when the data is nowhere else.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    spec = get_dataset(name)
    directory = locate(name, data_dir, download)
    if spec.has_validation_file or split == "test":
        return spec.load(directory, split)
    full = spec.load(directory, "train")
    if not 0 < validation_size < len(full):
        raise DataError(f"validation size {validation_size} must be between 1 and {len(full) - 1} for {spec.pretty}")
    cut = len(full) - validation_size
    return full.subset(slice(0, cut) if split == "train" else slice(cut, None))


def fixed_binary_images(images: ImageSet, seed: int = FIXED_BINARIZATION_SEED) -> np.ndarray:
    """The split's fixed binarisation (n, C, H, W) uint8 0/1 (the images themselves if already binary)."""
    return images.images if images.binary else fixed_binarization(images.images, seed)


__all__ = ["DATASETS", "DatasetSpec", "FIXED_BINARIZATION_SEED", "ImageSet", "SPLITS", "fixed_binary_images",
           "get_dataset", "load_split", "locate"]
