"""The DRAW network (Gregor et al., 2015), exactly as DRAW-NOTES.md defines it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import AttentionHead, filterbanks, read_glimpse, write_patch
from .config import ModelConfig
from .errors import DrawStudioError
from .likelihood import bernoulli_nll, discretized_logistic_nll


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

    # ------------------------------------------------------------------ helpers
    def _initial_state(self, batch: int):
        cfg = self.config
        init = self.state_init
        enc = (init[0, :cfg.enc_size].expand(batch, -1), init[1, :cfg.enc_size].expand(batch, -1))
        dec = (init[2, :cfg.dec_size].expand(batch, -1), init[3, :cfg.dec_size].expand(batch, -1))
        canvas = self.canvas_init.expand(batch, -1, -1, -1)  # (batch, C, H, W)
        return enc, dec, canvas

    def _write(self, h_dec: torch.Tensor, recorder: StepRecorder | None) -> torch.Tensor:
        """The canvas increment of one step (batch, C, H, W) from h_dec (batch, dec)."""
        cfg = self.config
        batch = h_dec.shape[0]
        if self.write_head is None:
            return self.write_out(h_dec).view(batch, cfg.channels, cfg.height, cfg.width)
        params = self.write_head(h_dec)  # (batch, 5)
        fx, fy = filterbanks(params, cfg.height, cfg.width, cfg.write_n)
        patch = self.write_out(h_dec).view(batch, cfg.channels, cfg.write_n, cfg.write_n)
        if recorder is not None:
            recorder.add(write_params=params, write_patch=patch)
        return write_patch(patch, fx, fy, params[:, 4])

    def _read(self, x: torch.Tensor, x_hat: torch.Tensor, h_dec: torch.Tensor,
              recorder: StepRecorder | None) -> torch.Tensor:
        """r_t (batch, read_size) from the image, the error image and h_dec_{t-1}."""
        both = torch.cat((x, x_hat), dim=1)  # (batch, 2C, H, W)
        if self.read_head is None:
            return both.flatten(1)
        cfg = self.config
        params = self.read_head(h_dec)  # (batch, 5)
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
        (h_enc, c_enc), (h_dec, c_dec), canvas = self._initial_state(batch)
        eps = torch.randn((cfg.steps, batch, cfg.z_size), generator=generator,
                          device=x.device, dtype=x.dtype)  # (T, batch, Z): fresh noise every step
        recorder = StepRecorder() if record else None
        if recorder is not None:
            recorder.add(canvas=canvas)
        kl = x.new_zeros(batch)
        log_ratio = x.new_zeros(batch)  # log p(z) - log q(z | x)
        for t in range(cfg.steps):
            x_hat = x - torch.sigmoid(canvas)  # (batch, C, H, W)
            r = self._read(x, x_hat, h_dec, recorder)
            h_enc, c_enc = self.encoder(torch.cat((r, h_dec), dim=1), (h_enc, c_enc))
            mu, log_sigma = self.latent(h_enc).chunk(2, dim=1)  # (batch, Z) each
            sigma = torch.exp(log_sigma)
            z = mu + sigma * eps[t]
            kl_t = 0.5 * (mu.square() + sigma.square() - 2 * log_sigma - 1).sum(1)  # (batch,)
            kl = kl + kl_t
            log_ratio = log_ratio + (0.5 * (eps[t].square() - z.square()) + log_sigma).sum(1)
            h_dec, c_dec = self.decoder(z, (h_dec, c_dec))
            canvas = canvas + self._write(h_dec, recorder)
            if recorder is not None:
                recorder.add(mu=mu, sigma=sigma, z=z, kl=kl_t, canvas=canvas)
        nll_x = self.nll(canvas, x)
        terms = LossTerms(nll_x=nll_x, kl=kl, log_weight=log_ratio - nll_x)
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
        _, (h_dec, c_dec), canvas = self._initial_state(n)
        recorder = StepRecorder() if record else None
        if recorder is not None:
            recorder.add(canvas=canvas)
        z_all = torch.randn((cfg.steps, n, cfg.z_size), generator=generator, device=device)  # (T, n, Z)
        for t in range(cfg.steps):
            h_dec, c_dec = self.decoder(z_all[t], (h_dec, c_dec))
            canvas = canvas + self._write(h_dec, recorder)
            if recorder is not None:
                recorder.add(z=z_all[t], canvas=canvas)
        return torch.sigmoid(canvas), (recorder.stacked() if recorder is not None else None)
