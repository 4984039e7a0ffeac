"""SVHN, cropped digits (Netzer et al., 2011): ``train_32x32.mat`` and ``test_32x32.mat``.

Each file holds ``X`` (32, 32, 3, n) uint8 and ``y`` (n, 1) with labels 1..10,
10 standing for the digit 0. The published files are MATLAB v5, read with
scipy (an optional dependency, imported only here); MATLAB v7.3 (HDF5)
copies are read with h5py, where the axes appear reversed. The ``extra``
file is not used.
"""

from __future__ import annotations

import io
from pathlib import Path

import h5py
import numpy as np

from ..errors import DataError
from .download import download_files
from .imageset import DatasetSpec, ImageSet
from .locate import find_file
from .rawfile import read_bytes

SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")
SVHN_MIRRORS = ("http://ufldl.stanford.edu/housenumbers/",)
SVHN_MD5 = {"train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
            "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3"}
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def read_svhn_mat(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one cropped-digits ``.mat`` file (raw or gzip-compressed).

    Returns
    -------
    images : ndarray, shape (n, 3, 32, 32), uint8
    labels : ndarray, shape (n,), int64, digits 0..9

    Raises
    ------
    DataError
        If the file is damaged, lacks ``X`` or ``y``, or scipy is needed but missing.
    """
    stream = io.BytesIO(read_bytes(path))
    if _HDF5_MAGIC in stream.getbuffer()[:4096].tobytes():  # v7.3: HDF5 after a 512-byte header
        images, labels = _read_hdf5(stream, path)
    else:
        images, labels = _read_v5(stream, path)
    labels = labels.reshape(-1).astype(np.int64)
    if (images.ndim != 4 or images.shape[1] != 3 or len(images) != len(labels)
            or not np.isin(labels, np.arange(1, 11)).all()):
        raise DataError(f"{path} is not a cropped-digits SVHN file (images {images.shape}, labels {labels.shape}); "
                        "replace it with the original file")
    return np.ascontiguousarray(images, dtype=np.uint8), labels % 10


def _read_v5(stream: io.BytesIO, path) -> tuple[np.ndarray, np.ndarray]:
    """X (H, W, 3, n) and y of a MATLAB v5 file, as (n, 3, H, W) images and labels."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataError(f"reading {path} needs scipy, which is not installed; run: pip install scipy") from None
    try:
        mat = loadmat(stream, variable_names=("X", "y"))
        x, y = mat["X"], mat["y"]
    except Exception as exc:  # scipy raises many kinds on a damaged file
        raise DataError(f"cannot read {path} as a MATLAB file ({' '.join(str(exc).split())}); "
                        "replace it with the original file") from None
    if x.ndim != 4:
        raise DataError(f"{path}: X has shape {x.shape}, expected (32, 32, 3, n); replace it with the original file")
    return x.transpose(3, 2, 0, 1), y  # (H, W, C, n) -> (n, C, H, W)


def _read_hdf5(stream: io.BytesIO, path) -> tuple[np.ndarray, np.ndarray]:
    """X and y of a MATLAB v7.3 file: stored column-major, so h5py sees (n, C, W, H)."""
    try:
        with h5py.File(stream, "r") as f:
            x, y = f["X"][()], f["y"][()]
    except Exception as exc:  # h5py raises many kinds on a damaged file
        raise DataError(f"cannot read {path} as a MATLAB v7.3 file ({' '.join(str(exc).split())}); "
                        "replace it with the original file") from None
    if x.ndim != 4:
        raise DataError(f"{path}: X has shape {x.shape}, expected (n, 3, 32, 32) in HDF5; replace it")
    return x.transpose(0, 1, 3, 2), y  # (n, C, W, H) -> (n, C, H, W)


def load_svhn(directory: Path, part: str) -> ImageSet:
    """Read part ``"train"`` or ``"test"``: images (n, 3, 32, 32) uint8, labels (n,) 0..9."""
    path = find_file(directory, f"{part}_32x32.mat")
    if path is None:
        raise DataError(f"{directory} lacks {part}_32x32.mat; pass --data-dir to a folder holding it")
    images, labels = read_svhn_mat(path)
    return ImageSet(images, labels, False, str(directory))


def download_svhn(directory: Path) -> None:
    """Fetch ``train_32x32.mat`` and ``test_32x32.mat`` into ``directory``."""
    download_files(directory, SVHN_MIRRORS, SVHN_MD5)


SVHN = DatasetSpec("SVHN (cropped digits)", "svhn", SVHN_FILES, load_svhn, download_svhn)
