"""Small real data for tests: slices of the real MNIST in ../shared/data/mnist."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from draw_studio.data import ImageSet, load_split

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"


@cache
def mnist_split(split: str) -> ImageSet:
    """A real MNIST split (cached for the test session)."""
    return load_split("mnist", split, MNIST_DIR, download=False)


def mnist_slice(split: str, count: int) -> ImageSet:
    """The first ``count`` images of a real MNIST split."""
    return mnist_split(split).subset(slice(0, count))
