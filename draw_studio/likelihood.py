"""Observation models D(x | c_T): negative log-likelihoods in nats per image."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LEVELS = 256  # grey levels of an 8-bit image


def bernoulli_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log Bernoulli(target | sigmoid(logits)), summed over pixels.

    Parameters
    ----------
    logits : Tensor, shape (batch, C, H, W)
        The canvas c_T.
    target : Tensor, shape (batch, C, H, W)
        Binary pixels (0 or 1).

    Returns
    -------
    Tensor, shape (batch,)
    """
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)


def discretized_logistic_nll(canvas: torch.Tensor, target: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """-log P(target) under a logistic discretised to 256 levels, summed over pixels.

    The mean of each pixel is sigmoid(canvas); the scale is exp(log_scale)
    per channel. The outermost bins take the tails, so the probabilities of
    the 256 levels sum to one and the result is a proper bound for 8-bit data.

    Parameters
    ----------
    canvas : Tensor, shape (batch, C, H, W)
    target : Tensor, shape (batch, C, H, W)
        Pixels k / 255 with k in 0..255.
    log_scale : Tensor, shape (C,)

    Returns
    -------
    Tensor, shape (batch,)
    """
    mean = torch.sigmoid(canvas)  # (batch, C, H, W)
    inv_scale = torch.exp(-log_scale)[None, :, None, None]  # (1, C, 1, 1)
    half_bin = 0.5 / (LEVELS - 1)
    upper = (target + half_bin - mean) * inv_scale
    lower = (target - half_bin - mean) * inv_scale
    log_cdf_upper = F.logsigmoid(upper)  # log P(X <= upper edge)
    log_survival_lower = F.logsigmoid(-lower)  # log P(X > lower edge)
    # log(sigmoid(u) - sigmoid(l)) computed stably: sigmoid(u) - sigmoid(l) = sigmoid(u) sigmoid(-l) (1 - e^(l-u))
    log_mass = log_cdf_upper + log_survival_lower + torch.log(-torch.expm1(lower - upper).clamp_max(-1e-12))
    log_mass = torch.where(target < half_bin, log_cdf_upper, log_mass)  # level 0 takes the left tail
    log_mass = torch.where(target > 1 - half_bin, log_survival_lower, log_mass)  # level 255 the right tail
    return -log_mass.flatten(1).sum(1)


def nats_to_bits_per_dim(nats: float, dims: int) -> float:
    """Convert a bound in nats per image to bits per dimension."""
    return nats / (dims * math.log(2))
