"""The DRAW network (Gregor et al., 2015), exactly as DRAW-NOTES.md defines it.

Besides ``forward`` (reconstruction) and ``generate`` (the prior), ``DRAW.run_steps`` runs any range of steps from a
given state with latents or attention windows imposed (:mod:`draw_studio.stepping`); the first two are built on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional

from .attention import AttentionHead, filterbanks, read_glimpse, write_patch
from .config import ModelConfig
from .errors import DrawStudioError
from .likelihood import bernoulli_nll, discretized_logistic_nll
from .stepping import RunState, StepControls, StepsResult


@dataclass
class LossTerms:
    """Per-image terms of the variational bound, in nats.

    Attributes
    ----------
    nll_x : Tensor, shape (batch,)
        L_x = -log D(x | c_T).
    kl : Tensor, shape (batch,)
        L_z = sum over steps of KL(Q(z_t | x) || N(0, I)).
    log_weight : Tensor, shape (batch,)
        log p(x | z) + log p(z) - log q(z | x) for the sampled z: the
        importance weight used by the K-sample bound.
    """

    nll_x: torch.Tensor
    kl: torch.Tensor
    log_weight: torch.Tensor

    @property
    def bound(self) -> torch.Tensor:
        """L = L_x + L_z per image, shape (batch,)."""
        return self.nll_x + self.kl


class InitialState(NamedTuple):
    """The state before step 1, one of each shared by every image (learned with ``learned_init``).

    Returned by ``DRAW.initial_state``: views of the parameters, so a gradient given for each
    field to ``torch.autograd.backward`` lands in those parameters' ``.grad``.
    """

    h_enc: torch.Tensor  # (enc,)
    c_enc: torch.Tensor  # (enc,)
    h_dec: torch.Tensor  # (dec,)
    c_dec: torch.Tensor  # (dec,)
    canvas: torch.Tensor  # (C, H, W): c_0, in logits


class LayerWeights(NamedTuple):
    """Every weight of the network, named by what it multiplies (``DRAW.layer_weights``).

    LSTM rows are in PyTorch's gate order (input, forget, cell, output). R is the width of r_t,
    W that of the write layer (C Nw Nw with write attention, else C H W). The fields are views
    and sums of the parameters: a gradient given for each to ``torch.autograd.backward`` lands in
    the parameters' ``.grad``.
    """

    encoder_read: torch.Tensor  # (4 enc, R): the encoder on r_t
    encoder_h_dec: torch.Tensor  # (4 enc, dec): the encoder on h_dec_{t-1}
    encoder_h_enc: torch.Tensor  # (4 enc, enc): the encoder on its own h_enc_{t-1}
    encoder_bias: torch.Tensor  # (4 enc,): its two biases, summed
    latent: torch.Tensor  # (2Z, enc): h_enc_t -> (mu_t, log sigma_t)
    latent_bias: torch.Tensor  # (2Z,)
    decoder_z: torch.Tensor  # (4 dec, Z): the decoder on z_t
    decoder_h_dec: torch.Tensor  # (4 dec, dec): the decoder on its own h_dec_{t-1}
    decoder_bias: torch.Tensor  # (4 dec,): its two biases, summed
    write_head: torch.Tensor | None  # (5, dec): h_dec_t -> the write attention's parameters; None without
    write_head_bias: torch.Tensor | None  # (5,)
    read_head: torch.Tensor | None  # (5, dec): h_dec_t -> the read attention's parameters of step t+1
    read_head_bias: torch.Tensor | None  # (5,)
    write: torch.Tensor  # (W, dec): h_dec_t -> the write patch, or the whole canvas increment
    write_bias: torch.Tensor  # (W,)


def lstm_cell_fp32_state(cell: nn.LSTMCell, inputs: torch.Tensor,
                         state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``cell(inputs, state)`` with the products under the autocast in force (e.g. bf16) but the gates'
    pointwise work and the cell state c in float32.

    Under CUDA's autocast ``LSTMCell`` runs in bf16 and would carry c, a running sum over the T steps, in
    bf16; ``DRAW.run_steps`` calls this instead there. Without autocast it computes ``LSTMCell``'s numbers
    (to float32 rounding).

    Returns
    -------
    h, c : Tensor, shape (batch, hidden) each, float32
    """
    h, c = state
    gates = functional.linear(inputs, cell.weight_ih, cell.bias_ih) + functional.linear(h, cell.weight_hh,
                                                                                         cell.bias_hh)
    i, f, g, o = gates.float().chunk(4, dim=1)  # (batch, hidden) each: input, forget, cell, output
    c = torch.sigmoid(f) * c.float() + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _cuda_autocast() -> bool:
    """Whether CUDA's autocast is on (``torch.is_autocast_enabled`` takes the device type from PyTorch 2.4)."""
    try:
        return torch.is_autocast_enabled("cuda")
    except TypeError:
        return torch.is_autocast_enabled()


class StepRecorder:
    """Collects every intermediate quantity of a run, one entry per step."""

    def __init__(self) -> None:
        self.lists: dict[str, list[torch.Tensor]] = {}

    def add(self, **values: torch.Tensor) -> None:
        for name, value in values.items():
            self.lists.setdefault(name, []).append(value.detach())

    def stacked(self) -> dict[str, torch.Tensor]:
        """Tensors with the step axis at dimension 1: (batch, steps, ...)."""
        return {name: torch.stack(items, dim=1) for name, items in self.lists.items()}


class DRAW(nn.Module):
    """Deep Recurrent Attentive Writer.

    Parameters
    ----------
    config : ModelConfig
        Sizes, attention on/off and likelihood.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c, h, w = config.channels, config.height, config.width
        read_size = 2 * c * (config.read_n ** 2 if config.read_attention else h * w)
        self.encoder = nn.LSTMCell(read_size + config.dec_size, config.enc_size)
        self.decoder = nn.LSTMCell(config.z_size, config.dec_size)
        self.latent = nn.Linear(config.enc_size, 2 * config.z_size)  # -> (mu, log sigma)
        self.read_head = AttentionHead(config.dec_size, h, w, config.read_n) if config.read_attention else None
        self.write_head = AttentionHead(config.dec_size, h, w, config.write_n) if config.write_attention else None
        write_size = c * (config.write_n ** 2 if config.write_attention else h * w)
        self.write_out = nn.Linear(config.dec_size, write_size)
        self.canvas_init = nn.Parameter(torch.zeros(c, h, w), requires_grad=config.learned_init)
        self.state_init = nn.Parameter(  # rows: h_enc, c_enc, h_dec, c_dec (first enc_size/dec_size entries used)
            torch.zeros(4, max(config.enc_size, config.dec_size)), requires_grad=config.learned_init)
        if config.likelihood == "logistic":
            self.log_scale = nn.Parameter(torch.full((c,), -3.0))
        else:
            self.register_parameter("log_scale", None)

    # ------------------------------------------------------------------ what a hand-written step needs
    def initial_state(self) -> InitialState:
        """h_enc_0, c_enc_0, h_dec_0, c_dec_0 and c_0, unbatched (views of the parameters)."""
        e, d = self.config.enc_size, self.config.dec_size
        init = self.state_init  # rows h_enc, c_enc, h_dec, c_dec; the first enc / dec entries used
        return InitialState(h_enc=init[0, :e], c_enc=init[1, :e], h_dec=init[2, :d], c_dec=init[3, :d],
                            canvas=self.canvas_init)

    def layer_weights(self) -> LayerWeights:
        """The weights of every layer named by what they multiply (see ``LayerWeights``)."""
        read_size = self.encoder.input_size - self.config.dec_size  # the encoder's input is [r_t, h_dec_{t-1}]
        enc, dec = self.encoder, self.decoder
        heads = [(head.linear.weight, head.linear.bias) if head is not None else (None, None)
                 for head in (self.write_head, self.read_head)]
        return LayerWeights(
            encoder_read=enc.weight_ih[:, :read_size], encoder_h_dec=enc.weight_ih[:, read_size:],
            encoder_h_enc=enc.weight_hh, encoder_bias=enc.bias_ih + enc.bias_hh,
            latent=self.latent.weight, latent_bias=self.latent.bias,
            decoder_z=dec.weight_ih, decoder_h_dec=dec.weight_hh, decoder_bias=dec.bias_ih + dec.bias_hh,
            write_head=heads[0][0], write_head_bias=heads[0][1], read_head=heads[1][0], read_head_bias=heads[1][1],
            write=self.write_out.weight, write_bias=self.write_out.bias)

    # ------------------------------------------------------------------ helpers
    def _initial_state(self, batch: int):
        """The initial state expanded to ``batch`` images: (h_enc, c_enc), (h_dec, c_dec), canvas (batch, C, H, W)."""
        init = self.initial_state()
        enc = (init.h_enc.expand(batch, -1), init.c_enc.expand(batch, -1))
        dec = (init.h_dec.expand(batch, -1), init.c_dec.expand(batch, -1))
        return enc, dec, init.canvas.expand(batch, -1, -1, -1)

    def _write(self, h_dec: torch.Tensor, recorder: StepRecorder | None,
               window: torch.Tensor | None = None) -> torch.Tensor:
        """The canvas increment of one step (batch, C, H, W) from h_dec (batch, dec).

        ``window`` (batch, 5), optional: parameters replacing the write head's (NaN: keep the head's).
        """
        cfg = self.config
        batch = h_dec.shape[0]
        if self.write_head is None:
            return self.write_out(h_dec).view(batch, cfg.channels, cfg.height, cfg.width)
        params = self.write_head(h_dec)  # (batch, 5)
        if window is not None:
            params = torch.where(torch.isnan(window), params, window)
        fx, fy = filterbanks(params, cfg.height, cfg.width, cfg.write_n)
        patch = self.write_out(h_dec).view(batch, cfg.channels, cfg.write_n, cfg.write_n)
        if recorder is not None:
            recorder.add(write_params=params, write_patch=patch)
        return write_patch(patch, fx, fy, params[:, 4])

    def _read(self, x: torch.Tensor, x_hat: torch.Tensor, h_dec: torch.Tensor,
              recorder: StepRecorder | None, window: torch.Tensor | None = None) -> torch.Tensor:
        """r_t (batch, read_size) from the image, the error image and h_dec_{t-1}.

        ``window`` (batch, 5), optional: parameters replacing the read head's (NaN: keep the head's).
        """
        both = torch.cat((x, x_hat), dim=1)  # (batch, 2C, H, W)
        if self.read_head is None:
            return both.flatten(1)
        cfg = self.config
        params = self.read_head(h_dec)  # (batch, 5)
        if window is not None:
            params = torch.where(torch.isnan(window), params, window)
        fx, fy = filterbanks(params, cfg.height, cfg.width, cfg.read_n)
        glimpse = read_glimpse(both, fx, fy, params[:, 4])  # (batch, 2C, N, N)
        if recorder is not None:
            recorder.add(read_params=params, read_glimpse=glimpse)
        return glimpse.flatten(1)

    def nll(self, canvas: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """L_x per image (batch,) for the final canvas c_T and target x."""
        if self.config.likelihood == "bernoulli":
            return bernoulli_nll(canvas, x)
        return discretized_logistic_nll(canvas, x, self.log_scale)

    def check_images(self, x: torch.Tensor) -> None:
        """Raise ``DrawStudioError`` unless ``x`` is (batch, C, H, W) of this model's image size."""
        cfg = self.config
        expected = (cfg.channels, cfg.height, cfg.width)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise DrawStudioError(
                f"images of shape {tuple(x.shape)} do not fit this model, which expects (batch, {expected[0]}, "
                f"{expected[1]}, {expected[2]}); use a preset or data of that size")

    # ------------------------------------------------------------------ stepping
    def start_state(self, batch: int) -> RunState:
        """The state before step 1 for ``batch`` images (expanded views of the learned initial state)."""
        (h_enc, c_enc), (h_dec, c_dec), canvas = self._initial_state(batch)
        return RunState(h_enc, c_enc, h_dec, c_dec, canvas)

    def run_steps(self, state: RunState, first: int, last: int, x: torch.Tensor | None = None,
                  eps: torch.Tensor | None = None, controls: StepControls | None = None,
                  recorder: StepRecorder | None = None, keep_states: bool = False) -> StepsResult:
        """Run steps ``first`` .. ``last - 1`` (0-based, the paper's t = s + 1) from ``state``.

        ``forward`` and ``generate`` are this with no controls, so a run with nothing imposed gives
        their numbers bit for bit. With ``x`` the encoder runs (reconstruction, eqs 3-8); without it
        only the decoder (generation, eqs 13-15), whose state depends on the z's alone.

        Parameters
        ----------
        state : RunState
            The state after step ``first - 1`` (``start_state`` for ``first = 0``).
        first, last : int
            The steps to run, ``0 <= first <= last <= T``.
        x : Tensor, shape (batch, C, H, W), optional
            The image the encoder reads; None: generation.
        eps : Tensor, shape (T, batch, Z), optional
            Noise of the steps whose z is not imposed: z = mu + sigma eps with the encoder, z = eps
            without it. Indexed by absolute step. May be None when ``controls`` imposes every z run.
        controls : StepControls, optional
            Latents and attention windows imposed on some rows and steps.
        recorder : StepRecorder, optional
            Receives each step run as ``forward(record=True)`` / ``generate(record=True)`` records
            it (the canvas c_{s+1} after step s; the caller adds c_first if it wants it).
        keep_states : bool
            Also return the state after each step run.

        Returns
        -------
        StepsResult
        """
        controls = controls or StepControls()
        steps = self.config.steps
        if not 0 <= first <= last <= steps:
            raise ValueError(f"steps {first}..{last} are outside 0..{steps}")
        z_plan = controls.steps_with_z(steps)
        read_plan = StepControls.steps_with_window(controls.read_window, steps)
        write_plan = StepControls.steps_with_window(controls.write_window, steps)
        h_enc, c_enc, h_dec, c_dec, canvas = state
        batch = canvas.shape[0]
        kl = (x if x is not None else canvas).new_zeros(batch)
        log_ratio = (x if x is not None else canvas).new_zeros(batch)  # log p(z) - log q(z | x)
        states: list[RunState] | None = [] if keep_states else None
        for t in range(first, last):
            imposed = z_plan[t]
            if imposed != "all" and eps is None:
                raise ValueError(f"step {t} samples z but no noise eps was given")
            read_window = controls.read_window[:, t] if read_plan[t] else None  # (batch, 5) or None
            write_window = controls.write_window[:, t] if write_plan[t] else None
            if x is not None:
                x_hat = x - torch.sigmoid(canvas)  # (batch, C, H, W)
                r = self._read(x, x_hat, h_dec, recorder, read_window)
                h_enc, c_enc = self._lstm(self.encoder, torch.cat((r, h_dec), dim=1), (h_enc, c_enc))
                mu, log_sigma = self.latent(h_enc).chunk(2, dim=1)  # (batch, Z) each
                sigma = torch.exp(log_sigma)
                z, noise = self._posterior_z(mu, sigma, imposed, controls, eps, t)
                kl_t = 0.5 * (mu.square() + sigma.square() - 2 * log_sigma - 1).sum(1)  # (batch,)
                kl = kl + kl_t
                log_ratio = log_ratio + (0.5 * (noise.square() - z.square()) + log_sigma).sum(1)
            elif imposed == "none":
                z = eps[t]  # (batch, Z): a prior sample
            elif imposed == "all":
                z = controls.z[:, t]
            else:
                z = torch.where(controls.z_mask[:, t, None], controls.z[:, t], eps[t])
            h_dec, c_dec = self._lstm(self.decoder, z, (h_dec, c_dec))
            canvas = canvas + self._write(h_dec, recorder, write_window)
            if recorder is not None:
                if x is not None:
                    recorder.add(mu=mu, sigma=sigma, z=z, kl=kl_t, canvas=canvas)
                else:
                    recorder.add(z=z, canvas=canvas)
            if states is not None:
                states.append(RunState(h_enc, c_enc, h_dec, c_dec, canvas))
        return StepsResult(RunState(h_enc, c_enc, h_dec, c_dec, canvas), kl, log_ratio, states)

    @staticmethod
    def _lstm(cell: nn.LSTMCell, inputs: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """One LSTM step; under CUDA's autocast with the cell state kept in float32 (``lstm_cell_fp32_state``).
        Elsewhere ``LSTMCell`` itself (the CPU's autocast keeps it in float32 already)."""
        if inputs.is_cuda and _cuda_autocast():
            return lstm_cell_fp32_state(cell, inputs, state)
        return cell(inputs, state)

    @staticmethod
    def _posterior_z(mu, sigma, imposed: str, controls: StepControls, eps, t: int):
        """z_t (batch, Z) and the noise it amounts to, (z - mu) / sigma, for the step's plan."""
        if imposed == "none":
            return mu + sigma * eps[t], eps[t]
        given = controls.z[:, t]  # (batch, Z)
        implied = (given - mu) / sigma
        if imposed == "all":
            return given, implied
        mask = controls.z_mask[:, t, None]  # (batch, 1)
        return torch.where(mask, given, mu + sigma * eps[t]), torch.where(mask, implied, eps[t])

    # ------------------------------------------------------------------ public
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                record: bool = False) -> tuple[LossTerms, dict[str, torch.Tensor] | None]:
        """Reconstruct ``x`` over T steps and return the bound's terms.

        Parameters
        ----------
        x : Tensor, shape (batch, C, H, W)
            Images in [0, 1] (binary for a Bernoulli model).
        generator : torch.Generator, optional
            Source of the noise eps_t (fresh for every step).
        record : bool
            Also return every intermediate step (see ``StepRecorder``):
            ``canvas`` (batch, T+1, C, H, W), ``mu``, ``sigma``, ``z``
            (batch, T, Z), ``kl`` (batch, T), and with attention
            ``read_params`` / ``write_params`` (batch, T, 5),
            ``read_glimpse`` (batch, T, 2C, Nr, Nr), ``write_patch``
            (batch, T, C, Nw, Nw).
        """
        self.check_images(x)
        cfg = self.config
        batch = x.shape[0]
        state = self.start_state(batch)
        eps = torch.randn((cfg.steps, batch, cfg.z_size), generator=generator,
                          device=x.device, dtype=x.dtype)  # (T, batch, Z): fresh noise every step
        recorder = StepRecorder() if record else None
        if recorder is not None:
            recorder.add(canvas=state.canvas)
        run = self.run_steps(state, 0, cfg.steps, x=x, eps=eps, recorder=recorder)
        nll_x = self.nll(run.state.canvas, x)
        terms = LossTerms(nll_x=nll_x, kl=run.kl, log_weight=run.log_ratio - nll_x)
        return terms, (recorder.stacked() if recorder is not None else None)

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator | None = None,
                 record: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        """Draw ``n`` images from the prior: z_t ~ N(0, I), fresh every step.

        Returns
        -------
        images : Tensor, shape (n, C, H, W)
            The mean image sigmoid(c_T).
        record : dict or None
            With ``record=True``: ``canvas`` (n, T+1, C, H, W), ``z``
            (n, T, Z) and, with write attention, ``write_params`` and
            ``write_patch``.
        """
        cfg = self.config
        device = self.canvas_init.device
        state = self.start_state(n)
        recorder = StepRecorder() if record else None
        if recorder is not None:
            recorder.add(canvas=state.canvas)
        z_all = torch.randn((cfg.steps, n, cfg.z_size), generator=generator, device=device)  # (T, n, Z)
        run = self.run_steps(state, 0, cfg.steps, eps=z_all, recorder=recorder)
        return torch.sigmoid(run.state.canvas), (recorder.stacked() if recorder is not None else None)
