"""Numbers as people read them (no Qt, no torch): shared by the command line and the window."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """'1h02m', '3m05s' or '12s'."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
