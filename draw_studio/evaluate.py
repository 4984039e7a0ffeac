"""The variational bound and the importance-weighted bound on held-out images."""

from __future__ import annotations

import collections
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .data import FIXED_BINARIZATION_SEED
from .errors import DrawStudioError
from .likelihood import nats_to_bits_per_dim
from .model import DRAW
from .seeding import make_generator, mix_seed


@dataclass
class EvalResult:
    """Bounds in nats per image (lower is better).

    ``bound`` = ``nll_x`` + ``kl`` is the ELBO bound; ``iw_bound`` the
    K-sample importance-weighted bound (None unless asked for);
    ``bits_per_dim`` is given for continuous likelihoods.
    """

    bound: float
    nll_x: float
    kl: float
    n: int
    importance_samples: int
    iw_bound: float | None
    bits_per_dim: float | None
    iw_bits_per_dim: float | None
    binarization: str
    binarization_seed: int | None
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)

    def nonfinite(self) -> dict[str, float]:
        """The figures that are NaN or infinite (a diverged model), by name; empty when all are finite."""
        return {name: value for name in ("bound", "nll_x", "kl", "iw_bound", "bits_per_dim", "iw_bits_per_dim")
                if (value := getattr(self, name)) is not None and not math.isfinite(value)}

    def require_finite(self, source: str) -> None:
        """Raise when a figure is not finite: a NaN bound is never a result.

        Raises
        ------
        DrawStudioError
            Naming ``source`` (e.g. the checkpoint) and the non-finite figures.
        """
        bad = self.nonfinite()
        if bad:
            shown = ", ".join(f"{name} = {value}" for name, value in bad.items())
            raise DrawStudioError(f"{source} gives a non-finite bound ({shown}) on {self.n} images: its weights "
                                  "have diverged; evaluate an earlier checkpoint or train again")


def importance_weighted_nll(model: DRAW, x: torch.Tensor, k: int, generator: torch.Generator | None = None
                            ) -> torch.Tensor:
    """-log mean_k p(x, z_k) / q(z_k | x) per image (Burda et al.), with z_k drawn from the posterior.

    Parameters
    ----------
    x : Tensor, shape (b, C, H, W)
    k : int
        Samples K per image (K = 1: a one-sample estimate of the variational bound).

    Returns
    -------
    Tensor, shape (b,)
        Nats per image; its mean over images falls as K grows (in expectation).
    """
    repeated = x.repeat_interleave(k, dim=0)  # (b*K, C, H, W)
    weights, _ = model(repeated, generator=generator)
    log_w = weights.log_weight.view(len(x), k)  # (b, K)
    return -(torch.logsumexp(log_w, dim=1) - math.log(k))


@torch.inference_mode()
def evaluate_in_parts(model: DRAW, pixels: np.ndarray | torch.Tensor, batch_size: int = 500, seed: int = 0,
                      importance_samples: int = 0, shard: tuple[int, int] = (0, 1)) -> Iterator[dict[str, float]]:
    """The sums behind :func:`evaluate`, yielded after each forward pass (for progress).

    Parameters
    ----------
    importance_samples : int
        K >= 1 also sums :func:`importance_weighted_nll` (K = 1 included, unlike :func:`evaluate`); the
        images then go ``batch_size // K`` at a time (at least one).
    shard : (int, int)
        ``(i, n)``: only the chunks whose index modulo n is i, each with the noise it has in the whole pass
        (the ranks of a distributed run each take one shard and add their sums).

    Yields
    ------
    dict
        ``images`` (done so far), and the sums over them (nats) of ``bound``, ``nll_x``, ``kl`` and
        ``iw`` (0 without importance samples). With the same arguments the sums are exactly
        :func:`evaluate`'s.
    """
    device = next(model.parameters()).device
    pixels = torch.as_tensor(pixels)
    totals = {"images": 0, "bound": 0.0, "nll_x": 0.0, "kl": 0.0, "iw": 0.0}
    k = max(int(importance_samples), 0)
    chunk = max(1, batch_size // k) if k > 1 else batch_size
    for index, start in enumerate(range(0, len(pixels), chunk)):
        if index % shard[1] != shard[0]:
            continue
        x = pixels[start:start + chunk].to(device)  # (b, C, H, W)
        generator = make_generator(device, mix_seed(seed, index))
        terms, _ = model(x, generator=generator)
        totals["bound"] += terms.bound.sum().item()
        totals["nll_x"] += terms.nll_x.sum().item()
        totals["kl"] += terms.kl.sum().item()
        if k >= 1:
            totals["iw"] += importance_weighted_nll(model, x, k, generator).sum().item()
        totals["images"] += len(x)
        yield dict(totals)


def evaluate(model: DRAW, pixels: np.ndarray | torch.Tensor, batch_size: int = 500, seed: int = 0,
             importance_samples: int = 0, binarization: str = "fixed",
             binarization_seed: int | None = FIXED_BINARIZATION_SEED) -> EvalResult:
    """Average bound of ``model`` on ``pixels`` (n, C, H, W) in [0, 1].

    Parameters
    ----------
    batch_size : int
        Images per forward pass (divided by K for the weighted bound).
    seed : int
        Seed of the posterior noise: the same seed gives the same numbers.
    importance_samples : int
        K > 1 also computes log mean_k p(x, z_k) / q(z_k | x) (Burda et al.).
    """
    n = len(pixels)
    k = max(int(importance_samples), 0)
    parts = evaluate_in_parts(model, pixels, batch_size, seed, k if k > 1 else 0)
    totals = collections.deque(parts, maxlen=1)[0] if n else {"bound": 0.0, "nll_x": 0.0, "kl": 0.0, "iw": 0.0}
    dims = int(np.prod(pixels.shape[1:]))
    bound = totals["bound"] / n
    iw_bound = totals["iw"] / n if k > 1 else None
    continuous = model.config.likelihood != "bernoulli"
    return EvalResult(
        bound=bound, nll_x=totals["nll_x"] / n, kl=totals["kl"] / n, n=n, importance_samples=k,
        iw_bound=iw_bound,
        bits_per_dim=nats_to_bits_per_dim(bound, dims) if continuous else None,
        iw_bits_per_dim=nats_to_bits_per_dim(iw_bound, dims) if continuous and iw_bound is not None else None,
        binarization=binarization, binarization_seed=binarization_seed, seed=seed)
