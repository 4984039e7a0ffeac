"""Binarised MNIST of Salakhutdinov & Murray (2008), the files most DRAW papers report on.

``binarized_mnist_{train,valid,test}.amat``: text, one image a line, 784
space-separated 0/1 values (50,000 / 10,000 / 10,000 images). The set has its
own validation file, has no labels and is binary already. It is not
downloaded automatically: fetch the three files by hand (they are published
with Larochelle & Murray's NADE paper) and point --data-dir at them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .imageset import DatasetSpec, ImageSet
from .locate import find_file
from .rawfile import read_bytes

AMAT_FILES = tuple(f"binarized_mnist_{part}.amat" for part in ("train", "valid", "test"))
PIXELS = 784
_ZERO, _ONE = ord("0"), ord("1")
_SPACE = np.frombuffer(b" \t\r\n", dtype=np.uint8)


def read_amat(path: str | Path, width: int = 28) -> np.ndarray:
    """Read a binary ``.amat`` file (raw or gzip-compressed).

    Returns
    -------
    ndarray, shape (n, 1, width, width), uint8 values 0 or 1

    Raises
    ------
    DataError
        If a value is not 0 or 1 or a line does not hold ``width**2`` values.
    """
    text = np.frombuffer(read_bytes(path), dtype=np.uint8)
    digit = (text == _ZERO) | (text == _ONE)
    if not np.all(digit | np.isin(text, _SPACE)) or np.any(digit[1:] & digit[:-1]):
        raise DataError(f"{path} holds something other than space-separated 0/1 values; "
                        "replace it with the original binarized MNIST file")
    newline = np.flatnonzero(text == ord("\n"))
    per_line = np.diff(np.concatenate(([0], np.cumsum(digit)[newline], [int(digit.sum())])))
    per_line = per_line[per_line > 0]  # blank lines (e.g. a final newline) hold nothing
    if len(per_line) == 0:
        raise DataError(f"{path} holds no image; replace it with the original binarized MNIST file")
    pixels = width * width
    bad = np.flatnonzero(per_line != pixels)
    if len(bad):
        raise DataError(f"{path}: image {bad[0] + 1} has {per_line[bad[0]]} values instead of {pixels}; "
                        "replace it with the original binarized MNIST file")
    return (text[digit] - _ZERO).reshape(-1, 1, width, width)


def load_binarized_mnist(directory: Path, part: str) -> ImageSet:
    """Read part ``"train"``, ``"valid"`` or ``"test"`` (images (n, 1, 28, 28) 0/1, no labels)."""
    path = find_file(directory, f"binarized_mnist_{part}.amat")
    if path is None:
        raise DataError(f"{directory} lacks binarized_mnist_{part}.amat; pass --data-dir to a folder holding it")
    return ImageSet(read_amat(path), None, True, str(directory))


BINARIZED_MNIST = DatasetSpec(
    "binarized MNIST (Salakhutdinov-Murray)", "binarized-mnist", AMAT_FILES, load_binarized_mnist,
    has_validation_file=True,
    hint="fetch binarized_mnist_train.amat, _valid.amat and _test.amat by hand (the files of "
         "Larochelle & Murray's NADE paper) into one of those folders")
