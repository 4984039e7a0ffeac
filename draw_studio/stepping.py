"""What a step-level run of DRAW takes and returns (``DRAW.start_state``, ``DRAW.run_steps``).

The explore tools (:mod:`draw_studio.explore`) fork, edit and re-run parts of a recorded run with these:
a :class:`RunState` to start from, :class:`StepControls` saying which latents and attention windows to
impose, and a :class:`StepsResult` back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch


class RunState(NamedTuple):
    """The recurrent state of a batch between two steps (``DRAW.start_state``, ``DRAW.run_steps``).

    In generation mode the encoder's fields are carried through unchanged.
    """

    h_enc: torch.Tensor  # (batch, enc)
    c_enc: torch.Tensor  # (batch, enc)
    h_dec: torch.Tensor  # (batch, dec)
    c_dec: torch.Tensor  # (batch, dec)
    canvas: torch.Tensor  # (batch, C, H, W): c_t, in logits


@dataclass
class StepControls:
    """What ``DRAW.run_steps`` imposes on a run instead of computing or sampling it; every field optional.

    Steps are indexed 0..T-1 as in traces (the paper's t = s + 1), absolutely: a run that starts at
    step 10 reads row 10 of each tensor.

    Attributes
    ----------
    z : Tensor, shape (batch, T, Z), optional
        Latents to feed the decoder.
    z_mask : Tensor, shape (batch, T), bool, optional
        Where ``z`` is imposed (elsewhere z is sampled: from the posterior when the encoder runs,
        else it is the noise itself, a prior sample). None with ``z`` given: every step.
    read_window, write_window : Tensor, shape (batch, T, 5), optional
        Attention parameters ``gx, gy, delta, sigma2, gamma`` (1-based pixel units, as in traces)
        replacing the model's own; NaN entries keep the model's value.
    """

    z: torch.Tensor | None = None
    z_mask: torch.Tensor | None = None
    read_window: torch.Tensor | None = None
    write_window: torch.Tensor | None = None

    def steps_with_z(self, steps: int) -> list[str]:
        """Per step: ``"all"`` (every row imposed), ``"some"`` or ``"none"`` (host-side, computed once)."""
        if self.z is None:
            return ["none"] * steps
        if self.z_mask is None:
            return ["all"] * steps
        mask = self.z_mask.detach().cpu()  # (batch, T)
        return ["all" if bool(mask[:, s].all()) else "some" if bool(mask[:, s].any()) else "none"
                for s in range(steps)]

    @staticmethod
    def steps_with_window(window: torch.Tensor | None, steps: int) -> list[bool]:
        """Per step: whether ``window`` (batch, T, 5) overrides anything there."""
        if window is None:
            return [False] * steps
        return (~torch.isnan(window.detach().cpu())).flatten(2).any(2).any(0).tolist()[:steps]


@dataclass
class StepsResult:
    """What ``DRAW.run_steps`` returns.

    Attributes
    ----------
    state : RunState
        The state after the last step run.
    kl : Tensor, shape (batch,)
        Sum of the KL of the steps run (zeros in generation mode).
    log_ratio : Tensor, shape (batch,)
        Sum over the steps run of log p(z_t) - log q(z_t | x) (zeros in generation mode).
    states : list of RunState or None
        With ``keep_states``: the state after each step run.
    """

    state: RunState
    kl: torch.Tensor
    log_ratio: torch.Tensor
    states: list[RunState] | None = None
