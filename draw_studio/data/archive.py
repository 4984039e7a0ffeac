"""Safe extraction of named regular files from a tar archive.

Only members whose base name is asked for and that are regular files are
written, each under its base name directly in the destination folder (so no
member path, absolute path, ``..`` or link can place a file anywhere else),
through a temporary file renamed into place.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from ..errors import DataError


def extract_members(archive: str | Path, dest_dir: str | Path, names: tuple[str, ...] | list[str]) -> list[Path]:
    """Extract the regular files called ``names`` (base names) from ``archive`` into ``dest_dir``.

    Parameters
    ----------
    archive : str or Path
        A tar file, compressed or not.
    dest_dir : str or Path
        Folder that receives the files, flat, under their base names.
    names : sequence of str
        Base names wanted; every one must be in the archive exactly once.

    Returns
    -------
    list of Path
        The extracted files, in the order of ``names``.

    Raises
    ------
    DataError
        If the archive is unreadable or lacks one of ``names``.
    """
    archive, dest = Path(archive), Path(dest_dir)
    wanted = set(names)
    found: dict[str, Path] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = PurePosixPath(member.name).name
                if base not in wanted or not member.isreg():
                    continue
                if base in found:
                    raise DataError(f"{archive} holds {base} twice; delete it and download it again")
                found[base] = _copy_member(tar, member, dest / base)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"cannot extract {archive}: {' '.join(str(exc).split())}; "
                        "delete it and download it again") from None
    missing = [name for name in names if name not in found]
    if missing:
        raise DataError(f"{archive} lacks {', '.join(missing)}; delete it and download it again")
    return [found[name] for name in names]


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> Path:
    """Stream one member into ``target`` through a temporary file."""
    source = tar.extractfile(member)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        os.replace(temp_name, target)
    finally:
        Path(temp_name).unlink(missing_ok=True)
    return target
