"""A portrait photograph of an identity: the content of prints, screens and masks."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sdk.sim.expression import NEUTRAL, Expression
from sdk.sim.identity import Identity, srgb_to_linear
from sdk.sim.person import PersonRig
from sdk.sim.render import View, compose, empty_layer, shade, splat
from sdk.sim.scene import random_lighting, random_motion, skin_luminance
from sdk.sim.sensor import _gamma_lut

PHOTO_W, PHOTO_H = 360, 450


@dataclass
class Photo:
    image: np.ndarray  # (H, W, 3) uint8 sRGB
    contour_px: np.ndarray  # (K, 2) photo pixels of the face-box contour points
    landmarks_px: dict[str, np.ndarray]  # name -> (2,) photo pixels
    interocular_px: float
    person_mask: np.ndarray  # (H, W) bool: the photographed person (head, neck, shoulders)
    # The photographed person's expression (the shot catches t = 0 of it) and, for a video of a
    # talking person, the same shot with the jaw dropped to a few levels: ((drop m, image), ...).
    expression: Expression = NEUTRAL
    talking_images: tuple[tuple[float, np.ndarray], ...] = ()


def render_photo(idn: Identity, rng: np.random.Generator, talking_levels: int = 0) -> Photo:
    """A portrait of ``idn``; ``talking_levels`` > 0 also renders that many mouth openings of the
    same shot when the person talks (a replayed video). No extra draws from ``rng``."""
    fx = 640.0 * rng.uniform(0.9, 1.15)
    view = View(fx, fx, PHOTO_W / 2.0, PHOTO_H / 2.0, PHOTO_W, PHOTO_H)
    motion = random_motion(rng, (0.6, 0.6), max_yaw=12.0, max_pitch=8.0, max_roll=6.0, still=0.0, blinks=False,
                           centre_spread=0.0)
    motion = type(motion)(**{**motion.__dict__, "centre_px": (PHOTO_W / 2.0 + rng.normal(0, 6), PHOTO_H * 0.45 + rng.normal(0, 6))})
    rig = PersonRig(idn, motion, view, rng, min_distance=0.6, density_px=1.0)
    pose = rig.pose(0.0)
    light, _ = random_lighting(rng, skin_luminance(idn))
    backdrop = srgb_to_linear(rng.uniform(0.15, 0.9) * np.clip(rng.normal(1, 0.15, 3), 0.5, 1.4)).astype(np.float32)

    def shoot(drop: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        layers = [l for l in rig.body_layers(pose, view) + [splat(rig.head_points(pose, drop=drop), view)] if l is not None]
        surf = compose(empty_layer(view.shape), layers)
        colour, _, _ = shade(surf, light)
        empty = ~np.isfinite(surf.z)
        colour[empty] = backdrop * float(np.clip(light.exposure, 0.6, 3.0)) * 0.6
        colour = cv2.GaussianBlur(colour, (0, 0), 0.7)
        return _gamma_lut()[np.clip(colour * 4095 + 0.5, 0, 4095).astype(np.int32)], ~empty

    image, person = shoot()
    talking = ()
    if talking_levels > 0 and rig.expression.talking and rig.head.cavity is not None:
        drops = np.linspace(0.0, max(rig.expression.syllable_drop), int(talking_levels))
        talking = tuple((float(d), shoot(float(d))[0]) for d in drops)
    contour = view.project(rig.contour_camera(pose))
    lms = {k: view.project(v[None, :])[0] for k, v in rig.landmark_camera(pose).items()}
    iod = float(np.linalg.norm(lms["eye_l"] - lms["eye_r"]))
    return Photo(image, contour, lms, iod, person, rig.expression, talking)
