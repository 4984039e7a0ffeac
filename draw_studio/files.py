"""Writing files all-or-nothing, and naming them by their content (no torch, no Qt).

Every file DRAW Studio writes (checkpoints, traces, logs, pictures, cards, CSV) goes through
:func:`atomic_write`: a temporary file in the same folder, flushed to the disk, renamed over the
target. A failure (a full disk, a file-size limit, a read-only folder, no permission) is one line
naming the cause and the fix, and the previous file stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path

from .errors import DrawStudioError

WRITE_PROBLEMS = {
    errno.ENOSPC: "the disk is full; free some space or choose another folder",
    errno.EDQUOT: "the disk quota is exhausted; free some space or choose another folder",
    errno.EFBIG: "the file is larger than this system allows (file-size limit, see ulimit -f); choose "
                 "another folder or raise the limit",
    errno.EROFS: "the folder is on a read-only file system; choose another folder",
    errno.EACCES: "permission denied; choose a folder you can write to",
    errno.EPERM: "permission denied; choose a folder you can write to",
    errno.EIO: "the device reported an I/O error; check the disk or choose another folder",
}


def write_failure(path: str | Path, exc: OSError) -> str:
    """One line saying why ``path`` could not be written and what to do about it."""
    problem = WRITE_PROBLEMS.get(exc.errno) or f"{exc.strerror or exc}; choose another folder"
    return f"could not write {path}: {problem} (nothing was overwritten)"


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(temp_path)`` then rename the temporary file over ``path``.

    The temporary file sits in the same folder; it is flushed to the disk
    before the rename. On any failure (a full disk, a file-size limit, a
    read-only folder, no permission, or ``write`` raising) the temporary file
    is removed and whatever was at ``path`` before stays untouched.

    Raises
    ------
    DrawStudioError
        The file could not be written (one line naming the cause and the fix).
    """
    path = Path(path)
    directory = path.parent
    if not directory.is_dir():
        raise DrawStudioError(f"cannot write {path}: folder {directory} does not exist; create it first")
    if path.is_dir():
        raise DrawStudioError(f"cannot write {path}: it is a folder; give a file name")
    temp = None
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        os.close(fd)
        write(temp)
        _flush_to_disk(temp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp made it private; give it the usual permissions
        os.replace(temp, path)
        temp = None
    except OSError as exc:
        raise DrawStudioError(write_failure(path, exc)) from None
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.remove(temp)


def _flush_to_disk(path: str) -> None:
    """fsync a written file, so that the rename never publishes a file whose bytes are still in flight."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def same_file(a: str | Path | None, b: str | Path | None) -> bool:
    """Whether two paths name the same file, existing or not (resolved: ``..``, symbolic links; and by
    inode: hard links, bind mounts). None names no file."""
    if a is None or b is None:
        return False
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return Path(a).resolve() == Path(b).resolve()


def require_file(path: str | Path, error: type[Exception], folder: str, missing: str) -> Path:
    """``path`` as a Path if it names an existing file.

    Parameters
    ----------
    path : str or Path
    error : type of Exception
        Raised, with ``folder`` when ``path`` is a folder, with ``missing`` when nothing is there.
    folder, missing : str
        One-line messages naming the problem and the fix.
    """
    path = Path(path)
    if path.is_dir():
        raise error(folder)
    if not path.is_file():
        raise error(missing)
    return path


def free_name_beside(path: Path, label: str, suffix: str = ".h5") -> Path:
    """A name that is free beside ``path``: ``X.log.h5`` -> ``X.log.LABEL-1.h5`` (then -2, ...)."""
    stem = path.name[:-len(suffix)] if suffix and path.name.endswith(suffix) else path.name
    for number in range(1, 10_000):
        candidate = path.with_name(f"{stem}.{label}-{number}{suffix}")
        if not candidate.exists():
            return candidate
    raise DrawStudioError(f"too many files set aside beside {path}; remove some")
