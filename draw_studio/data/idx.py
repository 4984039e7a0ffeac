"""Reader for the IDX format of MNIST and Fashion-MNIST (gzip-compressed or raw).

Values are checked as they are read: a file of floating-point numbers must
hold no NaN or infinity, and a file of three or more dimensions is a stack of
images (``idx3``) whose values must be grey levels 0..255, whatever its type.
Either fault is a DataError naming the file and the first bad index.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ..errors import DataError
from .imageset import pixel_problem
from .rawfile import read_bytes

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file into an array.

    Parameters
    ----------
    path : str or Path
        The file, gzip-compressed (``.gz``, detected from its magic bytes) or raw.

    Returns
    -------
    ndarray
        Shape and dtype as the file's header says, e.g. (60000, 28, 28) uint8.

    Raises
    ------
    DataError
        If the file is not IDX, is truncated, has trailing bytes, holds NaN or
        infinite numbers, or is an image stack with values outside 0..255.
    """
    path = Path(path)
    raw = read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number); delete it and fetch the dataset again")
    dtype = np.dtype(_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (header cut short); delete it and fetch the dataset again")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{path} is {problem} ({len(raw)} bytes, expected {expected}); "
                        "delete it and fetch the dataset again")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
    problem = _value_problem(array)
    if problem:
        raise DataError(f"{path}: {problem}; replace it with the original file")
    return array


def _value_problem(array: np.ndarray) -> str | None:
    """Why the values of an IDX array are unusable (module docstring), or None."""
    if array.ndim >= 3:
        return pixel_problem(array, 255)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        index = [int(i) for i in np.unravel_index(int(np.argmax(~np.isfinite(array))), array.shape)]
        return f"index {index} holds the non-finite value {array[tuple(index)].item()!r}"
    return None


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (gzip if ``compress`` or the name ends in .gz)."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    codes = {np.dtype(v).newbyteorder(">") if np.dtype(v).itemsize > 1 else np.dtype(v): k for k, v in _DTYPES.items()}
    big = array.astype(array.dtype.newbyteorder(">")) if array.dtype.itemsize > 1 else array
    code = codes[big.dtype]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + big.tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
