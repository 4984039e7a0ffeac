"""Reconstruct a drawing, and say how surprising it is to the model next to the test set.

The bound L = L_x + L_z (nats) of the drawing is compared with the per-image bounds of the test
split, computed as ``draw-studio eval`` computes them (batches of 500, the noise of batch b from
``mix_seed(seed, b)``, the split's fixed binarisation), so their mean is ``eval``'s bound. Its
percentile is the share of test images whose bound is at most the drawing's (in %: 99 means only
1 % of the test images are more surprising). The per-image bounds are cached per checkpoint
SHA-256 under ``$XDG_CACHE_HOME/draw-studio/bounds`` (default ``~/.cache``).

For a Bernoulli model the test images are the split's fixed random binarisation, while a drawing is
thresholded at 0.5: clean strokes tend to score below the test digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.locate import cache_dir
from ..errors import DrawStudioError
from ..files import atomic_write
from ..model import DRAW
from ..seeding import make_generator, mix_seed
from ..trace import TraceInputs, record_trace
from .drawing import load_drawing
from .result import ExploreResult

EVAL_BATCH = 500  # draw-studio eval's batch: the same noise per image


@dataclass
class SplitBounds:
    """Per-image bounds of a test split.

    Attributes
    ----------
    bounds : ndarray, shape (n,)
        Nats per image.
    source : str
        ``"<dataset>/<split>"``.
    seed : int
        Seed of the posterior noise (as ``eval --seed``).
    """

    bounds: np.ndarray
    source: str
    seed: int = 0

    @property
    def mean(self) -> float:
        """The mean bound: ``draw-studio eval``'s figure on these images."""
        return float(np.mean(self.bounds))

    def percentile(self, bound: float) -> float:
        """Share of these images (in %) whose bound is at most ``bound``."""
        return float(100.0 * np.mean(self.bounds <= bound))


@torch.inference_mode()
def per_image_bounds(model: DRAW, pixels: np.ndarray, seed: int = 0, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """The bound of each image (n,), with the noise ``draw_studio.evaluate.evaluate`` uses."""
    device = next(model.parameters()).device
    bounds = []
    for index, start in enumerate(range(0, len(pixels), batch_size)):
        x = torch.as_tensor(np.asarray(pixels[start:start + batch_size], dtype=np.float32), device=device)
        terms, _ = model(x, generator=make_generator(device, mix_seed(seed, index)))
        bounds.append(terms.bound.cpu().numpy())
    return np.concatenate(bounds).astype(np.float64)


def bounds_cache(sha256: str, source: str, n: int, seed: int) -> Path:
    """Where the per-image bounds of ``n`` images of ``source`` under checkpoint ``sha256`` are cached."""
    return cache_dir().parent / "bounds" / f"{sha256}-{source.replace('/', '-')}-n{n}-seed{seed}.npy"


def cached_split_bounds(sha256: str, source: str, seed: int = 0) -> SplitBounds | None:
    """The largest cached set of test bounds for this checkpoint and split, or None."""
    if not sha256:
        return None
    folder = bounds_cache(sha256, source, 0, seed).parent
    found = []
    for path in folder.glob(f"{sha256}-{source.replace('/', '-')}-n*-seed{seed}.npy") if folder.is_dir() else ():
        try:
            found.append(np.load(path))
        except (OSError, ValueError):
            continue
    found = [array for array in found if array.ndim == 1 and len(array)]
    return SplitBounds(max(found, key=len), source, seed) if found else None


def split_bounds(model: DRAW, pixels: np.ndarray, source: str, sha256: str = "", seed: int = 0,
                cache: bool = True) -> SplitBounds:
    """Per-image bounds of ``pixels`` (n, C, H, W), read from the cache or computed (and cached).

    A cache that cannot be read or written is skipped silently: the bounds are then computed.
    """
    path = bounds_cache(sha256, source, len(pixels), seed) if sha256 and cache else None
    if path is not None and path.is_file():
        try:
            bounds = np.load(path)
            if bounds.shape == (len(pixels),):
                return SplitBounds(bounds, source, seed)
        except (OSError, ValueError):
            pass
    bounds = per_image_bounds(model, pixels, seed)
    if path is not None:
        def write(temp: str) -> None:
            with open(temp, "wb") as handle:
                np.save(handle, bounds)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, write)
        except (OSError, DrawStudioError):
            pass
    return SplitBounds(bounds, source, seed)


def reconstruct_pixels(model: DRAW, pixels: np.ndarray, info: dict, seed: int = 0, test: SplitBounds | None = None,
                       checkpoint_sha256: str = "") -> ExploreResult:
    """Reconstruct one prepared image (1, C, H, W) (see :func:`draw_studio.explore.drawing.prepare_picture`).

    The noise is that of ``draw-studio trace --images FILE --seed SEED``: one batch of one image.

    Returns
    -------
    ExploreResult
        A one-image reconstruction trace; the intervention holds ``info``, the ``seed``, the
        ``bound``, ``nll_x`` and ``kl`` (nats) and, with ``test``, ``test_mean_bound``,
        ``test_percentile``, ``test_images`` and ``test_source``.
    """
    trace = record_trace(model, TraceInputs(images=pixels, source="files", seed=seed), batch_size=1,
                         checkpoint_sha256=checkpoint_sha256)
    nll_x, kl = float(trace.nll_x[0]), float(trace.kl[0].sum())
    intervention = {"tool": "reconstruct-image", **info, "seed": int(seed), "bound": nll_x + kl, "nll_x": nll_x,
                    "kl": kl}
    if test is not None:
        intervention.update(test_mean_bound=test.mean, test_percentile=test.percentile(nll_x + kl),
                            test_images=len(test.bounds), test_source=test.source, test_seed=test.seed)
    return ExploreResult(trace, intervention)


def reconstruct_image(model: DRAW, picture: str | Path, seed: int = 0, centre: bool = True,
                      invert: bool | None = None, test: SplitBounds | None = None,
                      checkpoint_sha256: str = "") -> ExploreResult:
    """Reconstruct a picture file: ``drawing.load_drawing``, then :func:`reconstruct_pixels`."""
    pixels, info = load_drawing(picture, model.config, centre, invert)
    return reconstruct_pixels(model, pixels, info, seed, test, checkpoint_sha256)
