"""Will it fit? Memory estimates of DRAW's work from the model's sizes, checked before allocating.

A request that would need more memory than the machine has available (``sample
-n 100000000``, a huge ``--batch-size``, a folder of giant pictures) is refused
up front with the estimate, instead of swapping the machine to a halt or
dying with ``MemoryError`` half-way. The estimates count the float32 tensors
DRAW keeps alive at once (on the CPU they came within a factor of 0.8 to 2 of
the measured peak for the presets); they are meant to catch requests that are off by orders of
magnitude, not to squeeze the last gigabyte.

Available memory is read without extra dependencies: ``MemAvailable`` of
``/proc/meminfo`` on Linux, else ``os.sysconf`` (free pages), else unknown
(no check). For a CUDA device it is the free memory CUDA reports.
"""

from __future__ import annotations

import os

from .config import ModelConfig
from .errors import DrawStudioError

FLOAT = 4  # bytes of one float32


def available_memory(device=None) -> int | None:
    """Bytes of memory available now on ``device`` (a torch.device or name; default the host), or None."""
    kind = getattr(device, "type", str(device or "cpu")).split(":")[0]
    if kind == "cuda":
        try:
            import torch

            return int(torch.cuda.mem_get_info(device)[0])
        except Exception:  # noqa: BLE001 - no usable CUDA: let the operation itself report it
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def gigabytes(size: float) -> str:
    """``1.5e9`` -> ``'1.5 GB'`` (two significant figures below 10 GB)."""
    gb = size / 1e9
    return f"{gb:.2g} GB" if gb < 10 else f"{gb:,.0f} GB"


def check_fits(needed: float, what: str, fix: str, device=None) -> None:
    """Raise DrawStudioError if ``needed`` bytes exceed the memory available on ``device``.

    Parameters
    ----------
    needed : float
        Estimated bytes.
    what : str
        The work, e.g. ``"64 samples"``; the message reads "WHAT would need ~X GB".
    fix : str
        What to do instead, e.g. ``"use a smaller -n"``.
    """
    available = available_memory(device)
    if available is not None and needed > available:
        where = "this GPU" if getattr(device, "type", str(device or "")).startswith("cuda") else "this machine"
        raise DrawStudioError(f"{what} would need ~{gigabytes(needed)} of memory, {where} has "
                              f"{gigabytes(available)} available; {fix}")


def _step_floats(config: ModelConfig) -> int:
    """Floats one image holds alive during one glimpse: images, canvas, filterbanks, LSTM gates."""
    c, h, w = config.channels, config.height, config.width
    filters = 2 * (config.read_n + config.write_n) * (h + w)
    read = 2 * c * (config.read_n ** 2 if config.read_attention else h * w)
    return 6 * c * h * w + filters + read + 10 * (config.enc_size + config.dec_size) + 4 * config.z_size


def forward_bytes(config: ModelConfig, images: int, training: bool = False) -> int:
    """Bytes to run ``images`` images through the T glimpses (reconstruction or generation).

    Without gradients one glimpse's tensors are freed before the next; with
    ``training`` autograd keeps every glimpse's tensors for the backward pass.
    """
    step = _step_floats(config)
    keep = config.steps * step if training else 3 * step // 2
    return FLOAT * images * (keep + 2 * config.steps * config.z_size)


def record_floats(config: ModelConfig) -> int:
    """Floats a trace keeps of one image: every canvas, glimpse, patch, window and latent."""
    c, t = config.channels, config.steps
    per_step = (c * config.height * config.width + 3 * config.z_size + 12
                + (2 * c * config.read_n ** 2 if config.read_attention else 0)
                + (c * config.write_n ** 2 if config.write_attention else 0))
    return (t + 1) * per_step + 2 * c * config.height * config.width


def record_bytes(config: ModelConfig, images: int) -> int:
    """Bytes to record every step of ``images`` images (the steps are stacked: about twice the trace)."""
    return forward_bytes(config, images) + 2 * FLOAT * images * record_floats(config)


def trace_bytes(config: ModelConfig, images: int) -> int:
    """Bytes of a trace of ``images`` images once read whole (the window and ``export`` read it so)."""
    return FLOAT * images * record_floats(config)


def grid_bytes(config: ModelConfig, images: int, scale: int, padding: int = 1, channels: int | None = None) -> int:
    """Bytes of a tiled, upscaled uint8 grid picture of ``images`` images (and its float and PNG copies)."""
    c = channels or config.channels
    pixels = images * (config.height + padding) * (config.width + padding)
    return pixels * c * (3 * scale * scale + 2 * FLOAT)
