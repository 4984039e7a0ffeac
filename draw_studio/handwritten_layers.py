"""One DRAW step by hand, forward and backward: the LSTMs, the latent layer, and the step that chains them.

``forward_step`` and ``backward_step`` are what ``handwritten_step`` runs T times per pass (and
compiles). Each LSTM multiplies its whole input row by one fused matrix (``FusedWeights``); the
weight gradients are not formed here but once per pass over all steps (``_Pass.weight_grads``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .handwritten_attention import GridConstants, attention_backward, attention_forward
from .handwritten_buffers import Sizes, StepBuffers
from .handwritten_ops import linear_into, store, store_columns, tanh
from .model import LayerWeights


class StepState(NamedTuple):
    """What step t+1 needs from step t. The backward passes one of gradients (d r_{t+1}, d h_enc_t, ...)."""

    read: torch.Tensor  # (batch, R): r_{t+1}
    h_enc: torch.Tensor  # (batch, E)
    c_enc: torch.Tensor  # (batch, E)
    h_dec: torch.Tensor  # (batch, D)
    c_dec: torch.Tensor  # (batch, D)
    canvas: torch.Tensor  # (batch, C, H, W): c_t


class FusedWeights(NamedTuple):
    """DRAW's weights as the hand-written step multiplies them: one matrix per layer and step.

    The columns follow a row of the inputs buffer ``[r_t, h_enc_{t-1}, h_dec_{t-1}, z_t]``
    (``Sizes.columns``). The output layer stacks every layer that reads h_dec_t: write head
    (5 rows), read head (5), write layer (W), the heads only where they exist; O is its height.
    """

    encoder: torch.Tensor  # (4E, R+E+D): on [r_t, h_enc_{t-1}, h_dec_{t-1}]
    encoder_bias: torch.Tensor  # (4E,)
    latent: torch.Tensor  # (2Z, E)
    latent_bias: torch.Tensor  # (2Z,)
    decoder: torch.Tensor  # (4D, D+Z): on [h_dec_{t-1}, z_t]
    decoder_bias: torch.Tensor  # (4D,)
    output: torch.Tensor  # (O, D)
    output_bias: torch.Tensor  # (O,)


def fuse(layers: LayerWeights) -> FusedWeights:
    """Stack ``DRAW.layer_weights`` into ``FusedWeights`` (differentiable: gradients flow back to the parameters)."""
    outputs = [(w, b) for w, b in ((layers.write_head, layers.write_head_bias),
                                   (layers.read_head, layers.read_head_bias), (layers.write, layers.write_bias))
               if w is not None]
    return FusedWeights(
        encoder=torch.cat((layers.encoder_read, layers.encoder_h_enc, layers.encoder_h_dec), 1),
        encoder_bias=layers.encoder_bias, latent=layers.latent, latent_bias=layers.latent_bias,
        decoder=torch.cat((layers.decoder_h_dec, layers.decoder_z), 1), decoder_bias=layers.decoder_bias,
        output=torch.cat([w for w, _ in outputs]), output_bias=torch.cat([b for _, b in outputs]))


def lstm_forward(gates: torch.Tensor, cell_prev: torch.Tensor, acts_out: torch.Tensor, cell_out: torch.Tensor,
                 tanh_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM update from pre-activations (batch, 4H) in PyTorch's order i, f, g, o; returns (h_t, c_t).

    Stores the activations in ``acts_out`` (batch, 4H), c_t and tanh(c_t) in ``cell_out``, ``tanh_out``.
    """
    size = cell_prev.shape[1]
    in_forget = gates[:, :2 * size].sigmoid()
    candidate = tanh(gates[:, 2 * size:3 * size])
    out_gate = gates[:, 3 * size:].sigmoid()
    cell = store(cell_out, torch.addcmul(in_forget[:, size:] * cell_prev, in_forget[:, :size], candidate))
    tanh_cell = store(tanh_out, tanh(cell))
    store_columns(acts_out, (in_forget, candidate, out_gate))
    return out_gate * tanh_cell, cell


def lstm_backward(d_hidden: torch.Tensor, d_cell: torch.Tensor, gates: torch.Tensor, cell_prev: torch.Tensor,
                  tanh_cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward of ``lstm_forward``: ``gates`` (batch, 4H) holds the activations and gets the gradient of the
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
        return store(gates, torch.cat((d_in, d_forget, d_candidate, d_out), 1)), d_cell_prev
    store_columns(gates, (d_in, d_forget, d_candidate, d_out))
    return gates, d_cell_prev


def latent_terms(latent: torch.Tensor, eps: torch.Tensor, z: torch.Tensor, weight: torch.Tensor,
                 sigma_eps_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """KL and log p(z) - log q(z | x) per image (batch,), over all T steps at once; sigma * eps = dz / d log sigma
    (T, batch, Z) into ``sigma_eps_out``.

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


def forward_step(sizes: Sizes, constants: GridConstants, weights: FusedWeights, x: torch.Tensor,
                 state: StepState, buffers: StepBuffers) -> StepState:
    """Step t: the state after step t-1 -> the state after step t, storing in ``buffers`` what the backward needs
    (the inputs row, both LSTMs' activations, c_t and tanh(c_t), (mu, log sigma), the output layer, the
    attention's tensors)."""
    enc_in = torch.cat((state.read, state.h_enc, state.h_dec), 1)  # (batch, R+E+D)
    h_enc, c_enc = lstm_forward(torch.addmm(weights.encoder_bias, enc_in, weights.encoder.t()), state.c_enc,
                                buffers.gates_enc, buffers.cell_enc, buffers.tanh_enc)
    lat = linear_into(h_enc, weights.latent, weights.latent_bias, buffers.latent)  # (batch, 2Z): mu, log sigma
    z = lat[:, :sizes.z] + lat[:, sizes.z:].exp() * buffers.eps
    buffers.row.copy_(torch.cat((enc_in, z), 1))
    h_dec, c_dec = lstm_forward(torch.addmm(weights.decoder_bias, torch.cat((state.h_dec, z), 1), weights.decoder.t()),
                                state.c_dec, buffers.gates_dec, buffers.cell_dec, buffers.tanh_dec)
    out = linear_into(h_dec, weights.output, weights.output_bias, buffers.out)  # (batch, O)
    canvas, read = attention_forward(sizes, constants, out, state.canvas, x, buffers.attention)
    return StepState(read, h_enc, c_enc, h_dec, c_dec, canvas)


def backward_step(sizes: Sizes, constants: GridConstants, weights: FusedWeights, x: torch.Tensor,
                  grads: StepState, buffers: StepBuffers) -> StepState:
    """Backward of step t: the gradients of the state after step t -> those of the state after step t-1.

    Reads what ``forward_step`` stored; writes d out into ``buffers.d_out`` and, in place, turns the
    decoder's and encoder's activations and the latent layer's KL gradient (from ``latent_terms``)
    into the gradients of those layers' outputs (for ``_Pass.weight_grads``).
    """
    r, e, d = sizes.read, sizes.enc, sizes.dec
    d_canvas, d_out = attention_backward(sizes, constants, grads.read, grads.canvas, x, buffers.out,
                                         buffers.read_next, buffers.attention, buffers.d_out)
    d_gates, d_c_dec = lstm_backward(torch.addmm(grads.h_dec, d_out, weights.output), grads.c_dec,
                                     buffers.gates_dec, buffers.cell_dec_prev, buffers.tanh_dec)
    d_dec_in = d_gates @ weights.decoder  # (batch, D+Z): d h_dec_{t-1}, d z_t
    d_z = d_dec_in[:, d:]
    d_lat = store(buffers.latent, buffers.latent + torch.cat((d_z, d_z * buffers.sigma_eps), 1))
    d_gates, d_c_enc = lstm_backward(torch.addmm(grads.h_enc, d_lat, weights.latent), grads.c_enc,
                                     buffers.gates_enc, buffers.cell_enc_prev, buffers.tanh_enc)
    d_enc_in = d_gates @ weights.encoder  # (batch, R+E+D): d r_t, d h_enc_{t-1}, d h_dec_{t-1}
    return StepState(read=d_enc_in[:, :r], h_enc=d_enc_in[:, r:r + e], c_enc=d_c_enc,
                     h_dec=d_enc_in[:, r + e:] + d_dec_in[:, :d], c_dec=d_c_dec, canvas=d_canvas)
