"""A hand-written forward and backward of one DRAW training step, with the same numbers as ``DRAW.forward``.

``fast_backward(model, x, generator)`` runs the forward and the backward pass by hand and leaves
in every parameter's ``.grad`` what ``model(x, generator=generator)[0].bound.mean().backward()``
would, to float32 rounding (tests/test_handwritten_step.py checks every attention / likelihood
combination, eager and compiled). ``compile_wanted`` says whether a pass compiles its steps;
``release_buffers`` frees the memory kept between passes.

The pieces, in reading order:

* ``handwritten_layers``: one step forward and backward (LSTMs, latent layer) on weights
  fused per layer (``FusedWeights``, stacked from ``DRAW.layer_weights``);
* ``handwritten_attention``: the read and write attention, forward and backward;
* ``handwritten_buffers``: the sizes of a pass and the buffers each step stores for its backward;
* ``handwritten_ops``: small operations written differently when compiled;
* this module: a pass over T steps (``_Pass``), compiling the steps, the public entry points.

Autograd runs only at the ends: the likelihood of c_T (and its learned scale), and carrying
the gradients of the fused weights and of ``DRAW.initial_state`` back into the parameters.

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
import os
import warnings

import torch

from .handwritten_attention import GridConstants, attention_backward, attention_forward, grid_constants
from .handwritten_buffers import Sizes, WorkspaceCache
from .handwritten_layers import FusedWeights, StepState, backward_step, forward_step, fuse, latent_terms
from .model import DRAW, InitialState, LossTerms

COMPILE_ENV = "DRAW_STUDIO_COMPILE"  # "1": compile, "0": never, unset / "auto": see ``compile_wanted``
_AUTO_COMPILE_WORK = 1 << 20  # batch * steps * (enc + dec) from which compiling (~30 s, once) pays off


# ---------------------------------------------------------------------------- compiling the steps (optional)
_compile_failed = False


class _CompiledOrEager:
    """Calls the compiled ``eager`` function; if compiling fails, warns once and runs eagerly from then on.

    Static shapes (one compile per batch size; the steps of a pass all share it) and inductor's C++
    wrapper (~3% faster at batch 64 than the Python one: 2 x T calls per pass).
    """

    def __init__(self, eager) -> None:
        self.eager = eager
        self._compiled = None  # made on the first call: torch.compile imports torch._dynamo (~1.5 s)

    @property
    def compiled(self):
        """The ``torch.compile``-d function, made on first use."""
        if self._compiled is None:
            self._compiled = torch.compile(self.eager, dynamic=False, fullgraph=True,
                                           options={"cpp_wrapper": True})
        return self._compiled

    def __call__(self, *args):
        global _compile_failed
        if not _compile_failed:
            try:
                return self.compiled(*args)
            except Exception as exc:  # noqa: BLE001 - no C++ compiler, unsupported device, ...: run eagerly
                if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
                    raise  # a CUDA graph's capture failed, not compiling: the graph falls back (cuda_graphs.py)
                _compile_failed = True
                warnings.warn(f"torch.compile failed ({type(exc).__name__}: {str(exc)[:300]}); "
                              f"the fast path runs eagerly", RuntimeWarning, stacklevel=2)
        return self.eager(*args)


_COMPILED = {function.__name__: _CompiledOrEager(function)
             for function in (forward_step, backward_step, latent_terms)}  # one cache entry per shape each


def compile_wanted(model: DRAW, x: torch.Tensor, requested: bool | None = None) -> bool:
    """Whether ``fast_backward(model, x, compile=requested)`` compiles its steps.

    ``requested`` True / False decides; None reads ``$DRAW_STUDIO_COMPILE`` ("1" / "0"), and
    unset or "auto" compiles when a pass is big enough to repay the compile time
    (batch * steps * (enc + dec) >= 2^20: the mnist-paper preset from batch 32 on). On a GPU
    (experimental, unmeasured) the first compiled pass of each shape is checked against the eager
    pass on the same batch and noise, and a difference turns compiling off with a warning
    (``fast_backward``).
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
        return x.device.type in ("cpu", "cuda") and work >= _AUTO_COMPILE_WORK
    return bool(requested)


# ---------------------------------------------------------------------------- one pass
class PassResources:
    """What passes keep between calls: the workspace, the grid constants and the loss-weight scalars.

    All are made outside any pass and reused, so a pass makes no host-to-device copy of its own (on a GPU a
    pass can then be captured in a CUDA graph, which also needs every tensor it reads to stay where it was:
    ``cuda_graphs.GraphedStep`` holds resources of its own, never cleared while it lives).
    """

    def __init__(self) -> None:
        self.workspaces = WorkspaceCache()
        self._constants: dict[tuple, GridConstants] = {}
        self._scalars: dict[tuple, torch.Tensor] = {}

    def constants(self, sizes: Sizes, like: torch.Tensor) -> GridConstants:
        """The attention's grid constants for passes of ``sizes`` on ``like``'s device and dtype (made once)."""
        key = (sizes, like.device, like.dtype)
        if key not in self._constants:
            if len(self._constants) > 16:  # a few shapes in a process; never grows without bound
                self._constants.clear()
            self._constants[key] = grid_constants(sizes, like.device, like.dtype)
        return self._constants[key]

    def scalar(self, value: float, like: torch.Tensor) -> torch.Tensor:
        """``value`` as a 0-d tensor on ``like``'s device and dtype, made once per value (no host-to-device copy
        per pass on a GPU; on the CPU the same numbers as a new tensor)."""
        key = (float(value), like.device, like.dtype)
        tensor = self._scalars.get(key)
        if tensor is None:
            if len(self._scalars) > 64:
                self._scalars.clear()
            tensor = self._scalars[key] = like.new_tensor(value)
        return tensor

    def clear(self) -> None:
        """Free what is kept (the workspace unless a pass is using it)."""
        self.workspaces.clear()
        self._constants.clear()
        self._scalars.clear()


_shared = PassResources()  # every pass but those of a ``GraphedStep``
_workspaces = _shared.workspaces


def release_buffers() -> None:
    """Free the buffers the fast path keeps between calls (~75 MB at mnist-paper batch 64), e.g. when
    training ends in a long-lived process such as the window."""
    _shared.clear()


class _Pass:
    """One forward and backward pass of ``model`` on ``x``; ``generator`` draws the noise as DRAW.forward does."""

    def __init__(self, model: DRAW, x: torch.Tensor, generator: torch.Generator | None, compiled: bool,
                 resources: PassResources, stack: contextlib.ExitStack, eps: torch.Tensor | None = None) -> None:
        cfg = model.config
        self.x, self.steps = x, cfg.steps
        self.sizes = sizes = Sizes(x.shape[0], cfg.channels, cfg.height, cfg.width, cfg.read_n, cfg.write_n,
                                   cfg.read_attention, cfg.write_attention, cfg.enc_size, cfg.dec_size, cfg.z_size)
        self.resources = resources
        self.constants = resources.constants(sizes, x)
        self.pieces = _COMPILED if compiled else {name: piece.eager for name, piece in _COMPILED.items()}
        with torch.enable_grad():  # kept with their autograd history, for ``send_gradients``
            self.init, self.fused = model.initial_state(), fuse(model.layer_weights())
        self.weights = FusedWeights(*(w.detach() for w in self.fused))
        self.work = stack.enter_context(resources.workspaces.lend(sizes, cfg.steps, self.weights.output.shape[0], x))
        if eps is None:
            torch.randn(self.work.eps.shape, generator=generator, out=self.work.eps)  # (T, batch, Z), as DRAW.forward
        else:
            self.work.eps.copy_(eps)  # (T, batch, Z): given (a rank's rows of a global batch's noise)

    def forward(self) -> torch.Tensor:
        """Run the T steps; returns the final canvas c_T (batch, C, H, W)."""
        x, sizes, work, weights = self.x, self.sizes, self.work, self.weights
        batch, e, d = sizes.batch, sizes.enc, sizes.dec
        init = InitialState(*(value.detach() for value in self.init))
        h_enc, h_dec = init.h_enc.expand(batch, e).contiguous(), init.h_dec.expand(batch, d).contiguous()
        c_enc, c_dec = work.cells_enc[0].copy_(init.c_enc).clone(), work.cells_dec[0].copy_(init.c_dec).clone()
        canvas = init.canvas.expand(batch, *init.canvas.shape).contiguous()
        out = torch.addmm(weights.output_bias, h_dec, weights.output.t(), out=work.outs[0])  # used by read only
        _, read = attention_forward(sizes, self.constants, out, canvas, x, work.attention[0], write=False)
        state = StepState(read, h_enc, c_enc, h_dec, c_dec, canvas)
        step = self.pieces["forward_step"]
        for buffers in work.step_buffers:
            state = step(sizes, self.constants, weights, x, state, buffers)
        columns = sizes.columns
        last = work.rows[self.steps]  # the inputs of the layers after step T, for ``weight_grads``
        last[:, columns["read"]], last[:, columns["h_enc"]], last[:, columns["h_dec"]] = (
            state.read, state.h_enc, state.h_dec)
        return state.canvas

    def backward(self, d_canvas: torch.Tensor, weight: float) -> tuple[torch.Tensor, torch.Tensor, InitialState]:
        """Gradients of ``weight * (nll.sum() + kl.sum())``, given ``d_canvas`` = weight * d nll / d c_T.

        Leaves the layers' output gradients in the workspace (for ``weight_grads``) and returns the
        loss terms ``kl`` and ``log_ratio`` (batch,) and the gradient of the initial state (summed
        over the batch: every image starts from the same).
        """
        sizes, x, work = self.sizes, self.x, self.work
        batch, r, e, d = sizes.batch, sizes.read, sizes.enc, sizes.dec
        z = work.rows[:self.steps, :, sizes.columns["dec"]][..., d:]  # (T, batch, Z)
        kl, log_ratio = self.pieces["latent_terms"](work.latent, work.eps, z, self.resources.scalar(weight, x),
                                                     work.sigma_eps)
        d_inputs = x.new_zeros(batch, r + e + d)  # strides as the gradients the steps return
        grads = StepState(read=d_inputs[:, :r], h_enc=d_inputs[:, r:r + e], c_enc=x.new_zeros(batch, e),
                          h_dec=x.new_zeros(batch, d), c_dec=x.new_zeros(batch, d), canvas=d_canvas)  # r_{T+1}: unused
        step = self.pieces["backward_step"]
        for buffers in reversed(work.step_buffers):
            grads = step(sizes, self.constants, self.weights, x, grads, buffers)
        d_canvas, d_out = attention_backward(sizes, self.constants, grads.read, grads.canvas, x, work.outs[0],
                                             work.rows[0, :, :r], work.attention[0], work.d_outs[0], write=False)
        d_h_dec = torch.addmm(grads.h_dec, d_out, self.weights.output)
        d_init = InitialState(h_enc=grads.h_enc, c_enc=grads.c_enc, h_dec=d_h_dec, c_dec=grads.c_dec, canvas=d_canvas)
        return kl, log_ratio, InitialState(*(g.sum(0) for g in d_init))

    def weight_grads(self) -> FusedWeights:
        """The gradient of every fused weight: one product over all steps per layer."""
        steps, work, columns = self.steps, self.work, self.sizes.columns
        inputs, outputs = work.rows[:steps].flatten(0, 1), work.rows[1:].flatten(0, 1)  # (T*batch, width)
        d_enc, d_dec = work.gates_enc.flatten(0, 1), work.gates_dec.flatten(0, 1)  # now the gradients
        d_lat, d_out = work.latent.flatten(0, 1), work.d_outs.flatten(0, 1)  # d_out: (T+1)*batch rows
        return FusedWeights(
            encoder=d_enc.t() @ inputs[:, columns["enc"]], encoder_bias=d_enc.sum(0),  # (4E, R+E+D), (4E,)
            latent=d_lat.t() @ outputs[:, columns["h_enc"]], latent_bias=d_lat.sum(0),  # (2Z, E), (2Z,)
            decoder=d_dec.t() @ inputs[:, columns["dec"]], decoder_bias=d_dec.sum(0),  # (4D, D+Z), (4D,)
            output=d_out.t() @ work.rows.flatten(0, 1)[:, columns["h_dec"]], output_bias=d_out.sum(0))  # (O, D)

    def send_gradients(self, d_init: InitialState) -> None:
        """Add the gradients of the fused weights and of the initial state to the parameters' ``.grad``:
        autograd carries them back through the slicing and stacking that made those tensors."""
        pairs = [(tensor, grad) for tensor, grad in zip((*self.fused, *self.init), (*self.weight_grads(), *d_init))
                 if tensor.requires_grad]  # without learned_init the initial state stays fixed
        torch.autograd.backward([tensor for tensor, _ in pairs], [grad for _, grad in pairs])


def fast_backward(model: DRAW, x: torch.Tensor, generator: torch.Generator | None = None,
                  loss_weight: float | None = None, compile: bool | None = None,
                  eps: torch.Tensor | None = None, resources: PassResources | None = None) -> LossTerms:
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
    eps : Tensor, shape (T, batch, Z), optional
        The noise eps_t to use instead of drawing it from ``generator`` (a rank's rows of the noise of a
        global batch, ``draw_studio.distributed``).
    resources : PassResources, optional
        The workspace, constants and scalars to use (default: those shared by every pass; a CUDA graph's own).

    Returns
    -------
    LossTerms
        Detached ``nll_x``, ``kl`` and ``log_weight``, each (batch,).
    """
    model.check_images(x)
    weight = 1.0 / x.shape[0] if loss_weight is None else loss_weight
    compiled = compile_wanted(model, x, compile)
    resources = resources or _shared
    if compiled and x.device.type != "cpu" and _check_key(model, x) not in _checked:
        return _self_checked_pass(model, x, generator, weight, eps, resources)
    return _one_pass(model, x, generator, compiled, weight, eps, resources)


def _one_pass(model: DRAW, x: torch.Tensor, generator: torch.Generator | None, compiled: bool, weight: float,
              eps: torch.Tensor | None, resources: PassResources) -> LossTerms:
    """``fast_backward``'s forward and backward, compiled or not."""
    with contextlib.ExitStack() as stack:  # the workspace is lent until the gradients are out
        run = _Pass(model, x, generator, compiled, resources, stack, eps)
        with torch.no_grad():
            canvas = run.forward()
        canvas = canvas.detach().requires_grad_(True)
        nll_x = model.nll(canvas, x)  # autograd: the likelihood and its learned scale
        (nll_x.sum() * weight).backward()
        with torch.no_grad():
            kl, log_ratio, d_init = run.backward(canvas.grad, weight)
            run.send_gradients(d_init)
    nll_x = nll_x.detach()
    return LossTerms(nll_x=nll_x, kl=kl, log_weight=log_ratio - nll_x)


# ---------------------------------------------------------------------------- a compiled pass checks itself (GPU)
_checked: set[tuple] = set()  # (model sizes, batch, device) whose compiled pass matched the eager one


def _check_key(model: DRAW, x: torch.Tensor) -> tuple:
    return model.config, tuple(x.shape), x.device, x.dtype


def pass_difference(expected: tuple[LossTerms, list], got: tuple[LossTerms, list], rtol: float = 1e-4) -> str | None:
    """How two passes' (loss terms, parameter gradients) differ beyond float32 rounding, or None.

    Each tensor is compared on its own scale: ``max |a - b| <= rtol * max |a| + 1e-6``.
    """
    (terms_a, grads_a), (terms_b, grads_b) = expected, got
    pairs = [("bound", terms_a.bound, terms_b.bound), ("log_weight", terms_a.log_weight, terms_b.log_weight)]
    pairs += [(f"gradient {index}", a, b) for index, (a, b) in enumerate(zip(grads_a, grads_b))]
    for name, a, b in pairs:
        if (a is None) != (b is None):
            return f"{name}: present in one pass only"
        if a is None:
            continue
        error, scale = float((a - b).abs().max()), float(a.abs().max())
        if not error <= rtol * scale + 1e-6:  # NaN fails too
            return f"{name}: largest difference {error:.3g} on a scale of {scale:.3g}"
    return None


def _self_checked_pass(model: DRAW, x: torch.Tensor, generator: torch.Generator | None, weight: float,
                       eps: torch.Tensor | None, resources: PassResources) -> LossTerms:
    """The first compiled pass of a shape on a GPU: run eagerly and compiled on the same batch and noise; the
    compiled result if they agree (``pass_difference``), else the eager one, with compiling turned off and one
    warning. The gradients are added to the parameters' ``.grad`` as one pass would."""
    global _compile_failed
    cfg = model.config
    if eps is None:
        eps = torch.randn((cfg.steps, x.shape[0], cfg.z_size), generator=generator, device=x.device, dtype=x.dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.grad for p in params]
    results = {}
    for compiled in (False, True):
        for param in params:
            param.grad = None
        terms = _one_pass(model, x, None, compiled, weight, eps, resources)
        results[compiled] = (terms, [param.grad for param in params])
    _checked.add(_check_key(model, x))
    problem = pass_difference(results[False], results[True])
    if problem:
        _compile_failed = True
        warnings.warn(f"the compiled fast path differs from the eager one on {x.device.type} ({problem}); "
                      "the fast path runs eagerly", RuntimeWarning, stacklevel=3)
    terms, grads = results[not problem]
    for param, old, new in zip(params, before, grads):
        param.grad = new if old is None else old if new is None else old + new
    return terms
