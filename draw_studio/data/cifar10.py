"""CIFAR-10, binary version: ``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin``.

Each record is 1 label byte (0..9) then 3072 pixel bytes: the 32x32 red
plane, then green, then blue, rows top to bottom. The Python version of the
set is never read: it is pickled, and unpickling runs arbitrary code. The
download is the binary tarball, from which only those six files are
extracted (flat, see ``archive``); the folder searched is
``cifar-10-batches-bin``, the tarball's own folder name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .archive import extract_members
from .download import download_files
from .imageset import DatasetSpec, ImageSet
from .locate import find_file
from .rawfile import read_bytes

TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
CIFAR_FILES = TRAIN_FILES + (TEST_FILE,)
CIFAR_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
CIFAR_TARBALL = "cifar-10-binary.tar.gz"
CIFAR_TARBALL_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
RECORD = 1 + 3 * 32 * 32


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one binary CIFAR-10 batch (raw or gzip-compressed).

    Returns
    -------
    images : ndarray, shape (n, 3, 32, 32), uint8
    labels : ndarray, shape (n,), int64, classes 0..9

    Raises
    ------
    DataError
        If the size is not a whole number of records or a label is not 0..9.
    """
    raw = np.frombuffer(read_bytes(path), dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise DataError(f"{path} is not a binary CIFAR-10 batch ({raw.size} bytes is not a whole number of "
                        f"{RECORD}-byte records); delete it and fetch the dataset again")
    records = raw.reshape(-1, RECORD)  # (n, 3073)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DataError(f"{path} has label {labels.max()} (CIFAR-10 has 0..9); is it CIFAR-100? "
                        "Use the CIFAR-10 binary files")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def load_cifar10(directory: Path, part: str) -> ImageSet:
    """Read part ``"train"`` (the five data batches, in order) or ``"test"``."""
    names = TRAIN_FILES if part == "train" else (TEST_FILE,)
    images, labels = [], []
    for name in names:
        path = find_file(directory, name)
        if path is None:
            raise DataError(f"{directory} lacks {name}; pass --data-dir to a folder holding the CIFAR-10 batches")
        batch_images, batch_labels = read_cifar_batch(path)
        images.append(batch_images)
        labels.append(batch_labels)
    return ImageSet(np.concatenate(images), np.concatenate(labels), False, str(directory))


def download_cifar10(directory: Path) -> None:
    """Fetch the binary tarball into ``directory``, extract the six batches, delete the tarball."""
    (tarball,) = download_files(directory, CIFAR_MIRRORS, {CIFAR_TARBALL: CIFAR_TARBALL_MD5})
    extract_members(tarball, directory, CIFAR_FILES)
    tarball.unlink(missing_ok=True)


CIFAR10 = DatasetSpec("CIFAR-10 (binary version)", "cifar-10-batches-bin", CIFAR_FILES, load_cifar10,
                      download_cifar10)
