"""Types of command-line arguments: every number, list and device is checked in the parser.

Each type takes the text of one argument and returns its value, or raises
``argparse.ArgumentTypeError`` with the reason; the parser then prints one line
``draw-studio CMD: error: argument --x: REASON`` and exits with code 2 (see
:func:`draw_studio.commands.common.command_parser`), before anything is loaded.

Bounds that depend on the data (an index past the end of a split, a batch that
would not fit in memory) are checked once the data or the model is known, by
the command itself; see :mod:`draw_studio.memory`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from ..config import MAX_SEED
from ..errors import DrawStudioError

MAX_INT = 2 ** 63 - 1  # every count and index ends up in an int64 tensor or HDF5 dataset


def _whole(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def integer(low: int, high: int = MAX_INT, meaning: str = "", what: str = "") -> Callable[[str], int]:
    """An argument type for whole numbers in [low, high].

    Parameters
    ----------
    low, high : int
        Inclusive bounds.
    meaning : str
        What the bound means, added to the message (e.g. ``"0: never"``).
    what : str
        The subject of the message (e.g. ``"the batch size"``); default none.
    """
    def parse(text: str) -> int:
        value = _whole(text)
        if not low <= value <= high:
            upper = "" if high == MAX_INT else f" and at most {high}"
            note = f" ({meaning})" if meaning else ""
            subject = f"{what} " if what else ""
            raise argparse.ArgumentTypeError(f"{subject}must be a whole number of at least {low}{upper}{note}, "
                                             f"got {text!r}")
        return value

    parse.__name__ = f"integer_from_{low}"
    return parse


positive_int = integer(1)
non_negative_int = integer(0)
batch_size = integer(1, what="the batch size")
threads = integer(0, 1024, "0: PyTorch's choice")


def seed(text: str) -> int:
    """A random seed: a whole number in [0, 2**63 - 1], what torch and numpy accept."""
    value = _whole(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed must be between 0 and {MAX_SEED} (2**63 - 1), got {text!r}")
    return value


def real(low: float = -math.inf, high: float = math.inf, low_open: bool = False,
         high_open: bool = False) -> Callable[[str], float]:
    """An argument type for finite numbers in an interval; NaN and infinities are refused.

    Parameters
    ----------
    low, high : float
        Ends of the interval (infinite: no bound on that side).
    low_open, high_open : bool
        Exclude that end.
    """
    def parse(text: str) -> float:
        try:
            value = float(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if value < low or value > high or (low_open and value == low) or (high_open and value == high):
            raise argparse.ArgumentTypeError(f"must be {_interval(low, high, low_open, high_open)}, got {text!r}")
        return value

    parse.__name__ = "real"
    return parse


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if high == math.inf:
        return f"{'greater than' if low_open else 'at least'} {low:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


finite_float = real()
positive_float = real(0.0, low_open=True)
non_negative_float = real(0.0)
probability = real(0.0, 1.0, low_open=True, high_open=True)
adam_beta = real(0.0, 1.0, high_open=True)  # torch's Adam accepts 0 <= beta < 1


def index_list(text: str) -> list[int]:
    """``"3,17,42"`` -> [3, 17, 42]: at least one index, each a whole number >= 0.

    Whether each index exists is checked once the data is loaded.
    """
    parts = [part.strip() for part in str(text).split(",")]
    if not any(parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated indices such as 3,17,42, got {text!r}")
    values = []
    for part in parts:
        if not part:
            raise argparse.ArgumentTypeError(f"an empty entry in {text!r}; write indices like 3,17,42")
        try:
            value = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not a whole number; write indices like 3,17,42") from None
        if not 0 <= value <= MAX_INT:
            raise argparse.ArgumentTypeError(f"index {part} is out of range: indices count images from 0 "
                                             f"(at most {MAX_INT})")
        values.append(value)
    return values


def device(text: str) -> str:
    """A device this machine has (auto, cpu, cuda, cuda:N, mps); returns the name as given."""
    from ..device import resolve_device

    try:
        resolve_device(text)
    except DrawStudioError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
