"""Binarisation of grey-level images for the Bernoulli likelihood.

* dynamic: a fresh Bernoulli draw every time an image is used (training);
* fixed: one draw per split with a recorded seed, identical on every run and
  every machine (numpy's PCG64 stream), used for every reported test number;
* the Salakhutdinov-Murray files are binary already (see ``amat``).
"""

from __future__ import annotations

import numpy as np
import torch

FIXED_BINARIZATION_SEED = 1502_04623  # the paper's arXiv number; recorded in every eval result


def fixed_binarization(images: np.ndarray, seed: int = FIXED_BINARIZATION_SEED) -> np.ndarray:
    """One Bernoulli draw of a whole split, reproducible from ``seed``.

    Parameters
    ----------
    images : ndarray, shape (n, C, H, W), uint8 grey levels 0..255

    Returns
    -------
    ndarray, shape (n, C, H, W), uint8 values 0 or 1
    """
    uniform = np.random.Generator(np.random.PCG64(seed)).random(images.shape, dtype=np.float32)
    return (uniform < images.astype(np.float32) / 255.0).astype(np.uint8)


def dynamic_binarization(grey: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A fresh Bernoulli draw of a batch of grey images in [0, 1] (batch, C, H, W)."""
    return torch.bernoulli(grey, generator=generator)
