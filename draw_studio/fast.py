"""A faster training step for DRAW, with the same numbers as ``DRAW.forward``.

``fast_backward(model, x, generator)`` runs the forward and the backward pass by hand (no
autograd graph) and leaves in every parameter's ``.grad`` what
``model(x, generator=generator)[0].bound.mean().backward()`` would, to float32 rounding
(tests/test_fast.py checks every attention / likelihood combination, eager and compiled).

Why it is faster (numbers: ``draw-studio bench``):

* one buffer holds the inputs of every matrix product, one row block per step:
  ``[r_t | h_enc_{t-1} | h_dec_{t-1} | z_t]``. The encoder multiplies the columns
  ``[r, h_enc, h_dec]``, the decoder ``[h_dec, z]``, the latent and output layers the
  ``h_enc`` / ``h_dec`` blocks of the next row; the LSTMs write their outputs straight
  into it: one product per layer and step, no concatenation;
* the gradients of each layer's outputs go into one buffer per layer, so every weight
  gradient is one product over all steps (inner dimension T x batch) after the loop;
* read attention of step t+1 and write attention of step t come from the same h_dec_t:
  one product and one filterbank computation for both;
* no autograd, and the buffers are kept between calls (no page faults);
* between the products, the LSTM cells and the attention (forward and backward) are four
  functions that ``torch.compile`` fuses into a few loops each (optional, see
  ``fast_backward``); the matrix products stay eager.
"""

from __future__ import annotations

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


def _lstm_forward(gates: torch.Tensor, cell_prev: torch.Tensor, cell_out: torch.Tensor, tanh_out: torch.Tensor,
                  hidden_out: torch.Tensor) -> None:
    """LSTM update. ``gates`` (batch, 4H) holds the pre-activations i, f, g, o (PyTorch's order) and gets
    the activations in place; c_t, tanh(c_t) and h_t (batch, H) are written into the ``*_out`` tensors."""
    size = cell_prev.shape[1]
    in_forget = gates[:, :2 * size].sigmoid()
    candidate = _tanh(gates[:, 2 * size:3 * size])
    out_gate = gates[:, 3 * size:].sigmoid()
    cell = torch.addcmul(in_forget[:, size:] * cell_prev, in_forget[:, :size], candidate)
    tanh_cell = _tanh(cell)
    hidden_out.copy_(out_gate * tanh_cell)
    cell_out.copy_(cell)
    tanh_out.copy_(tanh_cell)
    _store_columns(gates, (in_forget, candidate, out_gate))


def _lstm_backward(d_hidden: torch.Tensor, d_cell: torch.Tensor, gates: torch.Tensor, cell_prev: torch.Tensor,
                   tanh_cell: torch.Tensor) -> torch.Tensor:
    """Backward of ``_lstm_forward``: ``gates`` (batch, 4H) holds the activations and gets d pre-activations in
    place; returns d c_{t-1}."""
    size = cell_prev.shape[1]
    in_gate, forget = gates[:, :size], gates[:, size:2 * size]
    candidate, out_gate = gates[:, 2 * size:3 * size], gates[:, 3 * size:]
    d_cell = d_cell + d_hidden * out_gate * (1 - tanh_cell.square())
    d_in = d_cell * candidate * in_gate * (1 - in_gate)
    d_forget = d_cell * cell_prev * forget * (1 - forget)
    d_candidate = d_cell * in_gate * (1 - candidate.square())
    d_out = d_hidden * tanh_cell * out_gate * (1 - out_gate)
    d_cell_prev = d_cell * forget
    _store_columns(gates, (d_in, d_forget, d_candidate, d_out))
    return d_cell_prev


def _latent_terms(latent: torch.Tensor, eps: torch.Tensor, z: torch.Tensor, weight: torch.Tensor):
    """KL and log p(z) - log q(z | x) per image (batch,), and dz / d log sigma (T, batch, Z).

    ``latent`` (T, batch, 2Z) holds (mu, log sigma) and gets ``weight`` times the KL term's
    gradient in place: the start of the latent layer's output gradient.
    """
    size = eps.shape[-1]
    mu, log_sigma = latent[..., :size], latent[..., size:]
    sigma = log_sigma.exp()
    kl = 0.5 * (mu.square() + sigma.square() - 2 * log_sigma - 1).sum((0, 2))
    log_ratio = (0.5 * (eps.square() - z.square()) + log_sigma).sum((0, 2))
    sigma_eps = sigma * eps
    latent.copy_(torch.cat((mu * weight, (sigma.square() - 1) * weight), dim=-1))
    return kl, log_ratio, sigma_eps


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
                       x: torch.Tensor, read_out: torch.Tensor, saved: tuple, write: bool = True) -> None:
    """Everything that follows the output layer on h_dec_s (batch, O) up to r_{s+1}.

    With ``write``: c_s = c_{s-1} + write(h_dec_s) (eq 29); then sigmoid(c_s), x_hat and the read
    r_{s+1} (eq 27), written into ``read_out`` (batch, R). ``saved`` are the tensors written for the
    backward: (c_s, sigmoid(c_s), params (batch, K, 5), F_X (batch, rows, A), F_Y (batch, rows, B),
    w F_X (batch, C, Nw, A), F_Y [x, x_hat] (batch, 2C, Nr, A)); None where a part does not exist.
    """
    batch, c = shape.batch, shape.channels
    canvas_out, sigmoid_out, params_out, fx_out, fy_out, right_out, left_out = saved
    if shape.kinds:
        params, fx, fy = _filterbanks(shape, constants, out[:, :5 * shape.kinds].view(batch, shape.kinds, 5))
        params_out.copy_(params)
        fx_out.copy_(fx)
        fy_out.copy_(fy)
    if write and shape.write_attn:
        patch = out[:, 5 * shape.kinds:].view(batch, c, shape.write_n, shape.write_n)
        fx_w, fy_w, gamma = fx[:, shape.write_rows], fy[:, shape.write_rows], params[:, 0, 4]
        right = _matmul(patch, fx_w[:, None])  # (batch, C, Nw, A)
        right_out.copy_(right)
        canvas = canvas + _matmul(fy_w[:, None].transpose(-1, -2), right) / gamma[:, None, None, None]
    elif write:
        canvas = canvas + out[:, 5 * shape.kinds:].view(canvas.shape)
    canvas_out.copy_(canvas)
    sigmoid = canvas.sigmoid()
    sigmoid_out.copy_(sigmoid)
    both = torch.cat((x, x - sigmoid), dim=1)  # (batch, 2C, H, W)
    if shape.read_attn:
        fx_r, fy_r, gamma = fx[:, shape.read_rows], fy[:, shape.read_rows], params[:, -1, 4]
        left = _matmul(fy_r[:, None], both)  # (batch, 2C, Nr, A)
        left_out.copy_(left)
        read_out.copy_((_matmul(left, fx_r[:, None].transpose(-1, -2)) * gamma[:, None, None, None]).flatten(1))
    else:
        read_out.copy_(both.flatten(1))


def _attention_backward(shape: _Shape, constants: tuple, d_read: torch.Tensor, d_canvas: torch.Tensor,
                        x: torch.Tensor, out: torch.Tensor, read: torch.Tensor, saved: tuple,
                        d_out: torch.Tensor, write: bool = True) -> torch.Tensor:
    """Backward of ``_attention_forward`` for h_dec_s.

    Parameters: d r_{s+1} (batch, R), d c_s, the output layer ``out`` (batch, O), r_{s+1} ``read``
    and the forward's ``saved`` tensors. Writes d out into ``d_out`` (batch, O); returns d c_{s-1}.
    """
    batch, c = shape.batch, shape.channels
    _, sigmoid, params, fx, fy, right, left = saved
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
    d_out.copy_(d_values)
    return d_canvas


# ---------------------------------------------------------------------------- compiling them (optional)
_compile_failed = False


class _CompiledOrEager:
    """Calls the compiled function; if compiling fails, warns once and calls ``eager`` from then on."""

    def __init__(self, eager) -> None:
        self.eager = eager
        self.compiled = torch.compile(eager, dynamic=False, fullgraph=True)

    def __call__(self, *args, **kwargs):
        global _compile_failed
        if not _compile_failed:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - no C++ compiler, unsupported device, ...: run eagerly
                _compile_failed = True
                warnings.warn(f"torch.compile failed ({type(exc).__name__}: {str(exc)[:200]}); "
                              f"the fast path runs eagerly", RuntimeWarning, stacklevel=2)
        return self.eager(*args, **kwargs)


_COMPILED = {name: _CompiledOrEager(function) for name, function in (
    ("lstm_forward", _lstm_forward), ("lstm_backward", _lstm_backward), ("latent_terms", _latent_terms),
    ("attention_forward", _attention_forward), ("attention_backward", _attention_backward))}


class _Pieces:
    """The functions between the matrix products for one shape, eager or compiled.

    (Compiled: one cache entry per shape in each function's cache. Not ``functools.partial``:
    torch.compile would compile the one wrapper all partials share.)
    """

    def __init__(self, shape: _Shape, device: torch.device, dtype: torch.dtype, compiled: bool) -> None:
        self.shape, self.constants = shape, _grid_constants(shape, device, dtype)
        pieces = _COMPILED if compiled else {name: piece.eager for name, piece in _COMPILED.items()}
        self.lstm_forward, self.lstm_backward = pieces["lstm_forward"], pieces["lstm_backward"]
        self.latent_terms = pieces["latent_terms"]
        self._attention_forward, self._attention_backward = pieces["attention_forward"], pieces["attention_backward"]

    def attention_forward(self, *args) -> None:
        self._attention_forward(self.shape, self.constants, *args)

    def attention_backward(self, *args) -> torch.Tensor:
        return self._attention_backward(self.shape, self.constants, *args)

    def attention_start(self, *args) -> None:
        """``_attention_forward`` of h_dec_0: the read filters only (eager: once per pass)."""
        _attention_forward(self.shape, self.constants, *args, write=False)

    def attention_backward_start(self, *args) -> torch.Tensor:
        return _attention_backward(self.shape, self.constants, *args, write=False)


@functools.lru_cache(maxsize=8)
def _pieces(shape: _Shape, device: torch.device, dtype: torch.dtype, compiled: bool) -> _Pieces:
    return _Pieces(shape, device, dtype, compiled)


def compile_wanted(model: DRAW, x: torch.Tensor, requested: bool | None = None) -> bool:
    """Whether ``fast_backward(model, x, compile=requested)`` compiles its pointwise pieces.

    ``requested`` True / False decides; None reads ``$DRAW_STUDIO_COMPILE`` ("1" / "0"), and
    unset or "auto" compiles on a CPU, in the main thread (not in a window's worker, where the
    first step would stall for the compile time), when a pass is big enough to repay it
    (batch * steps * (enc + dec) >= 2^20: the mnist-paper preset from batch 32 on).
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
        return (x.device.type == "cpu" and threading.current_thread() is threading.main_thread()
                and work >= _AUTO_COMPILE_WORK)
    return bool(requested)


# ---------------------------------------------------------------------------- one pass
_workspaces = threading.local()  # per thread: the big buffers of the last pass, reused when the sizes match


def _buffer(name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """An uninitialised buffer kept between calls: allocating (and page-faulting) ~100 MB per pass is slow."""
    cache = _workspaces.__dict__.setdefault("buffers", {})
    buffer = cache.get(name)
    if buffer is None or buffer.shape != shape or buffer.device != like.device or buffer.dtype != like.dtype:
        buffer = cache[name] = torch.empty(shape, device=like.device, dtype=like.dtype)
    return buffer


class _Pass:
    """One forward and backward pass of ``model`` on ``x`` with noise ``eps`` (T, batch, Z)."""

    def __init__(self, model: DRAW, x: torch.Tensor, eps: torch.Tensor, compiled: bool) -> None:
        cfg = model.config
        self.model, self.x, self.eps, self.steps = model, x, eps, cfg.steps
        self.shape = shape = _Shape(x.shape[0], cfg.channels, cfg.height, cfg.width, cfg.read_n, cfg.write_n,
                                    model.read_head is not None, model.write_head is not None,
                                    cfg.enc_size, cfg.dec_size, cfg.z_size)
        self.pieces = _pieces(shape, x.device, x.dtype, compiled)
        r, e, d = shape.read, shape.enc, shape.dec
        self.h_enc_cols, self.h_dec_cols = slice(r, r + e), slice(r + e, r + e + d)  # blocks of one buffer row
        self.z_cols = slice(r + e + d, r + e + d + shape.z)
        enc, dec = model.encoder, model.decoder
        self.w_enc = torch.cat((enc.weight_ih[:, :r], enc.weight_hh, enc.weight_ih[:, r:]), 1).detach()  # (4E, R+E+D)
        self.b_enc = (enc.bias_ih + enc.bias_hh).detach()
        self.w_dec = torch.cat((dec.weight_hh, dec.weight_ih), 1).detach()  # (4D, D+Z)
        self.b_dec = (dec.bias_ih + dec.bias_hh).detach()
        self.w_lat, self.b_lat = model.latent.weight.detach(), model.latent.bias.detach()  # (2Z, E)
        self.out_layers = [layer for layer in (model.write_head and model.write_head.linear,
                                               model.read_head and model.read_head.linear, model.write_out) if layer]
        self.w_out = torch.cat([layer.weight for layer in self.out_layers]).detach()  # (O, D)
        self.b_out = torch.cat([layer.bias for layer in self.out_layers]).detach()

    def _empty(self, name: str, *shape: int) -> torch.Tensor:
        return _buffer(name, shape, self.x)

    def _alternating(self, name: str, count: int, *shape: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Two buffers for items 0, 2, 4, ... and 1, 3, 5, ...: a piece reading item t and writing item t+1
        then gets views of different tensors (compiled code treats views of one tensor as aliases)."""
        return self._empty(name + "_even", (count + 2) // 2, *shape), self._empty(name + "_odd", (count + 1) // 2, *shape)

    def _saved_attention(self, s: int) -> tuple:
        """Where the attention pieces of h_dec_s keep what their backward needs (see ``_attention_forward``)."""
        return (self.canvases[s % 2], self.sigmoids[s]) + tuple(
            None if buffer is None else buffer[s] for buffer in (self.params, self.fx, self.fy, self.right, self.left))

    def forward(self) -> torch.Tensor:
        """Run the T steps; returns the final canvas c_T (batch, C, H, W)."""
        model, x, steps, shape, pieces = self.model, self.x, self.steps, self.shape, self.pieces
        batch, r, e, d, z = shape.batch, shape.read, shape.enc, shape.dec, shape.z
        c, h, w = shape.channels, shape.height, shape.width
        self.rows = rows = self._empty("rows", steps + 1, batch, r + e + d + z)  # the products' inputs
        self.gates_enc = self._empty("gates_enc", steps, batch, 4 * e)  # pre-activations, activations, gradients
        self.gates_dec = self._empty("gates_dec", steps, batch, 4 * d)
        self.cells_enc, self.cells_dec = self._alternating("cells_enc", steps, batch, e), \
            self._alternating("cells_dec", steps, batch, d)
        self.tanh_enc, self.tanh_dec = self._empty("tanh_enc", steps, batch, e), self._empty("tanh_dec", steps, batch, d)
        self.latent = self._empty("latent", steps, batch, 2 * z)  # (mu, log sigma), later their gradients
        self.outs = self._empty("outs", steps + 1, batch, self.w_out.shape[0])  # output layer on h_dec_0 .. h_dec_T
        self.canvases = (self._empty("canvas_even", batch, c, h, w), self._empty("canvas_odd", batch, c, h, w))
        self.sigmoids = self._empty("sigmoids", steps + 1, batch, c, h, w)
        rows_k, kinds = shape.write_rows.stop + shape.read_n * shape.read_attn, shape.kinds
        self.params = self._empty("params", steps + 1, batch, kinds, 5) if kinds else None
        self.fx = self._empty("fx", steps + 1, batch, rows_k, w) if kinds else None
        self.fy = self._empty("fy", steps + 1, batch, rows_k, h) if kinds else None
        self.right = self._empty("right", steps + 1, batch, c, shape.write_n, w) if shape.write_attn else None
        self.left = self._empty("left", steps + 1, batch, 2 * c, shape.read_n, w) if shape.read_attn else None
        init = model.state_init.detach()
        rows[0, :, self.h_enc_cols], rows[0, :, self.h_dec_cols] = init[0, :e], init[2, :d]
        self.cell_enc(0).copy_(init[1, :e])
        self.cell_dec(0).copy_(init[3, :d])
        self.canvases[0].copy_(model.canvas_init.detach())
        torch.addmm(self.b_out, rows[0, :, self.h_dec_cols], self.w_out.t(), out=self.outs[0])  # used by read only
        pieces.attention_start(self.outs[0], self.canvases[0], x, rows[0, :, :r], self._saved_attention(0))
        for t in range(steps):
            torch.addmm(self.b_enc, rows[t, :, :r + e + d], self.w_enc.t(), out=self.gates_enc[t])
            pieces.lstm_forward(self.gates_enc[t], self.cell_enc(t), self.cell_enc(t + 1), self.tanh_enc[t],
                                rows[t + 1, :, self.h_enc_cols])
            lat = torch.addmm(self.b_lat, rows[t + 1, :, self.h_enc_cols], self.w_lat.t(), out=self.latent[t])
            torch.addcmul(lat[:, :z], lat[:, z:].exp(), self.eps[t], out=rows[t, :, self.z_cols])  # z_t
            torch.addmm(self.b_dec, rows[t, :, r + e:], self.w_dec.t(), out=self.gates_dec[t])
            pieces.lstm_forward(self.gates_dec[t], self.cell_dec(t), self.cell_dec(t + 1), self.tanh_dec[t],
                                rows[t + 1, :, self.h_dec_cols])
            torch.addmm(self.b_out, rows[t + 1, :, self.h_dec_cols], self.w_out.t(), out=self.outs[t + 1])
            pieces.attention_forward(self.outs[t + 1], self.canvases[t % 2], x, rows[t + 1, :, :r],
                                     self._saved_attention(t + 1))
        return self.canvases[steps % 2].clone()

    def cell_enc(self, t: int) -> torch.Tensor:
        """c_t of the encoder (batch, E)."""
        return self.cells_enc[t % 2][t // 2]

    def cell_dec(self, t: int) -> torch.Tensor:
        """c_t of the decoder (batch, D)."""
        return self.cells_dec[t % 2][t // 2]

    def backward(self, d_canvas: torch.Tensor, weight: float) -> dict[str, torch.Tensor]:
        """Gradients of ``weight * (nll.sum() + kl.sum())``, given ``d_canvas`` = weight * d nll / d c_T.

        Leaves the layers' output gradients in the buffers (for ``weight_grads``) and returns the
        loss terms ``kl`` and ``log_ratio`` (batch,) and the gradients of the initial state:
        ``canvas``, ``h_enc``, ``c_enc``, ``h_dec``, ``c_dec`` (each (batch, ...)).
        """
        steps, shape, pieces, x = self.steps, self.shape, self.pieces, self.x
        batch, r, e, d, z = shape.batch, shape.read, shape.enc, shape.dec, shape.z
        kl, log_ratio, sigma_eps = pieces.latent_terms(self.latent, self.eps, self.rows[:steps, :, self.z_cols],
                                                       x.new_tensor(weight))
        self.d_outs = self._empty("d_outs", *self.outs.shape)
        d_read = x.new_zeros(batch, self.w_enc.shape[1])[:, :r]  # d r_T (r_T is not used); strides as below
        d_h_enc, d_c_enc, d_h_dec, d_c_dec = (x.new_zeros(batch, n) for n in (e, e, d, d))
        for t in reversed(range(steps)):
            d_canvas = pieces.attention_backward(d_read, d_canvas, x, self.outs[t + 1], self.rows[t + 1, :, :r],
                                                 self._saved_attention(t + 1), self.d_outs[t + 1])
            d_h_dec = torch.addmm(d_h_dec, self.d_outs[t + 1], self.w_out)
            d_c_dec = pieces.lstm_backward(d_h_dec, d_c_dec, self.gates_dec[t], self.cell_dec(t), self.tanh_dec[t])
            d_dec_in = self.gates_dec[t] @ self.w_dec  # (batch, D+Z): d h_dec_{t-1}, d z_t
            d_lat = self.latent[t]
            d_lat[:, :z] += d_dec_in[:, d:]
            d_lat[:, z:].addcmul_(d_dec_in[:, d:], sigma_eps[t])
            d_h_enc = torch.addmm(d_h_enc, d_lat, self.w_lat)
            d_c_enc = pieces.lstm_backward(d_h_enc, d_c_enc, self.gates_enc[t], self.cell_enc(t), self.tanh_enc[t])
            d_enc_in = self.gates_enc[t] @ self.w_enc  # (batch, R+E+D): d r_t, d h_enc_{t-1}, d h_dec_{t-1}
            d_read, d_h_enc = d_enc_in[:, :r], d_enc_in[:, r:r + e]
            d_h_dec = d_enc_in[:, r + e:] + d_dec_in[:, :d]
        d_canvas = pieces.attention_backward_start(d_read, d_canvas, x, self.outs[0], self.rows[0, :, :r],
                                                   self._saved_attention(0), self.d_outs[0])
        d_h_dec = torch.addmm(d_h_dec, self.d_outs[0], self.w_out)
        return {"kl": kl, "log_ratio": log_ratio, "canvas": d_canvas, "h_enc": d_h_enc, "c_enc": d_c_enc,
                "h_dec": d_h_dec, "c_dec": d_c_dec}

    def weight_grads(self) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
        """(parameter, gradient) of every layer: one product over all steps per layer."""
        steps, model = self.steps, self.model
        r, e, d = self.shape.read, self.shape.enc, self.shape.dec
        inputs = self.rows[:steps].flatten(0, 1)  # (T*batch, width): row blocks of steps 1..T
        outputs = self.rows[1:].flatten(0, 1)
        d_enc, d_dec = self.gates_enc.flatten(0, 1), self.gates_dec.flatten(0, 1)  # now the gradients
        d_lat, d_out = self.latent.flatten(0, 1), self.d_outs.flatten(0, 1)
        g_enc, g_dec = d_enc.t() @ inputs[:, :r + e + d], d_dec.t() @ inputs[:, r + e:]  # (4E, R+E+D), (4D, D+Z)
        b_enc, b_dec = d_enc.sum(0), d_dec.sum(0)
        grads = [(model.encoder.weight_ih, torch.cat((g_enc[:, :r], g_enc[:, r + e:]), 1)),
                 (model.encoder.weight_hh, g_enc[:, r:r + e]), (model.encoder.bias_ih, b_enc),
                 (model.encoder.bias_hh, b_enc), (model.decoder.weight_hh, g_dec[:, :d]),
                 (model.decoder.weight_ih, g_dec[:, d:]), (model.decoder.bias_ih, b_dec),
                 (model.decoder.bias_hh, b_dec),
                 (model.latent.weight, d_lat.t() @ outputs[:, self.h_enc_cols]), (model.latent.bias, d_lat.sum(0))]
        g_out, b_out = d_out.t() @ self.rows.flatten(0, 1)[:, self.h_dec_cols], d_out.sum(0)
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
    model._check_images(x)
    cfg = model.config
    batch = x.shape[0]
    eps = torch.randn((cfg.steps, batch, cfg.z_size), generator=generator, device=x.device, dtype=x.dtype)
    weight = 1.0 / batch if loss_weight is None else loss_weight
    run = _Pass(model, x, eps, compile_wanted(model, x, compile))
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
