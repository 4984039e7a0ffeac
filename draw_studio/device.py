"""Choosing the compute device."""

from __future__ import annotations

import torch

from .errors import DrawStudioError


def resolve_device(name: str = "auto") -> torch.device:
    """Return the device for ``name``: ``auto`` picks CUDA, then Apple MPS, then CPU.

    Raises
    ------
    DrawStudioError
        If an explicitly requested device is not available here.
    """
    name = (name or "auto").lower()
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DrawStudioError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DrawStudioError(f"device {name!r} was asked for but this PyTorch sees no CUDA GPU; use --device cpu")
    if device.type == "mps" and not mps_ok:
        raise DrawStudioError(f"device {name!r} was asked for but Apple MPS is not available; use --device cpu")
    return device


def make_generator(device: torch.device, seed: int) -> torch.Generator:
    """A random generator on ``device`` seeded with ``seed`` (kept in int64 range)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed) % (2 ** 63))
    return generator


def mix_seed(*parts: int) -> int:
    """Combine integers into one 63-bit seed (splitmix-style), stable across runs and platforms."""
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value = (value ^ (int(part) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        value ^= value >> 31
    return value & 0x7FFFFFFFFFFFFFFF
