"""A file for HDF5 to write through that never hands HDF5 an I/O error.

HDF5 cannot be trusted after a failed write: when a full disk (ENOSPC), a
file-size limit (EFBIG) or a dying device makes a write fail while h5py
closes a dataset (which flushes its chunk cache), h5py can only ignore the
error (it happens in an object's destructor), the library keeps a half-closed
dataset, and the next call into it (or the interpreter's exit) ends in a
segmentation fault. So HDF5 writes its files through :class:`FailSafeFile`
(h5py's ``fileobj`` driver): the first failed write is remembered in
:attr:`FailSafeFile.error`, and from then on every write lands in memory pages
instead of the disk, so HDF5 keeps seeing a consistent file, closes it
normally, and the caller raises the remembered error and throws the
(temporary) file away. Memory stays bounded by what is written after the
failure, which callers keep small by stopping at their next batch.
"""

from __future__ import annotations

import errno
import os

PAGE = 1 << 16


class FailSafeFile:
    """A read/write binary file (for ``h5py.File(FailSafeFile(path), "w")``) that swallows write errors.

    Parameters
    ----------
    path : str or Path
        Created (or truncated) and opened for reading and writing.

    Attributes
    ----------
    error : OSError or None
        The first error the disk gave; the file on disk is incomplete when set.
    """

    def __init__(self, path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.error: OSError | None = None
        self._pages: dict[int, bytearray] = {}
        self._size = 0
        self._pos = 0

    # -------------------------------------------------------------- file-object protocol
    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(base + int(offset), 0)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        if self.error is None:
            try:
                done = 0
                while done < size:
                    written = os.pwrite(self._fd, view[done:], self._pos + done)
                    if written <= 0:
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    done += written
            except OSError as exc:
                self.error = exc
        if self.error is not None:
            self._write_pages(self._pos, view)
        self._pos += size
        self._size = max(self._size, self._pos)
        return size

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(self._size - self._pos, 0)
        data = self._read_at(self._pos, int(size))
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[:len(data)] = data
        return len(data)

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else int(size)
        if self.error is None:
            try:
                os.ftruncate(self._fd, size)
            except OSError as exc:
                self.error = exc
        for page in [p for p in self._pages if p * PAGE >= size]:
            del self._pages[page]
        last = self._pages.get(size // PAGE)
        if last is not None:
            last[size % PAGE:] = bytes(PAGE - size % PAGE)
        self._size = size
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._pages.clear()

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def fileno(self) -> int:
        return self._fd

    def __enter__(self) -> FailSafeFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------- the pages written after a failure
    def _disk(self, start: int, size: int) -> bytes:
        """``size`` bytes of the disk file from ``start``, zero-padded past its end (like HDF5's sec2 driver)."""
        chunks, done = [], 0
        try:
            while done < size:
                chunk = os.pread(self._fd, size - done, start + done)
                if not chunk:
                    break
                chunks.append(chunk)
                done += len(chunk)
        except OSError as exc:
            if self.error is None:
                self.error = exc
        data = b"".join(chunks)
        return data + bytes(size - len(data))

    def _read_at(self, start: int, size: int) -> bytes:
        if not self._pages:
            return self._disk(start, size)
        out = bytearray()
        end = start + size
        while start < end:
            page, offset = divmod(start, PAGE)
            take = min(PAGE - offset, end - start)
            held = self._pages.get(page)
            out += held[offset:offset + take] if held is not None else self._disk(start, take)
            start += take
        return bytes(out)

    def _write_pages(self, start: int, view: memoryview) -> None:
        done = 0
        while done < len(view):
            page, offset = divmod(start + done, PAGE)
            held = self._pages.get(page)
            if held is None:
                held = self._pages[page] = bytearray(self._disk(page * PAGE, PAGE))
            take = min(PAGE - offset, len(view) - done)
            held[offset:offset + take] = view[done:done + take]
            done += take
