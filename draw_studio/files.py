"""Writing files all-or-nothing, and naming them by their content (no torch, no Qt).

Every file DRAW Studio writes (checkpoints, traces, logs, pictures, cards, CSV) goes through
:func:`atomic_write`: a temporary file in the same folder, flushed to the disk, renamed over the
target. A failure (a full disk, a file-size limit, a read-only folder, no permission) is one line
naming the cause and the fix, and the previous file stays as it was.

A file of ours that holds work (a checkpoint, a training log, a trace, or an HDF5 file that cannot be
read as one) is only ever replaced by a file of the same kind: a picture, a CSV or a card written to
its name is refused (:func:`refuse_replacing_other_kind`), so a typo in ``--out`` never destroys a run.
:func:`check_output` makes the same checks, and that the folder takes files, before a command computes.
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


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
KEPT_KINDS = {"checkpoint": "a PyTorch checkpoint", "trace": "a DRAW Studio trace", "log": "a DRAW Studio training log",
              "hdf5": "an HDF5 file"}  # what an existing file is -> how a message names it
WRITTEN = {"checkpoint": "a checkpoint", "trace": "a trace", "log": "a training log", None: "the output"}


def stored_kind(path: str | Path) -> str | None:
    """What a file already at ``path`` holds that must not be replaced by a file of another kind:
    ``checkpoint`` (a torch.save zip archive, or a pickle named .ckpt/.pt/.pth), ``trace``, ``log``, ``hdf5``
    (another or a damaged HDF5 file); None for anything else or nothing there."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return None
    if head.startswith(HDF5_SIGNATURE):
        return _hdf5_kind(path)
    if head.startswith(b"PK\x03\x04"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (OSError, zipfile.BadZipFile):
            return None
        return "checkpoint" if any(name.endswith("/data.pkl") for name in names) else None
    if head.startswith(b"\x80") and Path(path).suffix.lower() in (".ckpt", ".pt", ".pth"):
        return "checkpoint"
    return None


# the root "format" attribute of our HDF5 files (trace_file.FORMAT, training_log.FORMAT: datasets, which write
# through this module, may not import those), tested to name a log and a trace as such
HDF5_FORMATS = {"draw-studio/trace": "trace", "draw-studio/training-log": "log"}


def _hdf5_kind(path: str | Path) -> str:
    """``trace`` or ``log`` for our HDF5 files, ``hdf5`` for another or a damaged one (header checked first:
    h5py can spin on a truncated file)."""
    from .hdf5_file import read_image

    try:
        with read_image(path, "trace or training log", "", snapshot=False).open() as f:
            fmt = f.attrs.get("format", "")
    except Exception:  # noqa: BLE001 - a damaged HDF5 file can fail in many ways; it is kept all the same
        return "hdf5"
    fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
    return HDF5_FORMATS.get(fmt, "hdf5")


def refuse_replacing_other_kind(path: str | Path, kind: str | None = None) -> None:
    """Raise DrawStudioError if ``path`` holds a checkpoint, training log, trace or HDF5 file and what is written
    there (``kind``: ``checkpoint``, ``trace``, ``log``; None for a picture, a CSV, a card...) is not the same kind.
    """
    held = stored_kind(path)
    if held is not None and held != kind:
        raise DrawStudioError(f"{path} is {KEPT_KINDS[held]}; {WRITTEN.get(kind, 'the output')} written there "
                              "would destroy it; choose another file name")


def check_output(path: str | Path, kind: str | None = None, folder: bool = False) -> None:
    """Check, before any work, that ``path`` can be written: its folder exists and takes a new file (a file is
    created there and removed), it is not a folder (``folder``: it is one, or will be made in an existing
    folder), and it holds no file of another kind (:func:`refuse_replacing_other_kind`).

    Raises
    ------
    DrawStudioError
        One line naming the problem and the fix.
    """
    path = Path(path).expanduser()
    if folder:
        directory = path if path.is_dir() else path.parent
        if path.exists() and not path.is_dir():
            raise DrawStudioError(f"cannot write into {path}: it is a file, not a folder; give a folder")
    else:
        directory = path.parent
        if path.is_dir():
            raise DrawStudioError(f"cannot write {path}: it is a folder; give a file name")
    if not directory.is_dir():
        raise DrawStudioError(f"cannot write {path}: folder {directory} does not exist; create it first")
    if not folder:
        refuse_replacing_other_kind(path, kind)
    try:
        fd, probe = tempfile.mkstemp(prefix=".draw-studio-probe.", suffix=".tmp", dir=directory)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise DrawStudioError(write_failure(path, exc)) from None


def write_failure(path: str | Path, exc: OSError) -> str:
    """One line saying why ``path`` could not be written and what to do about it."""
    problem = WRITE_PROBLEMS.get(exc.errno) or f"{exc.strerror or exc}; choose another folder"
    return f"could not write {path}: {problem} (nothing was overwritten)"


def atomic_write(path: str | Path, write, kind: str | None = None) -> None:
    """Call ``write(temp_path)`` then rename the temporary file over ``path``.

    The temporary file sits in the same folder; it is flushed to the disk
    before the rename. On any failure (a full disk, a file-size limit, a
    read-only folder, no permission, or ``write`` raising) the temporary file
    is removed and whatever was at ``path`` before stays untouched.

    Parameters
    ----------
    path : str or Path
    write : callable
        ``write(temp_path)`` writes the whole file.
    kind : str, optional
        ``checkpoint``, ``trace`` or ``log`` when that is what is written: a file at ``path`` of another of
        these kinds (or any of them, for None: a picture, a CSV, a card) is never replaced.

    Raises
    ------
    DrawStudioError
        The file could not be written (one line naming the cause and the fix), or would replace a file of
        another kind.
    """
    path = Path(path)
    directory = path.parent
    if not directory.is_dir():
        raise DrawStudioError(f"cannot write {path}: folder {directory} does not exist; create it first")
    if path.is_dir():
        raise DrawStudioError(f"cannot write {path}: it is a folder; give a file name")
    refuse_replacing_other_kind(path, kind)
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
