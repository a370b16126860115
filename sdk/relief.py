"""Depth crops without a face's relief: what a print cut to a head's outline shows the depth camera.

A live face has relief: its nose stands out of the forehead-chin line (median of 12 crops: 13 mm
on the simulator's live faces, 9 mm on the independent renderer's; their curved prints 0.0 and
0.3 mm; docs/decisions.md). A print, flat or bent round a vertical axis, has none along the
vertical; a model that still accepts a live crop once its depth is made relief-free is accepting
the colour and NIR, not the face's shape. Measured: the shipped 2.2.0 keeps 43 of 48 accepted
simulator live crops accepted with their depth flattened.

One module serves the training's relief negatives (training.data.casia, ``relief_negative``)
and the counterfactual check (calibration.counterfactual, ``flatten_relief``). Holes (0) stay
holes, so the head's outline and the sensor's dropouts are kept: only the relief goes.
"""
from __future__ import annotations

import numpy as np

from sdk.errors import InputValidationError
from sdk.preprocess import DEPTH_BACK_M, DEPTH_FRONT_M
from sdk.validate import check_array

#: Millimetres per grey level of the device's depth crop (the normalisation window over 255 levels).
MM_PER_LEVEL = (DEPTH_FRONT_M + DEPTH_BACK_M) * 1000.0 / 255.0
#: About how many millimetres of the scene one pixel of a 112-125 px face crop covers (the crop
#: spans 1.3 face boxes, ~200 mm, whatever the distance).
MM_PER_PIXEL = 1.7


def flatten_relief(depth: np.ndarray) -> np.ndarray:
    """Every valid pixel at the crop's median level: a sheet facing the camera, holes kept."""
    return bent_sheet(depth, None)


def bent_sheet(depth: np.ndarray, radius_mm: float | None, tilt: tuple[float, float] = (0.0, 0.0),
               mm_per_pixel: float = MM_PER_PIXEL) -> np.ndarray:
    """A sheet through the crop's median depth, bent round a vertical axis of ``radius_mm`` (None:
    flat) and tilted by ``tilt`` grey levels per pixel (x, y), on the crop's valid pixels only.

    The bend keeps the apex at the crop's centre column and lets the sides fall away, as a print
    held round a head does: a sheet's relief across, none along the vertical.
    """
    check_array("depth crop", depth, shape=(None, None), dtype=np.uint8)
    if radius_mm is not None and not (np.isfinite(radius_mm) and radius_mm > 0):
        raise InputValidationError(f"radius_mm must be a positive number or None, got {radius_mm}")
    valid = depth > 0
    if not valid.any():
        return depth.copy()
    h, w = depth.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    level = np.full((h, w), np.float32(np.median(depth[valid])))
    level += np.float32(tilt[0]) * (xx - w / 2.0) + np.float32(tilt[1]) * (yy - h / 2.0)
    if radius_mm is not None:
        x_mm = np.minimum(np.abs(xx - w / 2.0) * np.float32(mm_per_pixel), np.float32(radius_mm))
        sagitta_mm = radius_mm - np.sqrt(np.float32(radius_mm) ** 2 - x_mm ** 2)
        level -= sagitta_mm / np.float32(MM_PER_LEVEL)  # further away is darker
    return np.where(valid, np.clip(np.round(level), 1, 255), 0).astype(np.uint8)


def random_sheet(depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A relief-free version of ``depth``: flat or bent (radius 90-250 mm), slightly tilted."""
    radius = None if rng.random() < 0.4 else float(rng.uniform(90.0, 250.0))
    tilt = (float(rng.uniform(-0.15, 0.15)), float(rng.uniform(-0.15, 0.15)))
    return bent_sheet(depth, radius, tilt)
