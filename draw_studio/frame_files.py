"""The frames an export writes into a folder: their names, the earlier export's beyond them, what is said."""

from __future__ import annotations

import re
from pathlib import Path

FRAME_NAME = re.compile(r"frame_\d{3,}\.png")  # the names export_frames writes: frame_000.png, frame_0000.png...


class WrittenFrames(list):
    """The paths of the frames :func:`export_frames` wrote (a list of Path), with ``removed``: the earlier
    export's frames in the folder beyond them, deleted (a list of Path)."""

    def __init__(self, paths=(), removed=()):
        super().__init__(paths)
        self.removed = list(removed)


def frame_files(out_dir: str | Path) -> list[Path]:
    """The files in ``out_dir`` named as :func:`export_frames` names frames (``frame_NNN.png``).

    Parameters
    ----------
    out_dir : str or Path
        A folder of frames (one that does not exist holds none).

    Returns
    -------
    list of Path
        Sorted by name; empty when ``out_dir`` is not a folder.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    return sorted(path for path in out_dir.iterdir() if FRAME_NAME.fullmatch(path.name) and not path.is_dir())


def frames_written_text(written: WrittenFrames, out_dir: str | Path) -> str:
    """``wrote 5 frames to DIR`` and, when earlier frames were removed, ``(removed 60 frames of an earlier
    export)``: what the command line and the window say after :func:`export_frames`.

    Parameters
    ----------
    written : WrittenFrames
        What :func:`export_frames` returned.
    out_dir : str or Path
        The folder, as the user gave it.

    Returns
    -------
    str
    """
    removed = len(getattr(written, "removed", ()))
    note = f" (removed {removed} frame{'s' if removed != 1 else ''} of an earlier export)" if removed else ""
    return f"wrote {len(written)} frames to {out_dir}{note}"
