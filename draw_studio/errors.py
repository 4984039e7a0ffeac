"""Errors that reach the user as one clear line instead of a traceback."""


class DrawStudioError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


class DataError(DrawStudioError):
    """A dataset is missing, corrupt or of the wrong shape."""


class CheckpointError(DrawStudioError):
    """A checkpoint file is missing, truncated, corrupt, foreign or mismatched."""


class TraceFormatError(DrawStudioError):
    """An HDF5 file is not a DRAW Studio trace or log of a supported version."""
