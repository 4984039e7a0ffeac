"""Where datasets are looked for, in order, and the error when none has them."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError

ENV_DATA = "DRAW_STUDIO_DATA"
ENV_NO_DOWNLOAD = "DRAW_STUDIO_NO_DOWNLOAD"


def cache_dir() -> Path:
    """The user's cache folder for downloaded datasets (XDG_CACHE_HOME honoured)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "draw-studio" / "data"


def candidate_dirs(folder: str, data_dir: str | Path | None, system_dirs: tuple[str, ...] = ()) -> list[Path]:
    """Folders that may hold dataset ``folder``, in the order they are searched.

    ``--data-dir``'s sub-folder ``folder``, then ``--data-dir`` itself (sub-folder
    first, so a parent of both mnist/ and fashion-mnist/ picks the right one);
    ``$DRAW_STUDIO_DATA/folder`` (only without ``--data-dir``: a folder given
    explicitly is never silently replaced by the user's other data folder);
    the cache folder (canonical downloads); then system folders such as
    Debian's /usr/share/datasets.
    """
    dirs: list[Path] = []
    if data_dir:
        dirs += [Path(data_dir) / folder, Path(data_dir)]
    env = os.environ.get(ENV_DATA)
    if env and not data_dir:
        dirs.append(Path(env) / folder)
    dirs.append(cache_dir() / folder)
    dirs += [Path(d) for d in system_dirs]
    return dirs


def find_file(directory: Path, name: str) -> Path | None:
    """``name`` or ``name.gz`` inside ``directory``, whichever exists."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_dir_with(files: list[str], dirs: list[Path]) -> Path | None:
    """The first of ``dirs`` that holds every one of ``files`` (raw or .gz)."""
    for directory in dirs:
        if all(find_file(directory, name) for name in files):
            return directory
    return None


def downloads_allowed(download: bool) -> bool:
    """Downloads are on unless the caller or $DRAW_STUDIO_NO_DOWNLOAD turns them off."""
    return download and os.environ.get(ENV_NO_DOWNLOAD, "") in ("", "0")


def missing_error(pretty: str, dirs: list[Path], reason: str = "", hint: str = "",
                  downloadable: bool = True) -> DataError:
    """One-line error naming every folder searched and how to fix it.

    ``hint`` (e.g. where to get the files by hand) is appended to the fix.
    """
    where = ", ".join(str(d) for d in dict.fromkeys(dirs))
    env = os.environ.get(ENV_DATA)
    if env and dirs and not any(Path(env) in d.parents for d in dirs):  # --data-dir was given
        where += f" (not ${ENV_DATA}, {Path(env) / dirs[0].name}: --data-dir was given)"
    extra = f" ({reason})" if reason else ""
    if downloadable:
        fix = (f"pass --data-dir to a folder holding its files, set {ENV_DATA}, or run once with network "
               "access to download it")
    else:
        fix = f"pass --data-dir to a folder holding its files or set {ENV_DATA}"
    fix += f"; {hint}" if hint else ""
    return DataError(f"{pretty} not found; looked in: {where}{extra}. Fix: {fix}")
