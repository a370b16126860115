"""Deterministic random streams: every draw comes from a Generator seeded by names and numbers.

Never the global numpy RNG: the same (scenario, seed, frame index) must give the same pixels in
any process, in any call order.
"""
from __future__ import annotations

import zlib

import numpy as np


def _word(part: object) -> int:
    if isinstance(part, (int, np.integer)):
        return int(part) & 0xFFFFFFFF
    return zlib.crc32(str(part).encode("utf-8"))


def make_rng(*parts: object) -> np.random.Generator:
    """A Generator seeded from the given parts (strings are hashed with CRC32, stable across runs)."""
    words = []
    for part in parts:
        if isinstance(part, (int, np.integer)):
            value = int(part)
            words.extend([value & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF])
        else:
            words.append(_word(part))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))
