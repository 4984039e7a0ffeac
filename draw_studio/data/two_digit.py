"""Two-digit MNIST: 60x60 images of two MNIST digits, as in the DRAW paper's section 4.2.

Each split is built from the same split of MNIST (train, valid, test; the
validation split is carved out of MNIST's training part first, so no digit
image is shared between splits) and has as many images. Image i pastes two
different digits of that split, drawn at random, at random positions of a
black 60x60 canvas, combined with a pixel-wise maximum. Its label is
``first * 10 + second`` (the digits in the order drawn). The random stream is
numpy's PCG64 with a fixed seed per split, so every run and every machine
builds the same images.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .imageset import DatasetSpec, ImageSet
from .mnist import IDX_FILES, download_mnist, load_idx_pair

CANVAS = 60
SEEDS = {"train": 1502_04623_0, "valid": 1502_04623_1, "test": 1502_04623_2}


def compose_two_digits(source: ImageSet, seed: int, canvas: int = CANVAS) -> ImageSet:
    """Paste pairs of ``source`` digits into ``canvas`` x ``canvas`` images.

    Parameters
    ----------
    source : ImageSet
        Single-digit images (n, 1, h, w) with labels, n >= 2.
    seed : int
        Seed of the PCG64 stream choosing digits and positions.

    Returns
    -------
    ImageSet
        n images (n, 1, canvas, canvas) uint8; labels first * 10 + second.
    """
    n, channels, h, w = source.images.shape
    if n < 2 or source.labels is None or h > canvas or w > canvas:
        raise DataError(f"two-digit images need at least 2 labelled digits no larger than {canvas}x{canvas}, "
                        f"got {source.images.shape}; use MNIST as the source")
    rng = np.random.Generator(np.random.PCG64(seed))
    first = rng.integers(0, n, size=n)
    second = (first + rng.integers(1, n, size=n)) % n  # never the same image twice
    rows = rng.integers(0, canvas - h + 1, size=(n, 2))
    cols = rng.integers(0, canvas - w + 1, size=(n, 2))
    out = np.zeros((n, channels, canvas, canvas), dtype=np.uint8)  # (n, C, 60, 60)
    for k, index in enumerate((first, second)):
        for i in range(n):
            r, c = rows[i, k], cols[i, k]
            window = out[i, :, r:r + h, c:c + w]
            np.maximum(window, source.images[index[i]], out=window)
    labels = source.labels[first] * 10 + source.labels[second]
    return ImageSet(out, labels.astype(np.int64), source.binary, f"two-digit from {source.source}")


def derive_two_digit(source: ImageSet, split: str) -> ImageSet:
    """The two-digit version of MNIST split ``split``, with that split's fixed seed."""
    return compose_two_digits(source, SEEDS[split])


TWO_DIGIT_MNIST = DatasetSpec("two-digit MNIST (built from MNIST)", "mnist", IDX_FILES, load_idx_pair,
                              download_mnist, derive=derive_two_digit)
