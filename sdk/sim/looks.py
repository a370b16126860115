"""Age, make-up and hair style of an identity, drawn from their own seeded stream.

They are drawn per identity (live people, attackers and the people shown by prints, screens and
masks alike) from ``make_rng("looks", blotch_seed)``, so adding them changed no other draw of an
existing identity. ``face.py`` paints and shapes them; the physics they follow:

- **Age**: wrinkles (forehead lines, crow's feet, nasolabial folds) are shallow creases: they darken
  colour (the room light grazes them) more than NIR (the SR300's emitter sits beside the lens, so it
  casts almost no shadow into a crease); the face sags (jowls, a less tapered jaw); age spots are
  melanin, which absorbs visible light far more than NIR (they hardly show in IR); grey hair
  returns more NIR than dark hair (more coded-light depth on the scalp).
- **Make-up**: foundation, lipstick and eye make-up change the colour albedo; most cosmetic
  pigments (iron oxides, organic lakes, TiO2 in thin layers) are nearly transparent in NIR, so the
  IR image hardly changes (eyeliner a little: some use carbon black).
- **Fringes and hair over the cheeks**: hair hangs over the forehead / outer cheeks; dark hair
  returns little NIR, so coded-light depth has holes there (the sensor's existing hair rule).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Ages drawn uniformly (adult users of a liveness check).
AGE_RANGE = (18.0, 78.0)
#: Share of people wearing make-up, by sex, and of each product among them.
MAKEUP_RATE = {"female": 0.5, "male": 0.04}
FOUNDATION_SHARE, LIPSTICK_SHARE, EYE_MAKEUP_SHARE = 0.8, 0.6, 0.7
#: Share of people with a fringe (bangs) over the forehead, by sex (never the bald).
FRINGE_RATE = {"female": 0.35, "male": 0.15}
#: Share of long-haired people whose hair falls over the outer cheeks.
HAIR_OVER_CHEEKS_SHARE = 0.4

#: Lipstick shades (sRGB): reds, berry, pink, coral, brown, nude.
_LIPSTICK = np.array([[0.70, 0.08, 0.12], [0.50, 0.05, 0.15], [0.45, 0.12, 0.25], [0.85, 0.40, 0.50],
                      [0.90, 0.42, 0.32], [0.45, 0.22, 0.16], [0.75, 0.50, 0.42]])
#: Eye shadow shades (sRGB): browns, greys, plum, gold, blue-grey.
_SHADOW = np.array([[0.40, 0.28, 0.20], [0.30, 0.30, 0.32], [0.35, 0.20, 0.30], [0.70, 0.55, 0.30], [0.35, 0.40, 0.50]])


@dataclass(frozen=True)
class Looks:
    """What age, make-up and hair style add to a face; the default is a young, bare face."""

    male: bool = False
    age: float = 25.0
    wrinkles: float = 0.0  # 0..1 depth / darkness of creases
    sag: float = 0.0  # 0..1 jowls, flatter jaw taper, eye bags
    spots: int = 0  # number of age spots (lentigines)
    grey: float = 0.0  # 0..1 share of grey hair
    foundation: float = 0.0  # 0..1 coverage (evens and tints the skin colour)
    foundation_tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # multiplies the skin albedo where it covers
    lipstick: float = 0.0  # 0..1 opacity
    lipstick_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)  # linear
    eye_makeup: float = 0.0  # 0..1 (eyeliner, mascara, shadow)
    shadow_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)  # linear
    fringe: bool = False
    fringe_bottom: float = 0.0  # metres above the eye line where the fringe ends
    fringe_half_width: float = 0.0  # metres
    hair_over_cheeks: float = 0.0  # 0 none; > 0: longitude (rad) where long hair starts covering the face
    seed: int = 0  # texture seed (wrinkle phases, spot places, fringe strands)

    @property
    def makeup(self) -> bool:
        return self.foundation > 0 or self.lipstick > 0 or self.eye_makeup > 0


def _linear(srgb: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(v) for v in np.power(np.clip(srgb, 0.0, 1.0), 2.2))


def draw_looks(rng: np.random.Generator, male: bool, bald: bool, long_hair: bool) -> Looks:
    """One identity's looks. Every value comes from ``rng`` in a fixed order (deterministic)."""
    age = float(rng.uniform(*AGE_RANGE))
    u = rng.random(8)
    wrinkles = float(np.clip((age - 28.0) / 45.0, 0.0, 1.0) * rng.uniform(0.6, 1.2))
    sag = float(np.clip((age - 40.0) / 35.0, 0.0, 1.0) * rng.uniform(0.5, 1.1))
    spots = int(rng.poisson(6.0 * np.clip((age - 45.0) / 25.0, 0.0, 1.0)))
    grey = float(np.clip((age - 38.0) / 30.0, 0.0, 1.0) * rng.uniform(0.3, 1.0))
    sex = "male" if male else "female"
    foundation = lipstick = eye = 0.0
    tint = (1.0, 1.0, 1.0)
    lip_rgb = shadow = (0.0, 0.0, 0.0)
    tint_draw = rng.uniform(0.97, 1.08, 3) * np.array([1.02, 1.0, 0.97])
    lip_draw = _LIPSTICK[int(rng.integers(len(_LIPSTICK)))] * rng.uniform(0.85, 1.1)
    shadow_draw = _SHADOW[int(rng.integers(len(_SHADOW)))] * rng.uniform(0.8, 1.1)
    amounts = rng.uniform(0.3, 0.9, 3)
    if u[0] < MAKEUP_RATE[sex]:
        if u[1] < FOUNDATION_SHARE:
            foundation, tint = float(amounts[0]), tuple(float(v) for v in tint_draw)
        if u[2] < LIPSTICK_SHARE:
            lipstick, lip_rgb = float(amounts[1] + 0.1), _linear(lip_draw)
        if u[3] < EYE_MAKEUP_SHARE:
            eye, shadow = float(amounts[2]), _linear(shadow_draw)
    fringe = bool(not bald and u[4] < FRINGE_RATE[sex])
    fringe_bottom = float(rng.uniform(0.024, 0.05))
    fringe_half = float(rng.uniform(0.03, 0.065))
    cheeks = float(rng.uniform(0.42, 0.7)) if (long_hair and not bald and u[5] < HAIR_OVER_CHEEKS_SHARE) else 0.0
    return Looks(male=bool(male), age=age, wrinkles=wrinkles, sag=sag, spots=spots, grey=grey, foundation=foundation,
                 foundation_tint=tint, lipstick=lipstick, lipstick_rgb=lip_rgb, eye_makeup=eye, shadow_rgb=shadow,
                 fringe=fringe, fringe_bottom=fringe_bottom if fringe else 0.0,
                 fringe_half_width=fringe_half if fringe else 0.0, hair_over_cheeks=cheeks,
                 seed=int(rng.integers(2**31)))


#: sRGB of fully grey / white hair and its NIR albedo range (unpigmented hair scatters NIR well).
GREY_HAIR_SRGB = np.array([0.68, 0.67, 0.66])
GREY_HAIR_IR = 0.6


def greyed_hair(hair_rgb: tuple[float, float, float], hair_ir: float, grey: float) -> tuple[tuple[float, float, float], float]:
    """Hair albedo (linear RGB, NIR) with a share ``grey`` of grey hairs mixed in."""
    g = float(np.clip(grey, 0.0, 1.0))
    rgb = np.asarray(hair_rgb) * (1.0 - g) + np.power(GREY_HAIR_SRGB, 2.2) * g
    return tuple(float(v) for v in rgb), float(hair_ir * (1.0 - g) + GREY_HAIR_IR * g)
