"""Reproducible randomness: every random draw of DRAW Studio comes from a generator seeded here.

Training seeds each draw of step s from ``mix_seed(seed, s, purpose)``, so a resumed run takes the
same steps as an uninterrupted one.
"""

from __future__ import annotations

import torch


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
