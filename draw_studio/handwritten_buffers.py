"""The sizes of one hand-written pass and the buffers it keeps: what each step stores for its backward.

A pass writes every step's activations into buffers with a step axis (one ``Workspace``); each
step gets named views of its slice (``StepBuffers``). The buffers outlive the pass: allocating
and page-faulting ~100 MB per pass is slow, so one workspace is kept between calls
(``WorkspaceCache``).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import NamedTuple

import torch


@dataclass(frozen=True)
class Sizes:
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
        """The write attention's filter rows among the rows of both kinds."""
        return slice(0, self.write_n if self.write_attn else 0)

    @property
    def read_rows(self) -> slice:
        """The read attention's filter rows (after the write attention's)."""
        start = self.write_rows.stop
        return slice(start, start + (self.read_n if self.read_attn else 0))


class AttentionBuffers(NamedTuple):
    """Where the attention that follows h_dec_s keeps what its backward needs; None where a part does not exist.

    ``rows`` counts the filter rows of both kinds (Nw + Nr), K the kinds (``Sizes.kinds``).
    """

    sigmoid: torch.Tensor  # (batch, C, H, W): sigmoid(c_s)
    params: torch.Tensor | None  # (batch, K, 5): gx, gy, delta, sigma2, gamma of each kind
    fx: torch.Tensor | None  # (batch, rows, W): F_X of both kinds
    fy: torch.Tensor | None  # (batch, rows, H): F_Y of both kinds
    right: torch.Tensor | None  # (batch, C, Nw, W): write patch @ F_X
    left: torch.Tensor | None  # (batch, 2C, Nr, W): F_Y @ [x, x_hat]


class StepBuffers(NamedTuple):
    """Step t's views into the workspace: what its forward stores and its backward reads or overwrites.

    O is the width of the output layer on h_dec (``handwritten_layers.FusedWeights.output``).
    """

    eps: torch.Tensor  # (batch, Z): eps_t
    sigma_eps: torch.Tensor  # (batch, Z): sigma_t * eps_t = d z_t / d log sigma_t
    row: torch.Tensor  # (batch, R+E+D+Z): [r_t, h_enc_{t-1}, h_dec_{t-1}, z_t], the LSTMs' inputs
    read_next: torch.Tensor  # (batch, R): r_{t+1} (the start of the next row)
    gates_enc: torch.Tensor  # (batch, 4E): the encoder's gate activations, then their pre-activations' gradient
    cell_enc_prev: torch.Tensor  # (batch, E): c_enc_{t-1}
    cell_enc: torch.Tensor  # (batch, E): c_enc_t
    tanh_enc: torch.Tensor  # (batch, E): tanh(c_enc_t)
    latent: torch.Tensor  # (batch, 2Z): (mu_t, log sigma_t), then their gradient
    gates_dec: torch.Tensor  # (batch, 4D): as gates_enc, for the decoder
    cell_dec_prev: torch.Tensor  # (batch, D): c_dec_{t-1}
    cell_dec: torch.Tensor  # (batch, D): c_dec_t
    tanh_dec: torch.Tensor  # (batch, D): tanh(c_dec_t)
    out: torch.Tensor  # (batch, O): the output layer on h_dec_t
    d_out: torch.Tensor  # (batch, O): its gradient
    attention: AttentionBuffers  # the attention after h_dec_t


class Workspace:
    """The buffers of a pass of one size, each with a step axis, and every step's ``StepBuffers`` (built once).

    Index s of ``outs``, ``d_outs`` and ``attention`` belongs to h_dec_s (s = 0: the initial state,
    which only reads); ``rows`` has a row for r_{T+1} too, the inputs of the layers after the last step.
    """

    def __init__(self, sizes: Sizes, steps: int, out_size: int, like: torch.Tensor) -> None:
        def empty(*size: int) -> torch.Tensor:
            return torch.empty(size, device=like.device, dtype=like.dtype)

        batch, r, e, d, z = sizes.batch, sizes.read, sizes.enc, sizes.dec, sizes.z
        c, h, w = sizes.channels, sizes.height, sizes.width
        rows, kinds = sizes.write_rows.stop + sizes.read_n * sizes.read_attn, sizes.kinds
        self.eps, self.sigma_eps = empty(steps, batch, z), empty(steps, batch, z)
        self.rows = empty(steps + 1, batch, r + e + d + z)  # inputs of the LSTMs, see Sizes.columns
        self.gates_enc, self.gates_dec = empty(steps, batch, 4 * e), empty(steps, batch, 4 * d)
        self.cells_enc, self.cells_dec = empty(steps + 1, batch, e), empty(steps + 1, batch, d)  # c_0 .. c_T
        self.tanh_enc, self.tanh_dec = empty(steps, batch, e), empty(steps, batch, d)
        self.latent = empty(steps, batch, 2 * z)
        self.outs, self.d_outs = empty(steps + 1, batch, out_size), empty(steps + 1, batch, out_size)
        attention = AttentionBuffers(
            empty(steps + 1, batch, c, h, w), empty(steps + 1, batch, kinds, 5) if kinds else None,
            empty(steps + 1, batch, rows, w) if kinds else None, empty(steps + 1, batch, rows, h) if kinds else None,
            empty(steps + 1, batch, c, sizes.write_n, w) if sizes.write_attn else None,
            empty(steps + 1, batch, 2 * c, sizes.read_n, w) if sizes.read_attn else None)
        self.attention = [AttentionBuffers(*(None if b is None else b[s] for b in attention))
                          for s in range(steps + 1)]
        self.step_buffers = [
            StepBuffers(eps=self.eps[t], sigma_eps=self.sigma_eps[t], row=self.rows[t],
                        read_next=self.rows[t + 1, :, :r], gates_enc=self.gates_enc[t],
                        cell_enc_prev=self.cells_enc[t], cell_enc=self.cells_enc[t + 1], tanh_enc=self.tanh_enc[t],
                        latent=self.latent[t], gates_dec=self.gates_dec[t], cell_dec_prev=self.cells_dec[t],
                        cell_dec=self.cells_dec[t + 1], tanh_dec=self.tanh_dec[t], out=self.outs[t + 1],
                        d_out=self.d_outs[t + 1], attention=self.attention[t + 1])
            for t in range(steps)]


class WorkspaceCache:
    """One kept workspace, lent to one pass at a time.

    A pass that finds it lent (another thread training at the same moment) gets buffers of its
    own for that call. Not ``threading.local``: freeing a thread's locals while Qt's binding
    deletes the thread state of a finished QThread crashed the process (PySide6 6.12, Python 3.11).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key = None
        self._workspace: Workspace | None = None

    @contextlib.contextmanager
    def lend(self, sizes: Sizes, steps: int, out_size: int, like: torch.Tensor):
        """Yield a workspace for a pass of these sizes on ``like``'s device and dtype."""
        key = (sizes, steps, out_size, like.device, like.dtype)
        if not self._lock.acquire(blocking=False):
            yield Workspace(sizes, steps, out_size, like)
            return
        try:
            if self._key != key:
                self._workspace = None  # free the old buffers first
                self._workspace, self._key = Workspace(sizes, steps, out_size, like), key
            yield self._workspace
        finally:
            self._lock.release()

    def clear(self) -> None:
        """Free the kept buffers (unless a pass is using them; it keeps them until the next clear)."""
        if self._lock.acquire(blocking=False):
            self._workspace, self._key = None, None
            self._lock.release()
