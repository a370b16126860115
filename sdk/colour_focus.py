"""Colour sharpness as a camera setting, not a liveness cue: blur and unsharp masking of a crop.

A real colour camera's picture is softer or crisper for reasons that have nothing to do with
what stands in front of it: focus, lens, motion, and above all the image processor's sharpening,
which differs between firmware versions, resolutions and settings. A liveness model must not
read "crisp colour" as an attack or "soft colour" as a live face. Measured (diagnosis only,
`tools/probe_independent.py`, docs/independent_renderer.md): the shipped 2.2.0 drops live faces
of the independent renderer from 0.95-0.99 to 0.17-0.79 when their colour crop is unsharp-masked
(sigma 1.5, amount 1) and lifts a rejected one from 0.18 to 0.85 when it is blurred (sigma 2).

One function serves the training augmentation (training.data.augment) and the counterfactual
check (calibration.counterfactual), so what is trained is what is checked.

Black pixels where ``rs.align`` found no depth (all three channels 0) are holes of the aligned
picture, not part of the scene the camera saw: they stay black and do not bleed into their
neighbours (the camera sharpened its picture before the alignment punched them).
"""
from __future__ import annotations

import cv2
import numpy as np

from sdk.errors import InputValidationError
from sdk.validate import check_array

#: amount = -1 is a plain Gaussian blur; 0 leaves the crop as it is; > 0 sharpens.
MIN_AMOUNT = -1.0


def refocus(rgb: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """``rgb + amount * (rgb - blur_sigma(rgb))`` on the picture's valid pixels, clipped to 8 bits.

    amount in [-1, 0) softens (-1: a Gaussian blur of ``sigma`` pixels), amount > 0 is unsharp
    masking (a camera's sharpening). Holes (pixels black in all three channels) stay black.
    """
    check_array("rgb crop", rgb, shape=(None, None, 3), dtype=np.uint8)
    if not (np.isfinite(sigma) and sigma > 0):
        raise InputValidationError(f"sigma must be a positive number of pixels, got {sigma}")
    if not (np.isfinite(amount) and amount >= MIN_AMOUNT):
        raise InputValidationError(f"amount must be >= {MIN_AMOUNT}, got {amount}")
    if amount == 0.0:
        return rgb.copy()
    valid = rgb.any(axis=2)
    weight = valid.astype(np.float32)
    x = rgb.astype(np.float32)
    # Normalised blur: the mean of the valid neighbours only, so holes do not darken their rims.
    numerator = cv2.GaussianBlur(x * weight[..., None], (0, 0), float(sigma))
    denominator = cv2.GaussianBlur(weight, (0, 0), float(sigma))
    soft = numerator / np.maximum(denominator, np.float32(1e-6))[..., None]
    out = np.clip(np.round(x + np.float32(amount) * (x - soft)), 0, 255).astype(np.uint8)
    out[~valid] = 0
    return out
