"""Depth holes as the device sees them in all its crops: no depth AND black colour.

The device's colour reaches the model through ``rs.align(rs.stream.depth)``, which leaves colour
black wherever depth has no value (sdk.capture.frames). An SR300 loses depth where too little of
its coded NIR light comes back: far faces, dark hair and brows, grazing skin, sunlight. So a live
face at 0.7 m shows black speckles in its colour crop exactly where its depth has holes, just as
a print or a screen does. A model that reads "black speckles in colour" as an attack rejects
those faces (measured: 10 % such holes take the shipped 2.2.0 from 0.99 to 0.01 on live faces of
the independent renderer; docs/independent_renderer.md).

One function makes these holes for both the training augmentation (training.data.augment) and
the counterfactual check (calibration.counterfactual), so what is trained is what is checked.
"""
from __future__ import annotations

import cv2
import numpy as np

from sdk.errors import InputValidationError
from sdk.validate import check_array


def low_return_hole_mask(ir: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """About ``fraction`` of the pixels as holes, most where the NIR return is weak (dark IR).

    The chance of a hole grows with (1 - IR/255)^2 (weak return) over a floor, modulated by a
    smooth random field so that holes come in patches as well as single pixels.
    """
    check_array("ir crop", ir, shape=(None, None), dtype=np.uint8)
    if not 0.0 <= fraction <= 1.0:
        raise InputValidationError(f"fraction must lie in [0, 1], got {fraction}")
    if fraction == 0.0:
        return np.zeros(ir.shape, bool)
    weak = (1.0 - ir.astype(np.float32) / 255.0) ** 2
    field = cv2.GaussianBlur(rng.random(ir.shape, dtype=np.float32), (0, 0), max(ir.shape) / 16.0)
    field = (field - field.min()) / max(float(field.max() - field.min()), 1e-6)
    weight = (0.2 + weak) * (0.25 + 1.5 * field)
    chance = np.clip(fraction * weight / float(weight.mean()), 0.0, 1.0)
    return rng.random(ir.shape, dtype=np.float32) < chance


def punch_holes(rgb: np.ndarray, depth: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rgb, depth) with depth 0 and colour black at ``hole``, as rs.align leaves them."""
    check_array("rgb crop", rgb, shape=(None, None, 3), dtype=np.uint8)
    check_array("depth crop", depth, shape=rgb.shape[:2], dtype=np.uint8)
    check_array("hole mask", hole, shape=rgb.shape[:2], dtype=bool)
    rgb_out = rgb.copy()
    depth_out = depth.copy()
    rgb_out[hole] = 0
    depth_out[hole] = 0
    return rgb_out, depth_out
