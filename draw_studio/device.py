"""Choosing the compute device."""

from __future__ import annotations

import torch

from .errors import DrawStudioError

KINDS = ("cpu", "cuda", "mps")  # the device types DRAW Studio runs on


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def available_devices() -> list[str]:
    """Names of the devices this machine has: ``auto``, ``cpu``, ``cuda:N`` for each GPU, ``mps``."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return names


def resolve_device(name: str = "auto") -> torch.device:
    """Return the device for ``name``: ``auto`` picks CUDA, then Apple MPS, then CPU.

    Raises
    ------
    DrawStudioError
        If ``name`` is not a device DRAW Studio runs on (``meta``, ``xpu``,
        a typo) or is not present on this machine; the message lists the
        devices that are.
    """
    name = (name or "auto").strip().lower()
    here = f"this machine has {', '.join(available_devices())}"
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        device = None
    if device is None or device.type not in KINDS:
        raise DrawStudioError(f"unknown device {name!r}; {here}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DrawStudioError(f"device {name!r} was asked for but this PyTorch sees no CUDA GPU; {here}")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DrawStudioError(f"device {name!r} does not exist; {here}")
    if device.type == "mps" and not _mps_available():
        raise DrawStudioError(f"device {name!r} was asked for but Apple MPS is not available; {here}")
    if device.type in ("cpu", "mps") and device.index not in (None, 0):
        raise DrawStudioError(f"device {name!r} does not exist; {here}")
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
