"""Facial expressions: a smile (static per session) and the mouth opening over time.

An expression deforms the head mesh the renderer already uses (``face.py`` for the smile,
``person.py`` for the jaw drop each frame), so colour, IR and depth change together: an open
mouth shows a recessed, dark cavity (and teeth) between the lips, deeper in depth and darker in
colour and NIR.

Every face draws its expression per session from its own stream (``PersonRig`` keys it by the
identity and the session's motion): live people, attackers, and the people in the photographs
that prints, screens and masks show (a photo catches one instant: a smile, an open mouth, a
syllable). The rates are the same for every class.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Share of sessions with a smile, a static open mouth, talking (the last two exclusive).
SMILE_RATE = 0.3
OPEN_MOUTH_RATE = 0.1
TALKING_RATE = 0.25
#: Jaw drop (metres, lower lip down) of a static open mouth, and the peaks of syllables.
OPEN_MOUTH_DROP = (0.008, 0.022)
SYLLABLE_DROP = (0.003, 0.014)
#: Syllables per second while talking: each lasts a few frames at 30 fps (0.15-0.3 s).
SYLLABLE_RATE = (3.5, 6.5)
_SCHEDULE_S = 120.0


@dataclass(frozen=True)
class Expression:
    """Smile 0..1 and the jaw drop in metres as a function of time; default neutral."""

    smile: float = 0.0
    open_drop: float = 0.0  # static open mouth (metres); 0 = closed
    syllable_start: tuple[float, ...] = ()  # talking: syllable onsets (s) ...
    syllable_len: tuple[float, ...] = ()  # ... durations (s) ...
    syllable_drop: tuple[float, ...] = ()  # ... and peak jaw drops (m)

    @property
    def talking(self) -> bool:
        return bool(self.syllable_start)

    @property
    def max_drop(self) -> float:
        return max([self.open_drop, *self.syllable_drop]) if (self.open_drop or self.syllable_drop) else 0.0

    def mouth_open(self, t: float) -> float:
        """Jaw drop (metres) at time t seconds: the static opening or the current syllable's."""
        drop = self.open_drop
        if self.syllable_start:
            starts = np.asarray(self.syllable_start)
            k = int(np.searchsorted(starts, t, side="right")) - 1
            if k >= 0:
                phase = (t - starts[k]) / self.syllable_len[k]
                if 0.0 <= phase < 1.0:
                    drop = max(drop, float(self.syllable_drop[k] * np.sin(np.pi * phase) ** 2))
        return float(drop)


NEUTRAL = Expression()


def draw_expression(rng: np.random.Generator) -> Expression:
    """One session's expression; every value comes from ``rng`` in a fixed order."""
    u = rng.random(2)
    smile = float(rng.uniform(0.3, 1.0)) if u[0] < SMILE_RATE else 0.0
    open_drop = float(rng.uniform(*OPEN_MOUTH_DROP))
    if u[1] < OPEN_MOUTH_RATE:
        return Expression(smile=smile, open_drop=open_drop)
    if u[1] >= OPEN_MOUTH_RATE + TALKING_RATE:
        return Expression(smile=smile)
    # Talking: phrases of syllables separated by pauses (breaths, listening).
    rate = float(rng.uniform(*SYLLABLE_RATE))
    starts, lens, drops = [], [], []
    t = float(rng.uniform(-1.0, 0.5))
    while t < _SCHEDULE_S:
        phrase_end = t + float(rng.uniform(0.8, 3.0))
        while t < phrase_end:
            length = float(rng.uniform(0.75, 1.25)) / rate
            starts.append(t)
            lens.append(length)
            drops.append(float(rng.uniform(*SYLLABLE_DROP)))
            t += length
        t += float(rng.uniform(0.25, 1.2))
    return Expression(smile=smile, syllable_start=tuple(starts), syllable_len=tuple(lens), syllable_drop=tuple(drops))
