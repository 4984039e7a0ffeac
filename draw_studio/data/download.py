"""Downloading dataset files from mirrors, checked against known checksums.

A file is streamed into a hidden temporary file in the destination folder,
its checksum is verified, and only then is it renamed into place with
``os.replace`` (atomic on one file system). A final name therefore never
holds a partial or unverified file: on a failure the temporary file is
deleted and the next mirror is tried.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .. import SOFTWARE
from ..errors import DataError

TIMEOUT_SECONDS = 15.0
USER_AGENT = f"{SOFTWARE} (dataset downloader; python urllib)"
_CHUNK = 1 << 16
_HASHES = {32: "md5", 64: "sha256"}


def checksum_kind(expected: str) -> str:
    """``"md5"`` for 32 hex digits, ``"sha256"`` for 64 (raises ValueError otherwise)."""
    try:
        int(expected, 16)
        return _HASHES[len(expected)]
    except (KeyError, ValueError):
        raise ValueError(f"checksum {expected!r} is neither an md5 (32 hex digits) nor a sha256 (64)") from None


def file_checksum(path: str | Path, kind: str) -> str:
    """Hex digest ``kind`` (``"md5"`` or ``"sha256"``) of the file at ``path``."""
    digest = hashlib.new(kind)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_files(dest_dir: str | Path, mirrors: list[str] | tuple[str, ...], files: dict[str, str],
                   timeout: float = TIMEOUT_SECONDS) -> list[Path]:
    """Download every file of ``files`` into ``dest_dir``, trying each mirror in order.

    Parameters
    ----------
    dest_dir : str or Path
        Destination folder, created if needed.
    mirrors : sequence of str
        Base URLs (http or https); file ``name`` is fetched from ``mirror + name``.
    files : dict of str to str
        File name -> expected checksum in hex: an md5 (32 digits) or a sha256
        (64 digits), told apart by length. A file already in place with the
        right checksum is not fetched again.
    timeout : float
        Seconds to wait for a connection or for any read.

    Returns
    -------
    list of Path
        The verified files, in the order of ``files``.

    Raises
    ------
    DataError
        One line naming the file and every mirror tried (with why it failed),
        or the folder that cannot be written.
    """
    dest = Path(dest_dir)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create download folder {dest}: {_one_line(exc)}; "
                        "set XDG_CACHE_HOME to a writable folder") from None
    done = []
    for name, expected in files.items():
        kind = checksum_kind(expected)
        final = dest / name
        if not (final.is_file() and file_checksum(final, kind) == expected.lower()):
            _fetch_one(dest, name, expected.lower(), kind, mirrors, timeout)
        done.append(final)
    return done


def _fetch_one(dest: Path, name: str, expected: str, kind: str, mirrors, timeout: float) -> None:
    """Fetch ``name`` from the first mirror that serves it with the ``expected`` checksum."""
    failures = []
    for mirror in mirrors:
        url = mirror if mirror.endswith(name) else mirror.rstrip("/") + "/" + name
        reason = _try_url(url, dest, name, expected, kind, timeout)
        if reason is None:
            return
        failures.append(f"{url} ({reason})")
    raise DataError(f"could not download {name}: tried {'; '.join(failures) or 'no mirror'}; "
                    f"check the network, or put {name} in {dest} by hand")


def _try_url(url: str, dest: Path, name: str, expected: str, kind: str, timeout: float) -> str | None:
    """Download ``url`` to ``dest / name``; None on success, else why it failed."""
    if not url.startswith(("http://", "https://")):
        return "not an http or https address"
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest)
    except OSError as exc:
        raise DataError(f"cannot write into {dest}: {_one_line(exc)}; set XDG_CACHE_HOME to a writable "
                        "folder") from None
    temp = Path(temp_name)
    try:
        digest = hashlib.new(kind)
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        digest.update(chunk)
                        _write(out, chunk, temp)
            except urllib.error.HTTPError as exc:
                return f"HTTP {exc.code}"
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                return _one_line(getattr(exc, "reason", exc))
        got = digest.hexdigest()
        if got != expected:
            return f"{kind} {got}, expected {expected}"
        try:
            os.replace(temp, dest / name)
        except OSError as exc:
            raise DataError(f"cannot move the download into {dest / name}: {_one_line(exc)}; "
                            "remove whatever is in the way") from None
        return None
    finally:
        temp.unlink(missing_ok=True)  # no-op once renamed into place


def _write(out, chunk: bytes, temp: Path) -> None:
    """Write to the temporary file; a local failure (disk full...) is no mirror's fault."""
    try:
        out.write(chunk)
    except OSError as exc:
        raise DataError(f"cannot write {temp}: {_one_line(exc)}; free some disk space or set "
                        "XDG_CACHE_HOME to another folder") from None


def _one_line(value) -> str:
    return " ".join(str(value).split()) or type(value).__name__
