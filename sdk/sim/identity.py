"""A random person: face shape, skin, eyes, hair and glasses, drawn from one seeded stream."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sdk.sim.looks import Looks, draw_looks, greyed_hair
from sdk.sim.rng import make_rng

#: sRGB skin tones spanning the human range (Fitzpatrick I to VI); identities interpolate.
_SKIN_TONES = np.array(
    [
        [0.96, 0.80, 0.70],
        [0.91, 0.72, 0.60],
        [0.84, 0.63, 0.50],
        [0.74, 0.52, 0.38],
        [0.60, 0.40, 0.27],
        [0.45, 0.29, 0.19],
        [0.32, 0.20, 0.13],
        [0.23, 0.15, 0.10],
    ]
)
_HAIR = np.array(
    [[0.07, 0.05, 0.04], [0.20, 0.13, 0.08], [0.40, 0.27, 0.15], [0.70, 0.55, 0.35], [0.55, 0.25, 0.10], [0.6, 0.6, 0.6]]
)
#: Spectacle frames: black, dark brown, tortoiseshell, grey metal, gold metal.
_FRAMES = np.array([[0.05, 0.05, 0.05], [0.18, 0.10, 0.06], [0.35, 0.22, 0.12], [0.55, 0.55, 0.57], [0.7, 0.6, 0.35]])
_IRIS = np.array([[0.25, 0.14, 0.07], [0.12, 0.07, 0.04], [0.30, 0.42, 0.55], [0.30, 0.40, 0.25], [0.42, 0.30, 0.15]])


#: NIR albedo range per hair colour index (black, dark brown, brown, fair/red/grey).
_HAIR_IR = ((0.06, 0.18), (0.12, 0.28), (0.25, 0.4), (0.45, 0.7))


def srgb_to_linear(c: np.ndarray | float) -> np.ndarray:
    return np.power(np.asarray(c, dtype=np.float64), 2.2)


@dataclass(frozen=True)
class Identity:
    # head ellipsoid half-axes (m) and jaw taper
    half_width: float
    half_height: float
    half_depth: float
    jaw_taper: float
    # facial features (m)
    eye_y: float
    eye_half_sep: float
    eye_width: float
    eye_open: float
    nose_protrusion: float
    nose_width: float
    socket_depth: float
    mouth_y: float
    mouth_width: float
    lip_thickness: float
    brow_thickness: float
    chin_bulge: float
    # appearance (linear RGB albedo)
    skin_tone: float  # 0 = lightest .. 1 = darkest
    skin_rgb: tuple[float, float, float]
    lip_rgb: tuple[float, float, float]
    hair_rgb: tuple[float, float, float]
    iris_rgb: tuple[float, float, float]
    brow_rgb: tuple[float, float, float]
    skin_ir: float  # NIR albedo of skin (high for every tone)
    hair_ir: float
    hairline_y: float
    hair_volume: float
    bald: bool
    glasses: bool
    glasses_rgb: tuple[float, float, float]
    ear_size: float
    beard: float  # 0 none .. 1 full stubble/beard darkness
    blotch_seed: int
    long_hair: bool = False  # hair down beside the face to the jaw (hides the ears)
    hat: bool = False  # a knitted hat / cap over the scalp (set per session by the rig)
    hat_rgb: tuple[float, float, float] = (0.1, 0.1, 0.1)
    hat_ir: float = 0.3
    looks: Looks = Looks()  # age, make-up, fringe (sdk/sim/looks.py)

    @property
    def interocular_m(self) -> float:
        return 2.0 * self.eye_half_sep


def random_identity(rng: np.random.Generator) -> Identity:
    tone = float(rng.uniform(0.0, 1.0))
    pos = tone * (len(_SKIN_TONES) - 1)
    i = min(int(pos), len(_SKIN_TONES) - 2)
    skin_srgb = _SKIN_TONES[i] * (1 - (pos - i)) + _SKIN_TONES[i + 1] * (pos - i)
    skin_srgb = np.clip(skin_srgb * rng.uniform(0.94, 1.06, 3) * rng.uniform(0.95, 1.05), 0.05, 1.0)
    skin = srgb_to_linear(skin_srgb)
    lip = skin * np.array([1.0, 0.42, 0.45]) * rng.uniform(0.4, 0.6)
    hair_i = int(rng.choice(len(_HAIR), p=[0.38, 0.25, 0.15, 0.1, 0.07, 0.05]))
    hair = srgb_to_linear(np.clip(_HAIR[hair_i] * rng.uniform(0.8, 1.2), 0.02, 0.9))
    iris = srgb_to_linear(np.clip(_IRIS[int(rng.integers(len(_IRIS)))] * rng.uniform(0.7, 1.05), 0.02, 0.9))
    brow = np.minimum(hair, skin * 0.25) * 0.75 + 0.003
    male = rng.random() < 0.5
    idn = Identity(
        half_width=float(rng.uniform(0.074, 0.084)),
        half_height=float(rng.uniform(0.108, 0.122)),
        half_depth=float(rng.uniform(0.092, 0.104)),
        jaw_taper=float(rng.uniform(0.1, 0.22)),
        eye_y=float(rng.uniform(0.01, 0.018)),
        eye_half_sep=float(rng.uniform(0.029, 0.034)),
        eye_width=float(rng.uniform(0.014, 0.016)),
        eye_open=float(rng.uniform(0.005, 0.0065)),
        nose_protrusion=float(rng.uniform(0.013, 0.022)),
        nose_width=float(rng.uniform(0.0145, 0.02)),
        socket_depth=float(rng.uniform(0.006, 0.011)),
        mouth_y=float(rng.uniform(-0.056, -0.047)),
        mouth_width=float(rng.uniform(0.021, 0.027)),
        lip_thickness=float(rng.uniform(0.0035, 0.0065)),
        brow_thickness=float(rng.uniform(0.005, 0.008)),
        chin_bulge=float(rng.uniform(0.004, 0.01)),
        skin_tone=tone,
        skin_rgb=tuple(float(v) for v in skin),
        lip_rgb=tuple(float(v) for v in lip),
        hair_rgb=tuple(float(v) for v in hair),
        iris_rgb=tuple(float(v) for v in iris),
        brow_rgb=tuple(float(v) for v in brow),
        skin_ir=float(rng.uniform(0.72, 0.86) - 0.08 * tone),
        # Black and dark-brown hair return little NIR (coded-light depth fails there); fair hair a lot.
        hair_ir=float(rng.uniform(*_HAIR_IR[min(hair_i, 3)])),
        hairline_y=float(rng.uniform(0.062, 0.08)),
        hair_volume=float(rng.uniform(0.004, 0.02)),
        bald=bool(rng.random() < (0.12 if male else 0.01)),
        glasses=bool(rng.random() < 0.2),
        glasses_rgb=tuple(float(v) for v in srgb_to_linear(_FRAMES[int(rng.integers(len(_FRAMES)))] * rng.uniform(0.8, 1.2))),
        ear_size=float(rng.uniform(0.012, 0.02)),
        beard=float(rng.uniform(0.0, 0.8)) if (male and rng.random() < 0.3) else 0.0,
        blotch_seed=int(rng.integers(2**31)),
        long_hair=bool(rng.random() < (0.08 if male else 0.55)),
    )
    # Age, make-up and hair style come from their own stream (keyed by this identity's texture
    # seed), so every draw above is what it was before they existed.
    looks = draw_looks(make_rng("looks", idn.blotch_seed), male, idn.bald, idn.long_hair)
    hair_rgb, hair_ir = greyed_hair(idn.hair_rgb, idn.hair_ir, looks.grey)
    brow_hair, _ = greyed_hair(idn.hair_rgb, idn.hair_ir, looks.grey * 0.5)  # brows grey later
    brow = np.minimum(np.asarray(brow_hair), skin * 0.25) * 0.75 + 0.003
    return replace(idn, looks=looks, hair_rgb=hair_rgb, hair_ir=hair_ir, brow_rgb=tuple(float(v) for v in brow))


#: Appearance constraints: None (as drawn), "plain" (no glasses, no beard) or
#: "glasses_or_beard" (at least one of them). Held-out families use them.
APPEARANCES = (None, "plain", "glasses_or_beard")


def apply_appearance(idn: Identity, appearance: str | None, rng: np.random.Generator) -> Identity:
    """The identity with its glasses and beard constrained; everything else unchanged."""
    if appearance is None:
        return idn
    if appearance == "plain":
        return replace(idn, glasses=False, beard=0.0)
    if appearance == "glasses_or_beard":
        if idn.glasses or idn.beard > 0:
            return idn
        if rng.random() < 0.6:
            return replace(idn, glasses=True)
        return replace(idn, beard=float(rng.uniform(0.3, 0.8)))
    raise ValueError(f"appearance must be one of {APPEARANCES}, got {appearance!r}")
