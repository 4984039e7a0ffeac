"""Choosing the compute device, and waiting for it."""

from __future__ import annotations

import os

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

    Under torchrun (``LOCAL_RANK`` in the environment) ``auto`` picks ``cuda:LOCAL_RANK``, so that every
    process of a machine has its own GPU.

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
            local = os.environ.get("LOCAL_RANK", "").strip()
            if local.isdigit() and int(local) < torch.cuda.device_count():
                return torch.device("cuda", int(local))
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


def synchronize(device: torch.device | str) -> None:
    """Wait until ``device`` has finished the work queued on it (CUDA and MPS run asynchronously; a timing
    must wait for them). Nothing to wait for on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
