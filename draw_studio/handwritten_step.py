"""A hand-written forward and backward of one DRAW training step, with the same numbers as ``DRAW.forward``.

``fast_backward(model, x, generator)`` runs the forward and the backward pass by hand (no
autograd graph) and leaves in every parameter's ``.grad`` what
``model(x, generator=generator)[0].bound.mean().backward()`` would, to float32 rounding
(tests/test_handwritten_step.py checks every attention / likelihood combination, eager and compiled).

Why it is faster (measured by ``draw-studio bench``; the table is in the bench's notes):

* the weight gradients are not computed step by step: each step's layer inputs go into one
  buffer (a row ``[r_t, h_enc_{t-1}, h_dec_{t-1}, z_t]`` per step; the encoder reads columns
  ``[r, h_enc, h_dec]``, the decoder ``[h_dec, z]``) and the gradients of the layers'
  outputs into one buffer per layer, so each weight gradient is one matrix product over all
  steps (inner dimension T x batch) after the loop;
* one product per LSTM and step (``[input, h] @ [W_ih, W_hh]^T``); the read attention of
  step t+1 and the write attention of step t are computed together from h_dec_t;
* no autograd graph: the LSTM, latent and attention derivatives are written out, the LSTM's
  activations are overwritten by their gradients in place, and all buffers (~300 MB at batch
  256) are kept between calls, which avoids re-allocating and page-faulting them;
* optionally (``compile``, on by default for big enough passes on a CPU) each step's forward
  and backward are ``torch.compile``-d: inductor fuses everything between the matrix
  products into a few loops; tiny attention products become fused loops, not batched GEMMs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import warnings
from dataclasses import dataclass

import torch

from .model import DRAW, LossTerms

COMPILE_ENV = "DRAW_STUDIO_COMPILE"  # "1": compile, "0": never, unset / "auto": see ``compile_wanted``
_RAW_ORDER = [0, 1, 3, 2, 4]  # (gx, gy, delta, sigma2, gamma) <-> raw (gx~, gy~, log sigma2, log delta~, log gamma)
_AUTO_COMPILE_WORK = 1 << 20  # batch * steps * (enc + dec) from which compiling (~30 s, once) pays off


@dataclass(frozen=True)
class _Shape:
    """Sizes of one pass; plain ints, so compiled code sees them as constants."""

    batch: int
    channels: int
    height: int
    width: int
    read_n: int
    write_n: int
    read_attn: bool
    write_attn: bool
    enc: int
    dec: int
    z: int

    @property
    def read(self) -> int:
        """Width R of r_t."""
        return 2 * self.channels * (self.read_n ** 2 if self.read_attn else self.height * self.width)

    @property
    def columns(self) -> dict[str, slice]:
        """Column blocks of a row of the inputs buffer ``[r_t, h_enc_{t-1}, h_dec_{t-1}, z_t]``: the encoder
        reads ``enc`` = [r, h_enc, h_dec], the decoder ``dec`` = [h_dec, z]."""
        r, e, d, z = self.read, self.enc, self.dec, self.z
        return {"enc": slice(0, r + e + d), "read": slice(0, r), "h_enc": slice(r, r + e),
                "h_dec": slice(r + e, r + e + d), "dec": slice(r + e, r + e + d + z)}

    @property
    def kinds(self) -> int:
        """Attention kinds K read from h_dec: write first, then read."""
        return int(self.write_attn) + int(self.read_attn)

    @property
    def write_rows(self) -> slice:
        return slice(0, self.write_n if self.write_attn else 0)

    @property
    def read_rows(self) -> slice:
        start = self.write_rows.stop
        return slice(start, start + (self.read_n if self.read_attn else 0))


# ---------------------------------------------------------------------------- pieces between the matrix products
def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for tiny matrices (..., n, k) @ (..., k, m): a batched product eagerly, a fused loop when compiled."""
    if torch.compiler.is_compiling():
        return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2)
    return a @ b


def _tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh; when compiled, via expm1 (as accurate, ~1.5 ulp, and ~3x faster than the generated tanh)."""
    if torch.compiler.is_compiling():
        small = torch.expm1(-2 * x.abs())
        return torch.copysign(-small / (2 + small), x)
    return x.tanh()


def _store_columns(target: torch.Tensor, parts: tuple[torch.Tensor, ...]) -> None:
    """target[:] = cat(parts, 1): one concatenation when compiled (slice assignments become masked blends over
    the whole row there, ~3x slower), copies into column slices eagerly (no temporary)."""
    if torch.compiler.is_compiling():
        target.copy_(torch.cat(parts, 1))
        return
    start = 0
    for part in parts:
        target[:, start:start + part.shape[1]] = part
        start += part.shape[1]


def _into(target: torch.Tensor | None, value: torch.Tensor) -> torch.Tensor:
    """Store ``value`` in ``target`` (a buffer the backward reads) and return it."""
    if target is not None:
        target.copy_(value)
    return value


def _linear(inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """inputs @ weight^T + bias, stored in ``target`` (eagerly: computed straight into it)."""
    if not torch.compiler.is_compiling():
        return torch.addmm(bias, inputs, weight.t(), out=target)
    return _into(target, torch.addmm(bias, inputs, weight.t()))


def _lstm_forward(gates: torch.Tensor, cell_prev: torch.Tensor, acts_out: torch.Tensor, cell_out: torch.Tensor,
                  tanh_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM update from pre-activations (batch, 4H) in PyTorch's order i, f, g, o; returns (h_t, c_t).

    Stores the activations in ``acts_out`` (batch, 4H), c_t and tanh(c_t) in ``cell_out``, ``tanh_out``.
    """
    size = cell_prev.shape[1]
    in_forget = gates[:, :2 * size].sigmoid()
    candidate = _tanh(gates[:, 2 * size:3 * size])
    out_gate = gates[:, 3 * size:].sigmoid()
    cell = _into(cell_out, torch.addcmul(in_forget[:, size:] * cell_prev, in_forget[:, :size], candidate))
    tanh_cell = _into(tanh_out, _tanh(cell))
    _store_columns(acts_out, (in_forget, candidate, out_gate))
    return out_gate * tanh_cell, cell


def _lstm_backward(d_hidden: torch.Tensor, d_cell: torch.Tensor, gates: torch.Tensor, cell_prev: torch.Tensor,
                   tanh_cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward of ``_lstm_forward``: ``gates`` (batch, 4H) holds the activations and gets the gradient of the
    pre-activations in place; returns (that gradient, d c_{t-1})."""
    size = cell_prev.shape[1]
    in_gate, forget = gates[:, :size], gates[:, size:2 * size]
    candidate, out_gate = gates[:, 2 * size:3 * size], gates[:, 3 * size:]
    d_cell = d_cell + d_hidden * out_gate * (1 - tanh_cell.square())
    d_in = d_cell * candidate * in_gate * (1 - in_gate)
    d_forget = d_cell * cell_prev * forget * (1 - forget)
    d_candidate = d_cell * in_gate * (1 - candidate.square())
    d_out = d_hidden * tanh_cell * out_gate * (1 - out_gate)
    d_cell_prev = d_cell * forget
    if torch.compiler.is_compiling():
        return _into(gates, torch.cat((d_in, d_forget, d_candidate, d_out), 1)), d_cell_prev
    _store_columns(gates, (d_in, d_forget, d_candidate, d_out))
    return gates, d_cell_prev


def _latent_terms(latent: torch.Tensor, eps: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                  sigma_eps_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """KL and log p(z) - log q(z | x) per image (batch,); dz / d log sigma (T, batch, Z) into ``sigma_eps_out``.

    ``latent`` (T, batch, 2Z) holds (mu, log sigma) and gets ``weight`` times the KL term's
    gradient in place: the start of the latent layer's output gradient.
    """
    size = eps.shape[-1]
    mu, log_sigma = latent[..., :size], latent[..., size:]
    sigma = log_sigma.exp()
    kl = (0.5 * (mu.square() + sigma.square() - 2 * log_sigma - 1)).sum(2).sum(0)
    log_ratio = (0.5 * (eps.square() - z.square()) + log_sigma).sum(2).sum(0)
    sigma_eps_out.copy_(sigma * eps)
    latent.copy_(torch.cat((mu * weight, (sigma.square() - 1) * weight), dim=-1))
    return kl, log_ratio


def _grid_constants(shape: _Shape, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Per filter row: kind index and grid offset (i - N/2 - 0.5); per kind: delta scale; pixel indices 1..A, 1..B."""
    sizes = [shape.write_n] * shape.write_attn + [shape.read_n] * shape.read_attn
    kind = torch.cat([torch.full((n,), k) for k, n in enumerate(sizes)] or [torch.zeros(0, dtype=torch.long)])
    offsets = torch.cat([torch.arange(1, n + 1) - n / 2 - 0.5 for n in sizes] or [torch.zeros(0)])
    delta_scale = torch.tensor([(max(shape.width, shape.height) - 1) / max(n - 1, 1) for n in sizes])
    return (kind.to(device), offsets.to(device, dtype), delta_scale.to(device, dtype),
            torch.arange(1, shape.width + 1, device=device, dtype=dtype),
            torch.arange(1, shape.height + 1, device=device, dtype=dtype))


def _filterbanks(shape: _Shape, constants: tuple, raw: torch.Tensor):
    """Parameters (batch, K, 5) = gx, gy, delta, sigma2, gamma from raw (batch, K, 5) (eqs 21-24) and the
    filterbanks F_X (batch, rows, A), F_Y (batch, rows, B) of every kind, stacked (eqs 19, 20, 25, 26)."""
    kind, offsets, delta_scale, pixels_x, pixels_y = constants
    exp = raw.exp()
    params = torch.stack(((shape.width + 1) / 2 * (raw[..., 0] + 1), (shape.height + 1) / 2 * (raw[..., 1] + 1),
                          delta_scale * exp[..., 3], exp[..., 2], exp[..., 4]), dim=-1)
    rows = params[:, kind]  # (batch, rows, 5)
    shift = offsets[:, None] * rows[..., 2:3]  # (batch, rows, 1)
    two_sigma2 = 2 * rows[..., 3:4]
    fx = torch.softmax(-(pixels_x - (rows[..., 0:1] + shift)).square() / two_sigma2, dim=-1)
    fy = torch.softmax(-(pixels_y - (rows[..., 1:2] + shift)).square() / two_sigma2, dim=-1)
    return params, fx, fy


def _filterbanks_backward(shape: _Shape, constants: tuple, d_fx: torch.Tensor, d_fy: torch.Tensor,
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
    per_kind = [per_row[:, rows_of_kind].sum(1) for rows_of_kind in (shape.write_rows, shape.read_rows)
                if rows_of_kind.stop > rows_of_kind.start]  # each (batch, 4)
    d_params = torch.cat((torch.stack(per_kind, 1), d_gamma[..., None]), dim=-1)  # (batch, K, 5)
    scale = torch.cat((torch.full_like(params[..., :1], (shape.width + 1) / 2),
                       torch.full_like(params[..., :1], (shape.height + 1) / 2), params[..., 2:]), dim=-1)
    return (d_params * scale)[..., _RAW_ORDER]


def _attention_forward(shape: _Shape, constants: tuple, out: torch.Tensor, canvas: torch.Tensor,
                       x: torch.Tensor, saved: tuple, write: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Everything that follows the output layer on h_dec_s (batch, O) up to r_{s+1}.

    With ``write``: c_s = c_{s-1} + write(h_dec_s) (eq 29). Then sigmoid(c_s), x_hat and the read r_{s+1}
    (eq 27). Returns (c_s, r_{s+1} (batch, R)) and stores for the backward in ``saved``: sigmoid(c_s),
    params (batch, K, 5), F_X (batch, rows, A), F_Y (batch, rows, B), w F_X (batch, C, Nw, A) and
    F_Y [x, x_hat] (batch, 2C, Nr, A) (None where a part does not exist).
    """
    batch, c = shape.batch, shape.channels
    sigmoid_out, params_out, fx_out, fy_out, right_out, left_out = saved
    if shape.kinds:
        params, fx, fy = _filterbanks(shape, constants, out[:, :5 * shape.kinds].view(batch, shape.kinds, 5))
        params, fx, fy = _into(params_out, params), _into(fx_out, fx), _into(fy_out, fy)
    if write and shape.write_attn:
        patch = out[:, 5 * shape.kinds:].view(batch, c, shape.write_n, shape.write_n)
        fx_w, fy_w, gamma = fx[:, shape.write_rows], fy[:, shape.write_rows], params[:, 0, 4]
        right = _into(right_out, _matmul(patch, fx_w[:, None]))  # (batch, C, Nw, A)
        canvas = canvas + _matmul(fy_w[:, None].transpose(-1, -2), right) / gamma[:, None, None, None]
    elif write:
        canvas = canvas + out[:, 5 * shape.kinds:].view(canvas.shape)
    sigmoid = _into(sigmoid_out, canvas.sigmoid())
    both = torch.cat((x, x - sigmoid), dim=1)  # (batch, 2C, H, W)
    if not shape.read_attn:
        return canvas, both.flatten(1)
    fx_r, fy_r, gamma = fx[:, shape.read_rows], fy[:, shape.read_rows], params[:, -1, 4]
    left = _into(left_out, _matmul(fy_r[:, None], both))  # (batch, 2C, Nr, A)
    return canvas, (_matmul(left, fx_r[:, None].transpose(-1, -2)) * gamma[:, None, None, None]).flatten(1)


def _attention_backward(shape: _Shape, constants: tuple, d_read: torch.Tensor, d_canvas: torch.Tensor,
                        x: torch.Tensor, out: torch.Tensor, read: torch.Tensor, saved: tuple,
                        d_out: torch.Tensor, write: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward of ``_attention_forward`` for h_dec_s.

    Parameters: d r_{s+1} (batch, R), d c_s, the output layer ``out`` (batch, O), r_{s+1} ``read`` and
    the forward's ``saved`` tensors. Returns (d c_{s-1}, d out), the latter also stored in ``d_out``.
    """
    batch, c = shape.batch, shape.channels
    sigmoid, params, fx, fy, right, left = saved
    zero = d_canvas.new_zeros(())
    grads = {}  # kind -> (d F_X, d F_Y, d gamma)
    if shape.read_attn:
        fx_r, fy_r, gamma = fx[:, shape.read_rows], fy[:, shape.read_rows], params[:, -1, 4]
        glimpse = read.view(batch, 2 * c, shape.read_n, shape.read_n)
        d_glimpse = d_read.view(glimpse.shape)
        d_unscaled = d_glimpse * gamma[:, None, None, None]
        spread = _matmul(d_unscaled, fx_r[:, None])  # (batch, 2C, Nr, A)
        both = torch.cat((x, x - sigmoid), dim=1)
        grads["read"] = (_matmul(d_unscaled.transpose(-1, -2), left).sum(1),
                         _matmul(spread, both.transpose(-1, -2)).sum(1),
                         (d_glimpse * glimpse).sum((1, 2, 3)) / gamma)
        d_x_hat = _matmul(fy_r[:, None].transpose(-1, -2), spread[:, c:])  # (batch, C, H, W)
    else:
        d_x_hat = d_read[:, shape.read // 2:].view(d_canvas.shape)
    d_canvas = d_canvas - d_x_hat * sigmoid * (1 - sigmoid)  # x_hat = x - sigmoid(c_s)
    if write and shape.write_attn:
        patch = out[:, 5 * shape.kinds:].view(batch, c, shape.write_n, shape.write_n)
        fx_w, fy_w, gamma = fx[:, shape.write_rows], fy[:, shape.write_rows], params[:, 0, 4]
        d_image = d_canvas / gamma[:, None, None, None]
        spread = _matmul(fy_w[:, None], d_image)  # (batch, C, Nw, A)
        d_patch = _matmul(spread, fx_w[:, None].transpose(-1, -2))  # (batch, C, Nw, Nw)
        grads["write"] = (_matmul(patch.transpose(-1, -2), spread).sum(1),
                          _matmul(right, d_image.transpose(-1, -2)).sum(1),
                          -(patch * d_patch).sum((1, 2, 3)) / gamma)
        d_values = d_patch.flatten(1)
    elif write:
        d_values = d_canvas.flatten(1)
    else:
        d_values = d_canvas.new_zeros(batch, out.shape[1] - 5 * shape.kinds)
    if shape.kinds:
        parts = [grads.get(name, (zero.expand(batch, n, shape.width), zero.expand(batch, n, shape.height),
                                  zero.expand(batch)))
                 for name, n, used in (("write", shape.write_n, shape.write_attn),
                                       ("read", shape.read_n, shape.read_attn)) if used]
        d_raw = _filterbanks_backward(shape, constants, torch.cat([p[0] for p in parts], 1),
                                      torch.cat([p[1] for p in parts], 1), torch.stack([p[2] for p in parts], 1),
                                      params, fx, fy)
        d_values = torch.cat((d_raw.flatten(1), d_values), dim=1)
    return d_canvas, _into(d_out, d_values)


# ---------------------------------------------------------------------------- one step, forward and backward
def _forward_step(shape: _Shape, constants: tuple, weights: tuple, x: torch.Tensor, eps: torch.Tensor,
                  state: tuple, stores: tuple) -> tuple:
    """Step t: state (r_t, h_enc_{t-1}, c_enc_{t-1}, h_dec_{t-1}, c_dec_{t-1}, c_{t-1}) -> the same for t+1.

    ``stores`` are where the backward finds what it needs: the inputs row [r_t, h_enc_{t-1},
    h_dec_{t-1}, z_t], the encoder's activations, c_t, tanh(c_t), (mu, log sigma), the decoder's
    activations, c_t, tanh(c_t), the output layer and the attention's ``saved`` tensors.
    """
    w_enc, b_enc, w_lat, b_lat, w_dec, b_dec, w_out, b_out = weights
    read, h_enc, c_enc, h_dec, c_dec, canvas = state
    row, gates_enc, cell_enc, tanh_enc, latent, gates_dec, cell_dec, tanh_dec, out, saved = stores
    enc_in = torch.cat((read, h_enc, h_dec), 1)  # (batch, R+E+D)
    h_enc, c_enc = _lstm_forward(torch.addmm(b_enc, enc_in, w_enc.t()), c_enc, gates_enc, cell_enc, tanh_enc)
    lat = _linear(h_enc, w_lat, b_lat, latent)  # (batch, 2Z): mu, log sigma
    z = lat[:, :shape.z] + lat[:, shape.z:].exp() * eps
    row.copy_(torch.cat((enc_in, z), 1))
    h_dec, c_dec = _lstm_forward(torch.addmm(b_dec, torch.cat((h_dec, z), 1), w_dec.t()), c_dec, gates_dec,
                                 cell_dec, tanh_dec)
    canvas, read = _attention_forward(shape, constants, _linear(h_dec, w_out, b_out, out), canvas, x, saved)
    return read, h_enc, c_enc, h_dec, c_dec, canvas


def _backward_step(shape: _Shape, constants: tuple, weights: tuple, x: torch.Tensor, grads: tuple,
                   saved: tuple, stores: tuple) -> tuple:
    """Backward of step t: grads (d r_{t+1}, d c_t, d h_enc_t, d c_enc_t, d h_dec_t, d c_dec_t) -> the same
    for t. ``saved``: the output layer, r_{t+1}, the attention's saved tensors, c_{t-1} and tanh(c_t) of
    both LSTMs, sigma * eps_t; ``stores``: d out, and (in place) the decoder's and encoder's activations
    and the latent layer's KL gradient, which become the gradients of those layers' outputs."""
    w_enc, _, w_lat, _, w_dec, _, w_out, _ = weights
    d_read, d_canvas, d_h_enc, d_c_enc, d_h_dec, d_c_dec = grads
    out, read, attention, cell_enc, tanh_enc, cell_dec, tanh_dec, sigma_eps = saved
    d_out, gates_dec, latent, gates_enc = stores
    r, e, d = shape.read, shape.enc, shape.dec
    d_canvas, d_out = _attention_backward(shape, constants, d_read, d_canvas, x, out, read, attention, d_out)
    d_gates, d_c_dec = _lstm_backward(torch.addmm(d_h_dec, d_out, w_out), d_c_dec, gates_dec, cell_dec, tanh_dec)
    d_dec_in = d_gates @ w_dec  # (batch, D+Z): d h_dec_{t-1}, d z_t
    d_z = d_dec_in[:, d:]
    d_lat = _into(latent, latent + torch.cat((d_z, d_z * sigma_eps), 1))
    d_gates, d_c_enc = _lstm_backward(torch.addmm(d_h_enc, d_lat, w_lat), d_c_enc, gates_enc, cell_enc, tanh_enc)
    d_enc_in = d_gates @ w_enc  # (batch, R+E+D): d r_t, d h_enc_{t-1}, d h_dec_{t-1}
    return d_enc_in[:, :r], d_canvas, d_enc_in[:, r:r + e], d_c_enc, d_enc_in[:, r + e:] + d_dec_in[:, :d], d_c_dec


# ---------------------------------------------------------------------------- compiling them (optional)
_compile_failed = False


class _CompiledOrEager:
    """Calls the compiled ``eager`` function; if compiling fails, warns once and runs eagerly from then on.

    Static shapes (one compile per batch size; the steps of a pass all share it) and inductor's C++
    wrapper (~3% faster at batch 64 than the Python one: 2 x T calls per pass).
    """

    def __init__(self, eager) -> None:
        self.eager = eager
        self.compiled = torch.compile(eager, dynamic=False, fullgraph=True, options={"cpp_wrapper": True})

    def __call__(self, *args):
        global _compile_failed
        if not _compile_failed:
            try:
                return self.compiled(*args)
            except Exception as exc:  # noqa: BLE001 - no C++ compiler, unsupported device, ...: run eagerly
                _compile_failed = True
                warnings.warn(f"torch.compile failed ({type(exc).__name__}: {str(exc)[:300]}); "
                              f"the fast path runs eagerly", RuntimeWarning, stacklevel=2)
        return self.eager(*args)


_COMPILED = {function.__name__: _CompiledOrEager(function)
             for function in (_forward_step, _backward_step, _latent_terms)}  # one cache entry per shape each


def compile_wanted(model: DRAW, x: torch.Tensor, requested: bool | None = None) -> bool:
    """Whether ``fast_backward(model, x, compile=requested)`` compiles its steps.

    ``requested`` True / False decides; None reads ``$DRAW_STUDIO_COMPILE`` ("1" / "0"), and
    unset or "auto" compiles on a CPU when a pass is big enough to repay the compile time
    (batch * steps * (enc + dec) >= 2^20: the mnist-paper preset from batch 32 on). On a GPU
    the eager fast path runs (compiling there is untested).
    """
    if _compile_failed or not hasattr(torch, "compile"):
        return False
    if requested is None:
        setting = os.environ.get(COMPILE_ENV, "auto").strip().lower()
        if setting in ("0", "off", "false", "no"):
            return False
        if setting in ("1", "on", "true", "yes"):
            return True
        cfg = model.config
        work = x.shape[0] * cfg.steps * (cfg.enc_size + cfg.dec_size)
        return x.device.type == "cpu" and work >= _AUTO_COMPILE_WORK
    return bool(requested)


# ---------------------------------------------------------------------------- one pass
class _Workspace:
    """The buffers of a pass of one size (kept between calls: allocating and page-faulting ~100 MB per
    pass is slow) and, per step, the tuples of views the step functions get (built once)."""

    def __init__(self, shape: _Shape, steps: int, out_size: int, like: torch.Tensor) -> None:
        def empty(*size: int) -> torch.Tensor:
            return torch.empty(size, device=like.device, dtype=like.dtype)

        batch, r, e, d, z = shape.batch, shape.read, shape.enc, shape.dec, shape.z
        c, h, w = shape.channels, shape.height, shape.width
        rows_k, kinds = shape.write_rows.stop + shape.read_n * shape.read_attn, shape.kinds
        self.eps, self.sigma_eps = empty(steps, batch, z), empty(steps, batch, z)
        self.rows = empty(steps + 1, batch, r + e + d + z)  # inputs of the LSTMs, see _Shape.columns
        self.gates_enc, self.gates_dec = empty(steps, batch, 4 * e), empty(steps, batch, 4 * d)  # activations, then
        self.cells_enc, self.cells_dec = empty(steps + 1, batch, e), empty(steps + 1, batch, d)  # their gradients
        self.tanh_enc, self.tanh_dec = empty(steps, batch, e), empty(steps, batch, d)
        self.latent = empty(steps, batch, 2 * z)  # (mu, log sigma), then their gradients
        self.outs, self.d_outs = empty(steps + 1, batch, out_size), empty(steps + 1, batch, out_size)
        attention = (empty(steps + 1, batch, c, h, w), empty(steps + 1, batch, kinds, 5) if kinds else None,
                     empty(steps + 1, batch, rows_k, w) if kinds else None,
                     empty(steps + 1, batch, rows_k, h) if kinds else None,
                     empty(steps + 1, batch, c, shape.write_n, w) if shape.write_attn else None,
                     empty(steps + 1, batch, 2 * c, shape.read_n, w) if shape.read_attn else None)
        self.attention = [tuple(None if b is None else b[s] for b in attention) for s in range(steps + 1)]
        self.forward_stores = [(self.rows[t], self.gates_enc[t], self.cells_enc[t + 1], self.tanh_enc[t],
                                self.latent[t], self.gates_dec[t], self.cells_dec[t + 1], self.tanh_dec[t],
                                self.outs[t + 1], self.attention[t + 1]) for t in range(steps)]
        self.backward_saved = [(self.outs[t + 1], self.rows[t + 1, :, :r], self.attention[t + 1], self.cells_enc[t],
                                self.tanh_enc[t], self.cells_dec[t], self.tanh_dec[t], self.sigma_eps[t])
                               for t in range(steps)]
        self.backward_stores = [(self.d_outs[t + 1], self.gates_dec[t], self.latent[t], self.gates_enc[t])
                                for t in range(steps)]
        self.eps_steps = list(self.eps)


class _WorkspaceCache:
    """One kept workspace, lent to one pass at a time.

    A pass that finds it lent (another thread training at the same moment) gets buffers of its
    own for that call. Not ``threading.local``: freeing a thread's locals while Qt's binding
    deletes the thread state of a finished QThread crashed the process (PySide6 6.12, Python 3.11).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key = None
        self._workspace: _Workspace | None = None

    @contextlib.contextmanager
    def lend(self, shape: _Shape, steps: int, out_size: int, like: torch.Tensor):
        key = (shape, steps, out_size, like.device, like.dtype)
        if not self._lock.acquire(blocking=False):
            yield _Workspace(shape, steps, out_size, like)
            return
        try:
            if self._key != key:
                self._workspace = None  # free the old buffers first
                self._workspace, self._key = _Workspace(shape, steps, out_size, like), key
            yield self._workspace
        finally:
            self._lock.release()


    def clear(self) -> None:
        """Free the kept buffers (unless a pass is using them; it keeps them until the next clear)."""
        if self._lock.acquire(blocking=False):
            self._workspace, self._key = None, None
            self._lock.release()


_workspaces = _WorkspaceCache()


def release_buffers() -> None:
    """Free the buffers the fast path keeps between calls (~75 MB at mnist-paper batch 64), e.g. when
    training ends in a long-lived process such as the window."""
    _workspaces.clear()


@functools.lru_cache(maxsize=8)
def _constants(shape: _Shape, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    return _grid_constants(shape, device, dtype)


class _Pass:
    """One forward and backward pass of ``model`` on ``x``; ``generator`` draws the noise as DRAW.forward does."""

    def __init__(self, model: DRAW, x: torch.Tensor, generator: torch.Generator | None, compiled: bool,
                 workspaces: _WorkspaceCache, stack: contextlib.ExitStack) -> None:
        cfg = model.config
        self.model, self.x, self.steps = model, x, cfg.steps
        self.shape = shape = _Shape(x.shape[0], cfg.channels, cfg.height, cfg.width, cfg.read_n, cfg.write_n,
                                    model.read_head is not None, model.write_head is not None,
                                    cfg.enc_size, cfg.dec_size, cfg.z_size)
        self.constants = _constants(shape, x.device, x.dtype)
        self.pieces = _COMPILED if compiled else {name: piece.eager for name, piece in _COMPILED.items()}
        r = shape.read
        enc, dec = model.encoder, model.decoder
        self.out_layers = [layer for layer in (model.write_head and model.write_head.linear,
                                               model.read_head and model.read_head.linear, model.write_out) if layer]
        self.weights = tuple(w.detach() for w in (
            torch.cat((enc.weight_ih[:, :r], enc.weight_hh, enc.weight_ih[:, r:]), 1),  # (4E, R+E+D)
            enc.bias_ih + enc.bias_hh, model.latent.weight, model.latent.bias,  # (2Z, E)
            torch.cat((dec.weight_hh, dec.weight_ih), 1), dec.bias_ih + dec.bias_hh,  # (4D, D+Z)
            torch.cat([layer.weight for layer in self.out_layers]),  # (O, D)
            torch.cat([layer.bias for layer in self.out_layers])))
        self.work = stack.enter_context(workspaces.lend(shape, cfg.steps, self.weights[6].shape[0], x))
        torch.randn(self.work.eps.shape, generator=generator, out=self.work.eps)  # (T, batch, Z), as DRAW.forward

    def forward(self) -> torch.Tensor:
        """Run the T steps; returns the final canvas c_T (batch, C, H, W)."""
        model, x, shape, work = self.model, self.x, self.shape, self.work
        batch, e, d = shape.batch, shape.enc, shape.dec
        init = model.state_init.detach()
        h_enc, h_dec = init[0, :e].expand(batch, e).contiguous(), init[2, :d].expand(batch, d).contiguous()
        c_enc, c_dec = work.cells_enc[0].copy_(init[1, :e]).clone(), work.cells_dec[0].copy_(init[3, :d]).clone()
        canvas = model.canvas_init.detach().expand(batch, *model.canvas_init.shape).contiguous()
        out = torch.addmm(self.weights[7], h_dec, self.weights[6].t(), out=work.outs[0])  # used by read only
        _, read = _attention_forward(shape, self.constants, out, canvas, x, work.attention[0], write=False)
        state = (read, h_enc, c_enc, h_dec, c_dec, canvas)
        step, constants, weights = self.pieces["_forward_step"], self.constants, self.weights
        for eps, stores in zip(work.eps_steps, work.forward_stores):
            state = step(shape, constants, weights, x, eps, state, stores)
        read, h_enc, _, h_dec, _, canvas = state
        columns = shape.columns
        last = work.rows[self.steps]
        last[:, columns["read"]], last[:, columns["h_enc"]], last[:, columns["h_dec"]] = read, h_enc, h_dec
        return canvas

    def backward(self, d_canvas: torch.Tensor, weight: float) -> dict[str, torch.Tensor]:
        """Gradients of ``weight * (nll.sum() + kl.sum())``, given ``d_canvas`` = weight * d nll / d c_T.

        Leaves the layers' output gradients in the workspace (for ``weight_grads``) and returns the
        loss terms ``kl`` and ``log_ratio`` (batch,) and the gradients of the initial state:
        ``canvas``, ``h_enc``, ``c_enc``, ``h_dec``, ``c_dec`` (each (batch, ...)).
        """
        shape, x, work = self.shape, self.x, self.work
        batch, r, e, d = shape.batch, shape.read, shape.enc, shape.dec
        z = work.rows[:self.steps, :, shape.columns["dec"]][..., d:]
        kl, log_ratio = self.pieces["_latent_terms"](work.latent, work.eps, z, x.new_tensor(weight),
                                                     work.sigma_eps)
        d_inputs = x.new_zeros(batch, r + e + d)  # strides as the gradients the steps return
        grads = (d_inputs[:, :r], d_canvas, d_inputs[:, r:r + e], x.new_zeros(batch, e), x.new_zeros(batch, d),
                 x.new_zeros(batch, d))  # d r_T (r_T is not used), d c_T, d h_enc_T, ...
        step, constants, weights = self.pieces["_backward_step"], self.constants, self.weights
        for saved, stores in zip(reversed(work.backward_saved), reversed(work.backward_stores)):
            grads = step(shape, constants, weights, x, grads, saved, stores)
        d_read, d_canvas, d_h_enc, d_c_enc, d_h_dec, d_c_dec = grads
        d_canvas, d_out = _attention_backward(shape, constants, d_read, d_canvas, x, work.outs[0],
                                              work.rows[0, :, :r], work.attention[0], work.d_outs[0],
                                              write=False)
        d_h_dec = torch.addmm(d_h_dec, d_out, weights[6])
        return {"kl": kl, "log_ratio": log_ratio, "canvas": d_canvas, "h_enc": d_h_enc, "c_enc": d_c_enc,
                "h_dec": d_h_dec, "c_dec": d_c_dec}

    def weight_grads(self) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
        """(parameter, gradient) of every layer: one product over all steps per layer."""
        steps, model, work, columns = self.steps, self.model, self.work, self.shape.columns
        r, e, d = self.shape.read, self.shape.enc, self.shape.dec
        inputs, outputs = work.rows[:steps].flatten(0, 1), work.rows[1:].flatten(0, 1)  # (T*batch, width)
        d_enc, d_dec = work.gates_enc.flatten(0, 1), work.gates_dec.flatten(0, 1)  # now the gradients
        d_lat, d_out = work.latent.flatten(0, 1), work.d_outs.flatten(0, 1)
        g_enc = d_enc.t() @ inputs[:, columns["enc"]]  # (4E, R+E+D)
        g_dec = d_dec.t() @ inputs[:, columns["dec"]]  # (4D, D+Z)
        b_enc, b_dec = d_enc.sum(0), d_dec.sum(0)
        grads = [(model.encoder.weight_ih, torch.cat((g_enc[:, :r], g_enc[:, r + e:]), 1)),
                 (model.encoder.weight_hh, g_enc[:, r:r + e]), (model.encoder.bias_ih, b_enc),
                 (model.encoder.bias_hh, b_enc), (model.decoder.weight_hh, g_dec[:, :d]),
                 (model.decoder.weight_ih, g_dec[:, d:]), (model.decoder.bias_ih, b_dec),
                 (model.decoder.bias_hh, b_dec),
                 (model.latent.weight, d_lat.t() @ outputs[:, columns["h_enc"]]), (model.latent.bias, d_lat.sum(0))]
        g_out = d_out.t() @ work.rows.flatten(0, 1)[:, columns["h_dec"]]
        b_out = d_out.sum(0)
        row = 0
        for layer in self.out_layers:
            size = layer.weight.shape[0]
            grads += [(layer.weight, g_out[row:row + size]), (layer.bias, b_out[row:row + size])]
            row += size
        return grads


def _accumulate(param: torch.nn.Parameter, grad: torch.Tensor) -> None:
    if not param.requires_grad:
        return
    if param.grad is None:
        param.grad = grad.clone(memory_format=torch.contiguous_format)
    else:
        param.grad += grad


def fast_backward(model: DRAW, x: torch.Tensor, generator: torch.Generator | None = None,
                  loss_weight: float | None = None, compile: bool | None = None) -> LossTerms:
    """Forward and backward of the mean bound; returns the (detached) loss terms.

    Parameters
    ----------
    model : DRAW
    x : Tensor, shape (batch, C, H, W)
    generator : torch.Generator, optional
        Drawn from exactly as ``DRAW.forward`` does.
    loss_weight : float, optional
        The loss differentiated is ``loss_weight * bound.sum()`` (default 1 / batch: the mean).
    compile : bool, optional
        Compile the pointwise pieces with ``torch.compile`` (the first call per batch size then
        takes ~10-30 s). Default: ``compile_wanted`` decides (``$DRAW_STUDIO_COMPILE``). If
        compiling fails, a warning is given and the pass runs eagerly.

    Returns
    -------
    LossTerms
        Detached ``nll_x``, ``kl`` and ``log_weight``, each (batch,).
    """
    model.check_images(x)
    cfg = model.config
    batch = x.shape[0]
    weight = 1.0 / batch if loss_weight is None else loss_weight
    with contextlib.ExitStack() as stack:  # the workspace is lent until the gradients are out
        run = _Pass(model, x, generator, compile_wanted(model, x, compile), _workspaces, stack)
        with torch.no_grad():
            canvas = run.forward()
        canvas = canvas.detach().requires_grad_(True)
        nll_x = model.nll(canvas, x)  # autograd: the likelihood and its learned scale
        (nll_x.sum() * weight).backward()
        with torch.no_grad():
            state = run.backward(canvas.grad, weight)
            for param, grad in run.weight_grads():
                _accumulate(param, grad)
            e, d = cfg.enc_size, cfg.dec_size
            d_init = torch.zeros_like(model.state_init)
            d_init[0, :e], d_init[1, :e] = state["h_enc"].sum(0), state["c_enc"].sum(0)
            d_init[2, :d], d_init[3, :d] = state["h_dec"].sum(0), state["c_dec"].sum(0)
            _accumulate(model.state_init, d_init)
            _accumulate(model.canvas_init, state["canvas"].sum(0))
    nll_x = nll_x.detach()
    return LossTerms(nll_x=nll_x, kl=state["kl"], log_weight=state["log_ratio"] - nll_x)
