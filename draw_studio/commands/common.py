"""Arguments and helpers shared by several commands."""

from __future__ import annotations

import argparse
import sys


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")


def add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="folder holding the dataset files (searched before $DRAW_STUDIO_DATA and the cache)")
    parser.add_argument("--no-download", action="store_true", help="never download a missing dataset")


def status(message: str) -> None:
    """Progress text for people goes to stderr, so stdout stays clean for --json."""
    print(message, file=sys.stderr, flush=True)


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
