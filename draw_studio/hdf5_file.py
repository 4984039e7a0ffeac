"""HDF5 files read and written without trusting HDF5 with the disk.

HDF5 cannot be trusted after an I/O error (a full disk can leave its library in a state where the
next flush or close crashes the process), and a truncated file read in SWMR mode can make it retry
for ever. So DRAW Studio's training logs are

* built whole in memory (:func:`build_image`: h5py writes into a ``BytesIO``, where no write can
  fail) and put on disk with plain Python writes, under a temporary name renamed over the old file
  (``files.atomic_write``); a reader always finds a whole, closed file;
* read from a snapshot of the file's bytes (:func:`read_image`), after a bounded check of the
  superblock: a file shorter than the end-of-file address its header records is reported as
  truncated at once. The "open for writing" marks that a killed SWMR writer leaves behind are cleared
  in the snapshot (never in the file), so such files open without SWMR and without file locks: a
  reader never blocks a writer.

Superblock layouts: HDF5 File Format Specification, section II.A.
"""

from __future__ import annotations

import io
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import FileFormatError

SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024  # larger files are opened in place (after the same header check)
WRITE_MARK_RETRIES = 3  # a file still being written by an older SWMR writer may be caught mid-flush
WRITE_MARK_WAIT_S = 0.05


@dataclass(frozen=True)
class Superblock:
    """What the superblock at ``offset`` says about the file."""

    offset: int
    version: int
    flags: int  # file consistency flags: non-zero while a writer has the file open (or was killed)
    end: int  # the file's end of file address plus its base address: the size a whole file has at least
    checksum_at: int | None  # where the superblock's checksum is (versions 2 and 3), else None


def superblock(head: bytes, offset: int = 0) -> Superblock | None:
    """Parse ``head``, the first bytes of a superblock found at ``offset`` of its file.

    Returns None if ``head`` is cut short or of an unknown version.
    """
    if len(head) < 12 or head[:8] != SIGNATURE:
        return None
    version = head[8]
    if version >= 2:
        size_of_offsets = head[9]
        flags_at, addresses_at, flags_size = 11, 12, 1
    elif version in (0, 1) and len(head) >= 24:
        size_of_offsets = head[13]
        flags_at, addresses_at, flags_size = 20, 24 if version == 0 else 28, 4
    else:
        return None
    if size_of_offsets not in (2, 4, 8):
        return None
    code = {2: "H", 4: "I", 8: "Q"}[size_of_offsets]
    # versions 2/3: base, extension, eof, root group, checksum; 0/1: base, free space, eof, driver info
    addresses_end = addresses_at + 4 * size_of_offsets
    if len(head) < addresses_end + (4 if version >= 2 else 0):
        return None
    base, _, eof, _ = struct.unpack_from("<" + code * 4, head, addresses_at)
    flags = int.from_bytes(head[flags_at:flags_at + flags_size], "little")
    return Superblock(offset, version, flags, base + eof, offset + addresses_end if version >= 2 else None)


def find_signature(read: Callable[[int, int], bytes], size: int) -> int | None:
    """Offset of the HDF5 signature at 0, 512, 1024, 2048... (where HDF5 looks); None: not HDF5."""
    offset = 0
    while offset + 8 <= size:
        if read(offset, 8) == SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``: the checksum HDF5 puts on its metadata."""
    mask = 0xFFFFFFFF

    def rot(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) & mask

    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & mask
    i = 0
    while length - i > 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & mask
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & mask
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & mask
        a = (a - c) & mask; a ^= rot(c, 4); c = (c + b) & mask  # noqa: E702
        b = (b - a) & mask; b ^= rot(a, 6); a = (a + c) & mask  # noqa: E702
        c = (c - b) & mask; c ^= rot(b, 8); b = (b + a) & mask  # noqa: E702
        a = (a - c) & mask; a ^= rot(c, 16); c = (c + b) & mask  # noqa: E702
        b = (b - a) & mask; b ^= rot(a, 19); a = (a + c) & mask  # noqa: E702
        c = (c - b) & mask; c ^= rot(b, 4); b = (b + a) & mask  # noqa: E702
        i += 12
    tail = data[i:]
    if not tail:
        return c
    tail = tail + bytes(12 - len(tail))
    a = (a + int.from_bytes(tail[0:4], "little")) & mask
    b = (b + int.from_bytes(tail[4:8], "little")) & mask
    c = (c + int.from_bytes(tail[8:12], "little")) & mask
    c ^= b; c = (c - rot(b, 14)) & mask  # noqa: E702
    a ^= c; a = (a - rot(c, 11)) & mask  # noqa: E702
    b ^= a; b = (b - rot(a, 25)) & mask  # noqa: E702
    c ^= b; c = (c - rot(b, 16)) & mask  # noqa: E702
    a ^= c; a = (a - rot(c, 4)) & mask  # noqa: E702
    b ^= a; b = (b - rot(a, 14)) & mask  # noqa: E702
    c ^= b; c = (c - rot(b, 24)) & mask  # noqa: E702
    return c


def clear_write_marks(data: bytearray, block: Superblock) -> None:
    """Clear the consistency flags of a version 2/3 superblock in ``data`` and fix its checksum."""
    flags_at = block.offset + 11
    data[flags_at] = 0
    struct.pack_into("<I", data, block.checksum_at, lookup3(bytes(data[block.offset:block.checksum_at])))


@dataclass
class Image:
    """A whole HDF5 file as read from disk: its bytes (or None: too big, open ``path`` in place)."""

    path: Path
    data: bytes | None
    written: bool  # the file carried "open for writing" marks (a live or killed SWMR writer)

    def open(self):
        """The file opened read-only for h5py, without SWMR and without file locks."""
        import h5py

        if self.data is not None:
            return h5py.File(io.BytesIO(self.data), "r")
        return h5py.File(self.path, "r", locking=False, swmr=self.written)


def read_image(path: str | Path, what: str, fix: str, snapshot: bool = True,
               error: type[FileFormatError] = FileFormatError) -> Image:
    """Read ``path`` for h5py after checking its header; every check is bounded in time.

    Parameters
    ----------
    path : str or Path
    what : str
        What the file should be, for messages ("training log").
    fix : str
        What to do about a truncated file, appended to its message.
    snapshot : bool
        Read the file's bytes (up to ``MAX_SNAPSHOT_BYTES``); False only
        checks the header, and :meth:`Image.open` then opens it in place.
    error : type
        The :class:`FileFormatError` subclass to raise (e.g. ``TrainingLogError``).

    Raises
    ------
    FileFormatError
        (``error``) Not an HDF5 file, or shorter than its header says (truncated).
    """
    path = Path(path)
    for attempt in range(WRITE_MARK_RETRIES + 1):
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size

                def read(offset: int, count: int) -> bytes:
                    handle.seek(offset)
                    return handle.read(count)

                offset = find_signature(read, size)
                if offset is None:
                    raise error(f"{path} is not an HDF5 file; pass a {what} written by draw-studio")
                block = superblock(read(offset, 96), offset)
                if block is None:
                    raise error(f"{path} is truncated or damaged: its HDF5 header is cut short or "
                                           f"unreadable; {fix}")
                data = None
                if snapshot and size <= MAX_SNAPSHOT_BYTES:
                    handle.seek(0)
                    data = handle.read()
                    size = len(data)
        except OSError as exc:
            raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
        if size >= block.end:
            break
        if not block.flags or attempt == WRITE_MARK_RETRIES:
            raise error(f"{path} is truncated: it holds {size:,} bytes, its header says "
                                   f"{block.end:,}; {fix}")
        time.sleep(WRITE_MARK_WAIT_S)  # an older SWMR writer may be extending the file right now
    written = bool(block.flags)
    if data is not None and written and block.checksum_at is not None:
        data = bytearray(data)
        clear_write_marks(data, block)
        data = bytes(data)
    return Image(path, data, written)


def build_image(fill: Callable[[object], None], **file_options) -> bytes:
    """The bytes of a closed HDF5 file that ``fill(h5py_file)`` wrote, built in memory."""
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w", **file_options) as f:
        fill(f)
    return buffer.getvalue()
