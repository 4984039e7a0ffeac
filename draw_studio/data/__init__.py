"""Datasets: where they are found, how they are read, and how they are binarised.

Every loader returns an :class:`ImageSet` of uint8 images (n, C, H, W). The
public entry point is :func:`load_split`. Each dataset lives in its own module
(``mnist``, ``fashion_mnist``, ``binarized_mnist``, ``two_digit``, ``cluttered``,
``svhn``, ``cifar10``, ``folder``) and is registered in :data:`DATASETS`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .binarize import FIXED_BINARIZATION_SEED, fixed_binarization
from .binarized_mnist import BINARIZED_MNIST
from .cifar10 import CIFAR10
from .cluttered import CLUTTERED_MNIST, CLUTTERED_MNIST_60, ClutteredDatasetSpec, FreshClutter
from .fashion_mnist import FASHION_MNIST
from .folder import FOLDER
from .imageset import DatasetSpec, ImageSet
from .locate import cache_dir, candidate_dirs, downloads_allowed, find_dir_with, missing_error
from .mnist import MNIST
from .svhn import SVHN
from .two_digit import TWO_DIGIT_MNIST

SPLITS = ("train", "valid", "test")

DATASETS: dict[str, DatasetSpec] = {
    "mnist": MNIST,
    "fashion-mnist": FASHION_MNIST,
    "binarized-mnist": BINARIZED_MNIST,
    "two-digit-mnist": TWO_DIGIT_MNIST,
    "cluttered-mnist": CLUTTERED_MNIST,
    "cluttered-mnist-60": CLUTTERED_MNIST_60,
    "svhn": SVHN,
    "cifar10": CIFAR10,
    "folder": FOLDER,
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
    if spec.needs_data_dir:
        return _own_folder(spec, data_dir)
    dirs = candidate_dirs(spec.folder, data_dir, spec.system_dirs)
    found = find_dir_with(list(spec.files), dirs)
    if found is not None:
        return found
    if spec.download is None or not downloads_allowed(download):
        reason = "downloads are off" if spec.download is not None else "it cannot be downloaded automatically"
        raise missing_error(spec.pretty, dirs, reason, spec.hint, spec.download is not None)
    target = cache_dir() / spec.folder
    try:
        spec.download(target)
    except DataError as exc:
        raise missing_error(spec.pretty, dirs, f"download failed: {exc}", spec.hint) from None
    return target


def _own_folder(spec: DatasetSpec, data_dir: str | Path | None) -> Path:
    """``--data-dir`` itself, for a dataset that is a folder of the user's own files."""
    if not data_dir:
        raise DataError(f"the {spec.pretty} dataset reads the images of --data-dir; pass --data-dir FOLDER")
    if not Path(data_dir).is_dir():
        raise DataError(f"--data-dir {data_dir} is not a folder; pass --data-dir to a folder of images")
    return Path(data_dir)


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
    images = _source_split(spec, directory, split, validation_size)
    return spec.derive(images, split) if spec.derive is not None else images


def fresh_clutter(name: str, run_seed: int, data_dir: str | Path | None = None, validation_size: int = 10_000,
                  download: bool = True) -> FreshClutter:
    """The training digits of cluttered dataset ``name``, to clutter anew every epoch (``--clutter fresh``).

    Parameters are those of :func:`load_split`; ``run_seed`` is the training run's seed.

    Raises
    ------
    DataError
        ``name`` is not a cluttered dataset, or its digits are not found.
    """
    spec = get_dataset(name)
    if not isinstance(spec, ClutteredDatasetSpec):
        cluttered = ", ".join(key for key, value in DATASETS.items() if isinstance(value, ClutteredDatasetSpec))
        raise DataError(f"fresh clutter builds new clutter around the training digits every epoch, but {name} is "
                        f"not a cluttered dataset; use one of {cluttered}, or --clutter fixed")
    directory = locate(name, data_dir, download)
    return FreshClutter(_source_split(spec, directory, "train", validation_size), spec.settings, run_seed)


def _source_split(spec: DatasetSpec, directory: Path, split: str, validation_size: int) -> ImageSet:
    """Split ``split`` of what ``spec.load`` reads: its own file, or a cut of the training part."""
    if spec.has_validation_file:
        return spec.load(directory, split)
    if split == "test":
        test = spec.load(directory, "test")
        if test is not None:
            return test
        split = "valid"  # no test part: the validation split stands in for it
    full = spec.load(directory, "train")
    if not 0 < validation_size < len(full):
        raise DataError(f"validation size {validation_size} must be between 1 and {len(full) - 1} for "
                        f"{spec.pretty} ({len(full)} training images); pass a validation size in that range")
    cut = len(full) - validation_size
    return full.subset(slice(0, cut) if split == "train" else slice(cut, None))


def fixed_binary_images(images: ImageSet, seed: int = FIXED_BINARIZATION_SEED) -> np.ndarray:
    """The split's fixed binarisation (n, C, H, W) uint8 0/1 (the images themselves if already binary)."""
    return images.images if images.binary else fixed_binarization(images.images, seed)


def model_inputs(images: ImageSet, likelihood: str) -> tuple[np.ndarray, str, int | None]:
    """Images as the model sees them at evaluation time.

    A Bernoulli model sees the split's fixed binarisation (or the data's own
    binary pixels); a continuous likelihood sees grey levels / 255.

    Returns
    -------
    pixels : ndarray, shape (n, C, H, W), float32 in [0, 1]
    binarization : str
        ``"fixed"``, ``"given"`` (already binary) or ``"none"``.
    seed : int or None
        The fixed binarisation seed.
    """
    if likelihood == "bernoulli":
        if images.binary:
            return images.images.astype(np.float32), "given", None
        return fixed_binary_images(images).astype(np.float32), "fixed", FIXED_BINARIZATION_SEED
    return images.images.astype(np.float32) / 255.0, "none", None


__all__ = ["DATASETS", "DatasetSpec", "FIXED_BINARIZATION_SEED", "ImageSet", "SPLITS", "fixed_binary_images",
           "fresh_clutter", "get_dataset", "load_split", "locate", "model_inputs"]
