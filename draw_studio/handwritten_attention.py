"""Read and write attention by hand, forward and backward: the same numbers as ``attention.py`` (eqs 19-29).

Both kinds are computed together from one h_dec: the write of step s and the read of step s+1.
Their filterbanks are stacked, write rows first (``Sizes.write_rows``, ``Sizes.read_rows``).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch

from .handwritten_buffers import AttentionBuffers, Sizes
from .handwritten_ops import small_matmul, store

RAW_ORDER = [0, 1, 3, 2, 4]  # (gx, gy, delta, sigma2, gamma) <-> raw (gx~, gy~, log sigma2, log delta~, log gamma)


class GridConstants(NamedTuple):
    """What the filterbanks of a pass share; ``rows`` counts the filter rows of both kinds."""

    kind: torch.Tensor  # (rows,): the kind (0, 1) of each filter row
    offsets: torch.Tensor  # (rows,): i - N/2 - 0.5 of each row (eqs 19, 20)
    delta_scale: torch.Tensor  # (K,): (max(A, B) - 1) / (N - 1) of each kind (eq 24)
    pixels_x: torch.Tensor  # (A,): 1..A
    pixels_y: torch.Tensor  # (B,): 1..B


@functools.lru_cache(maxsize=8)
def grid_constants(sizes: Sizes, device: torch.device, dtype: torch.dtype) -> GridConstants:
    """The ``GridConstants`` of a pass of these sizes (kept: the same for every pass of a run)."""
    ns = [sizes.write_n] * sizes.write_attn + [sizes.read_n] * sizes.read_attn
    kind = torch.cat([torch.full((n,), k) for k, n in enumerate(ns)] or [torch.zeros(0, dtype=torch.long)])
    offsets = torch.cat([torch.arange(1, n + 1) - n / 2 - 0.5 for n in ns] or [torch.zeros(0)])
    delta_scale = torch.tensor([(max(sizes.width, sizes.height) - 1) / max(n - 1, 1) for n in ns])
    return GridConstants(kind.to(device), offsets.to(device, dtype), delta_scale.to(device, dtype),
                         torch.arange(1, sizes.width + 1, device=device, dtype=dtype),
                         torch.arange(1, sizes.height + 1, device=device, dtype=dtype))


def filterbanks(sizes: Sizes, constants: GridConstants, raw: torch.Tensor):
    """Parameters (batch, K, 5) = gx, gy, delta, sigma2, gamma from raw (batch, K, 5) (eqs 21-24) and the
    filterbanks F_X (batch, rows, A), F_Y (batch, rows, B) of every kind, stacked (eqs 19, 20, 25, 26)."""
    kind, offsets, delta_scale, pixels_x, pixels_y = constants
    exp = raw.exp()
    params = torch.stack(((sizes.width + 1) / 2 * (raw[..., 0] + 1), (sizes.height + 1) / 2 * (raw[..., 1] + 1),
                          delta_scale * exp[..., 3], exp[..., 2], exp[..., 4]), dim=-1)
    rows = params[:, kind]  # (batch, rows, 5)
    shift = offsets[:, None] * rows[..., 2:3]  # (batch, rows, 1)
    two_sigma2 = 2 * rows[..., 3:4]
    fx = torch.softmax(-(pixels_x - (rows[..., 0:1] + shift)).square() / two_sigma2, dim=-1)
    fy = torch.softmax(-(pixels_y - (rows[..., 1:2] + shift)).square() / two_sigma2, dim=-1)
    return params, fx, fy


def filterbanks_backward(sizes: Sizes, constants: GridConstants, d_fx: torch.Tensor, d_fy: torch.Tensor,
                         d_gamma: torch.Tensor, params: torch.Tensor, fx: torch.Tensor,
                         fy: torch.Tensor) -> torch.Tensor:
    """Gradient of the raw parameters (batch, K, 5) from those of F_X, F_Y (batch, rows, .) and gamma (batch, K)."""
    kind, offsets, _, pixels_x, pixels_y = constants
    rows = params[:, kind]
    shift = offsets[:, None] * rows[..., 2:3]
    sigma2 = rows[..., 3:4]  # (batch, rows, 1)
    diff_x = pixels_x - (rows[..., 0:1] + shift)  # (batch, rows, A)
    diff_y = pixels_y - (rows[..., 1:2] + shift)
    d_ex = fx * (d_fx - (d_fx * fx).sum(-1, keepdim=True)) / sigma2  # d exponent (softmax backward) / sigma2
    d_ey = fy * (d_fy - (d_fy * fy).sum(-1, keepdim=True)) / sigma2
    d_mu_x = (d_ex * diff_x).sum(-1)  # (batch, rows)
    d_mu_y = (d_ey * diff_y).sum(-1)
    d_sigma2 = ((d_ex * diff_x.square()).sum(-1) + (d_ey * diff_y.square()).sum(-1)) / (2 * sigma2[..., 0])
    per_row = torch.stack((d_mu_x, d_mu_y, (d_mu_x + d_mu_y) * offsets, d_sigma2), dim=-1)  # (batch, rows, 4)
    per_kind = [per_row[:, rows_of_kind].sum(1) for rows_of_kind in (sizes.write_rows, sizes.read_rows)
                if rows_of_kind.stop > rows_of_kind.start]  # each (batch, 4)
    d_params = torch.cat((torch.stack(per_kind, 1), d_gamma[..., None]), dim=-1)  # (batch, K, 5)
    scale = torch.cat((torch.full_like(params[..., :1], (sizes.width + 1) / 2),
                       torch.full_like(params[..., :1], (sizes.height + 1) / 2), params[..., 2:]), dim=-1)
    return (d_params * scale)[..., RAW_ORDER]


def attention_forward(sizes: Sizes, constants: GridConstants, out: torch.Tensor, canvas: torch.Tensor, x: torch.Tensor,
                      saved: AttentionBuffers, write: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Everything that follows the output layer ``out`` on h_dec_s (batch, O) up to r_{s+1}.

    With ``write``: c_s = c_{s-1} + write(h_dec_s) (eq 29). Then sigmoid(c_s), x_hat and the read r_{s+1}
    (eq 27). Returns (c_s (batch, C, H, W), r_{s+1} (batch, R)) and fills ``saved`` for the backward.
    """
    batch, c = sizes.batch, sizes.channels
    if sizes.kinds:
        params, fx, fy = filterbanks(sizes, constants, out[:, :5 * sizes.kinds].view(batch, sizes.kinds, 5))
        params, fx, fy = store(saved.params, params), store(saved.fx, fx), store(saved.fy, fy)
    if write and sizes.write_attn:
        patch = out[:, 5 * sizes.kinds:].view(batch, c, sizes.write_n, sizes.write_n)
        fx_w, fy_w, gamma = fx[:, sizes.write_rows], fy[:, sizes.write_rows], params[:, 0, 4]
        right = store(saved.right, small_matmul(patch, fx_w[:, None]))  # (batch, C, Nw, A)
        canvas = canvas + small_matmul(fy_w[:, None].transpose(-1, -2), right) / gamma[:, None, None, None]
    elif write:
        canvas = canvas + out[:, 5 * sizes.kinds:].view(canvas.shape)
    sigmoid = store(saved.sigmoid, canvas.sigmoid())
    both = torch.cat((x, x - sigmoid), dim=1)  # (batch, 2C, H, W)
    if not sizes.read_attn:
        return canvas, both.flatten(1)
    fx_r, fy_r, gamma = fx[:, sizes.read_rows], fy[:, sizes.read_rows], params[:, -1, 4]
    left = store(saved.left, small_matmul(fy_r[:, None], both))  # (batch, 2C, Nr, A)
    return canvas, (small_matmul(left, fx_r[:, None].transpose(-1, -2)) * gamma[:, None, None, None]).flatten(1)


def attention_backward(sizes: Sizes, constants: GridConstants, d_read: torch.Tensor, d_canvas: torch.Tensor,
                       x: torch.Tensor, out: torch.Tensor, read: torch.Tensor, saved: AttentionBuffers,
                       d_out: torch.Tensor, write: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward of ``attention_forward`` for h_dec_s.

    Parameters: d r_{s+1} (batch, R), d c_s, the output layer ``out`` (batch, O), r_{s+1} ``read`` and
    the forward's ``saved`` tensors. Returns (d c_{s-1}, d out), the latter also stored in ``d_out``.
    """
    batch, c = sizes.batch, sizes.channels
    sigmoid, params, fx, fy, right, left = saved
    zero = d_canvas.new_zeros(())
    grads = {}  # kind -> (d F_X, d F_Y, d gamma)
    if sizes.read_attn:
        fx_r, fy_r, gamma = fx[:, sizes.read_rows], fy[:, sizes.read_rows], params[:, -1, 4]
        glimpse = read.view(batch, 2 * c, sizes.read_n, sizes.read_n)
        d_glimpse = d_read.view(glimpse.shape)
        d_unscaled = d_glimpse * gamma[:, None, None, None]
        spread = small_matmul(d_unscaled, fx_r[:, None])  # (batch, 2C, Nr, A)
        both = torch.cat((x, x - sigmoid), dim=1)
        grads["read"] = (small_matmul(d_unscaled.transpose(-1, -2), left).sum(1),
                         small_matmul(spread, both.transpose(-1, -2)).sum(1),
                         (d_glimpse * glimpse).sum((1, 2, 3)) / gamma)
        d_x_hat = small_matmul(fy_r[:, None].transpose(-1, -2), spread[:, c:])  # (batch, C, H, W)
    else:
        d_x_hat = d_read[:, sizes.read // 2:].view(d_canvas.shape)
    d_canvas = d_canvas - d_x_hat * sigmoid * (1 - sigmoid)  # x_hat = x - sigmoid(c_s)
    if write and sizes.write_attn:
        patch = out[:, 5 * sizes.kinds:].view(batch, c, sizes.write_n, sizes.write_n)
        fx_w, fy_w, gamma = fx[:, sizes.write_rows], fy[:, sizes.write_rows], params[:, 0, 4]
        d_image = d_canvas / gamma[:, None, None, None]
        spread = small_matmul(fy_w[:, None], d_image)  # (batch, C, Nw, A)
        d_patch = small_matmul(spread, fx_w[:, None].transpose(-1, -2))  # (batch, C, Nw, Nw)
        grads["write"] = (small_matmul(patch.transpose(-1, -2), spread).sum(1),
                          small_matmul(right, d_image.transpose(-1, -2)).sum(1),
                          -(patch * d_patch).sum((1, 2, 3)) / gamma)
        d_values = d_patch.flatten(1)
    elif write:
        d_values = d_canvas.flatten(1)
    else:
        d_values = d_canvas.new_zeros(batch, out.shape[1] - 5 * sizes.kinds)
    if sizes.kinds:
        parts = [grads.get(name, (zero.expand(batch, n, sizes.width), zero.expand(batch, n, sizes.height),
                                  zero.expand(batch)))
                 for name, n, used in (("write", sizes.write_n, sizes.write_attn),
                                       ("read", sizes.read_n, sizes.read_attn)) if used]
        d_raw = filterbanks_backward(sizes, constants, torch.cat([p[0] for p in parts], 1),
                                     torch.cat([p[1] for p in parts], 1), torch.stack([p[2] for p in parts], 1),
                                     params, fx, fy)
        d_values = torch.cat((d_raw.flatten(1), d_values), dim=1)
    return d_canvas, store(d_out, d_values)
