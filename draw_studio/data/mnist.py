"""MNIST handwritten digits in the IDX format (also the reader of Fashion-MNIST).

Four files, raw or gzip-compressed: ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``.
Downloads are checked against the md5 of the canonical ``.gz`` files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .download import download_files
from .idx import read_idx
from .imageset import DatasetSpec, ImageSet
from .locate import find_file

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/")
MNIST_GZ_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def load_idx_pair(directory: Path, part: str) -> ImageSet:
    """Read part ``"train"`` or ``"test"`` of an IDX dataset in ``directory``.

    Returns
    -------
    ImageSet
        images (n, 1, H, W) uint8 and labels (n,) int64.
    """
    prefix = "train" if part == "train" else "t10k"
    images_path = find_file(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = find_file(directory, f"{prefix}-labels-idx1-ubyte")
    if images_path is None or labels_path is None:
        raise DataError(f"{directory} lacks the {prefix} IDX files; pass --data-dir to a folder holding them")
    images = read_idx(images_path)  # (n, H, W)
    labels = read_idx(labels_path).astype(np.int64)  # (n,)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{images_path} and {labels_path} do not match: {images.shape} images, "
                        f"{labels.shape} labels; replace them with the original files")
    return ImageSet(images[:, None], labels, False, str(directory))


def download_mnist(directory: Path) -> None:
    """Fetch the four MNIST ``.gz`` files into ``directory``."""
    download_files(directory, MNIST_MIRRORS, MNIST_GZ_MD5)


MNIST = DatasetSpec("MNIST", "mnist", IDX_FILES, load_idx_pair, download_mnist)
