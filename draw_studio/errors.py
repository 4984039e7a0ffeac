"""Errors that reach the user as one clear line instead of a traceback."""


class DrawStudioError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


class DataError(DrawStudioError):
    """A dataset is missing, corrupt or of the wrong shape."""


class CheckpointError(DrawStudioError):
    """A checkpoint file is missing, truncated, corrupt, foreign or mismatched."""


class FileFormatError(DrawStudioError):
    """A file is not what DRAW Studio expects: not HDF5, truncated, or of another format or version."""


class TraceFormatError(FileFormatError):
    """An HDF5 file is not a DRAW Studio trace of a supported version."""


class TrainingLogError(FileFormatError):
    """A training log is missing, damaged, truncated or of an unsupported version."""


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first line of ``exc``'s message (its type's name when it has none), at most ``limit`` characters."""
    text = str(exc).strip()
    return ((text.splitlines() or [""])[0] or type(exc).__name__)[:limit]
