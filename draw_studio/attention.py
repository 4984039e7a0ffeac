"""Gaussian read and write attention of DRAW (paper eqs 19-29).

All pixel indices follow the paper: 1-based, so gx~ = 0 puts the grid centre
at (A + 1) / 2. A is the image width, B its height.
"""

from __future__ import annotations

import torch
from torch import nn

PARAM_COLUMNS = ("gx", "gy", "delta", "sigma2", "gamma")
RAW_LOG_SIGMA2 = 2  # log sigma^2 among the head's raw outputs (gx~, gy~, log sigma^2, log delta~, log gamma), eq 21


def attention_params(raw: torch.Tensor, height: int, width: int, n: int) -> torch.Tensor:
    """Map the linear layer's five outputs to attention parameters in pixel units.

    Parameters
    ----------
    raw : Tensor, shape (batch, 5)
        (gx~, gy~, log sigma2, log delta~, log gamma), eq 21.
    height, width : int
        Image size B and A.
    n : int
        Grid size N.

    Returns
    -------
    Tensor, shape (batch, 5)
        Columns ``gx, gy, delta, sigma2, gamma`` (eqs 22-24).
    """
    gx_t, gy_t, log_sigma2, log_delta_t, log_gamma = raw.unbind(-1)  # each (batch,)
    gx = (width + 1) / 2 * (gx_t + 1)
    gy = (height + 1) / 2 * (gy_t + 1)
    delta = (max(width, height) - 1) / max(n - 1, 1) * torch.exp(log_delta_t)
    return torch.stack((gx, gy, delta, torch.exp(log_sigma2), torch.exp(log_gamma)), dim=-1)


def filterbank_1d(centre: torch.Tensor, delta: torch.Tensor, sigma2: torch.Tensor,
                  n: int, size: int) -> torch.Tensor:
    """One axis of the filterbank, eqs 19/20 and 25/26.

    Parameters
    ----------
    centre, delta, sigma2 : Tensor, shape (batch,)
        Grid centre, stride and variance in 1-based pixel units.
    n : int
        Grid size N.
    size : int
        Image extent along this axis (A or B).

    Returns
    -------
    Tensor, shape (batch, n, size)
        Rows are normalised Gaussians: every row sums to 1.
    """
    grid = torch.arange(1, n + 1, device=centre.device, dtype=centre.dtype)  # (n,) i = 1..N
    mu = centre[:, None] + (grid - n / 2 - 0.5) * delta[:, None]  # (batch, n)
    pixels = torch.arange(1, size + 1, device=centre.device, dtype=centre.dtype)  # (size,) a = 1..A
    exponent = -((pixels - mu[:, :, None]) ** 2) / (2 * sigma2[:, None, None])  # (batch, n, size)
    # exp(.) / Z_X computed as a softmax: the same numbers, but a filter whose centre lies far outside
    # the image keeps its mass on the nearest pixels instead of underflowing to 0 / 0.
    return torch.softmax(exponent, dim=-1)


def filterbanks(params: torch.Tensor, height: int, width: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Build F_X (batch, N, A) and F_Y (batch, N, B) from ``params`` (batch, 5)."""
    gx, gy, delta, sigma2, _ = params.unbind(-1)
    return filterbank_1d(gx, delta, sigma2, n, width), filterbank_1d(gy, delta, sigma2, n, height)


def read_glimpse(images: torch.Tensor, fx: torch.Tensor, fy: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """gamma * F_Y x F_X^T for every channel (eq 27).

    Parameters
    ----------
    images : Tensor, shape (batch, C, B, A)
    fx : Tensor, shape (batch, N, A)
    fy : Tensor, shape (batch, N, B)
    gamma : Tensor, shape (batch,)

    Returns
    -------
    Tensor, shape (batch, C, N, N)
    """
    glimpse = fy[:, None] @ images @ fx[:, None].transpose(-1, -2)  # (batch, C, N, N)
    return glimpse * gamma[:, None, None, None]


def write_patch(patch: torch.Tensor, fx: torch.Tensor, fy: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """(1 / gamma) * F_Y^T w F_X for every channel (eq 29).

    Parameters
    ----------
    patch : Tensor, shape (batch, C, N, N)
    fx : Tensor, shape (batch, N, A)
    fy : Tensor, shape (batch, N, B)
    gamma : Tensor, shape (batch,)

    Returns
    -------
    Tensor, shape (batch, C, B, A)
    """
    image = fy[:, None].transpose(-1, -2) @ patch @ fx[:, None]  # (batch, C, B, A)
    return image / gamma[:, None, None, None]


def window_extent(params, n: int) -> tuple[float, float, float, float]:
    """Where an N x N filter grid lies: (x0, x1, y0, y1) = gx -+ delta (N-1)/2, gy -+ delta (N-1)/2.

    Parameters
    ----------
    params : array-like, shape (5,)
        ``gx, gy, delta, sigma2, gamma`` (the paper's 1-based pixel units, as in traces).
    n : int
        Grid size N.

    Returns
    -------
    tuple of float
        The outermost filter centres, in 1-based pixel coordinates (pixel a covers a +- 0.5).
        The exporter and the window's timeline both draw windows from this.
    """
    gx, gy, delta = (float(v) for v in params[:3])
    half = delta * (n - 1) / 2
    return gx - half, gx + half, gy - half, gy + half


class AttentionHead(nn.Module):
    """The linear layer W(h_dec) of eq 21 for one of read or write.

    Read and write each own one of these: they never share weights.
    """

    def __init__(self, hidden_size: int, height: int, width: int, n: int) -> None:
        super().__init__()
        self.height, self.width, self.n = height, width, n
        self.linear = nn.Linear(hidden_size, 5)

    def forward(self, h_dec: torch.Tensor) -> torch.Tensor:
        """Return attention parameters (batch, 5) in pixel units from h_dec (batch, hidden)."""
        return attention_params(self.linear(h_dec), self.height, self.width, self.n)
