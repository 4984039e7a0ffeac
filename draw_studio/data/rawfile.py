"""Reading a data file whole, gzip-compressed or not, with one-line errors."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from ..errors import DataError

GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | Path) -> bytes:
    """The content of ``path``, gunzipped if it starts with the gzip magic bytes.

    Raises
    ------
    DataError
        If the file cannot be read or its compression is damaged.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == GZIP_MAGIC else raw
    except (OSError, EOFError, zlib.error) as exc:
        reason = " ".join(str(exc).split())
        raise DataError(f"cannot read {path}: {reason}; delete it and fetch the dataset again") from None
