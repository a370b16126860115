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

It also measures, on the metric depth frame, the relief a sheet cannot have
(``face_relief_mm``), for the session's relief gate (sdk.quality, ``min_relief_mm``).
"""
from __future__ import annotations

import cv2
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


# -- the relief a sheet cannot have ---------------------------------------------------------------
#
# Paper and screens bend, but they do not stretch: a print held flat, curled round a head or
# rolled is a developable surface, whose depth is a function of one direction across the sheet
# plus a tilt (a cylinder about any axis in the image plane, or a plane). A face is doubly curved
# (the nose stands out of the forehead-chin line AND of the cheek line), so no such surface
# explains its depth. `face_relief_mm` measures the depth that is left once the best bent sheet is
# subtracted: millimetres, from the metric depth frame, so it holds whatever a model learned.

#: Cells per side of the grid the face box's depth is averaged onto (noise and holes average out).
RELIEF_GRID = 16
#: Directions (degrees from the image's horizontal) across which the sheet bends, all of them:
#: curled round a vertical axis (0), a horizontal one (90) or anything between.
RELIEF_ANGLES_DEG: tuple[float, ...] = tuple(float(a) for a in np.arange(0.0, 180.0, 7.5))
#: Width of the bins of g(u), in cells: narrow enough that a steep, tilted bend is followed.
RELIEF_BIN_CELLS = 0.5
#: Pixels further than this from the face's median depth are background, hair or the hand and
#: body behind a held print, not face (a nose tip stands ~25-35 mm out of the median).
RELIEF_WINDOW_MM = 50.0
#: Central share of the face box (per axis) that is measured: the box's rim catches the edge of a
#: held print and what lies just behind it, the face's relief (nose, eyes, cheeks) lies inside.
RELIEF_INNER_BOX = 0.8
#: A cell counts when at least this share of its pixels is valid face depth.
RELIEF_CELL_VALID = 0.5
#: At least this share of the grid's cells must count, else the relief is not measured (nan).
RELIEF_MIN_CELLS = 0.5
#: The measure: this percentile of the absolute residual over the cells that count.
RELIEF_PERCENTILE = 90.0


def _sheet_residual_mm(z_mm: np.ndarray, valid: np.ndarray) -> float:
    """RELIEF_PERCENTILE of |residual| of the best fit z = g(u) + a*v over the bend directions (g
    free per RELIEF_BIN_CELLS bin of u, the coordinate across the bend; v along the bend's axis;
    best: the least sum of squares)."""
    n = z_mm.shape[0]
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) - (n - 1) / 2.0
    z = z_mm[valid].astype(np.float64)
    x, y = xx[valid], yy[valid]
    best_sse, best_residual = np.inf, np.zeros(1)
    for angle in np.deg2rad(RELIEF_ANGLES_DEG):
        u = x * np.cos(angle) + y * np.sin(angle)
        v = -x * np.sin(angle) + y * np.cos(angle)
        bins = np.floor(u / RELIEF_BIN_CELLS).astype(np.int64)  # floor: half-integer centres stay apart
        bins -= bins.min()
        # Least squares of z = g[bin] + a*v in closed form: a from the within-bin covariance,
        # then g the bin means of z - a*v.
        safe = np.maximum(np.bincount(bins), 1)
        v_dev = v - (np.bincount(bins, v) / safe)[bins]
        z_dev = z - (np.bincount(bins, z) / safe)[bins]
        spread = float(np.dot(v_dev, v_dev))
        slope = float(np.dot(v_dev, z_dev)) / spread if spread > 1e-9 else 0.0
        residual = z_dev - slope * v_dev
        sse = float(np.dot(residual, residual))
        if sse < best_sse:
            best_sse, best_residual = sse, residual
    return float(np.percentile(np.abs(best_residual), RELIEF_PERCENTILE))


def face_relief_mm(depth_raw: np.ndarray, depth_scale: float, box: tuple[float, float, float, float],
                   face_depth_m: float) -> float:
    """Depth relief of the face in ``box`` (x0, y0, x1, y1 on the depth grid) that no bent or flat
    sheet explains, in millimetres; nan when too little of the box has face depth.

    The central RELIEF_INNER_BOX of the box (holes and pixels beyond RELIEF_WINDOW_MM of
    ``face_depth_m`` left out) is averaged onto a RELIEF_GRID x RELIEF_GRID grid; the best
    developable fit over the bend directions is subtracted and the RELIEF_PERCENTILE of what is
    left is the answer. Simulator calibration frames (docs/decisions.md, candidate O): live faces
    median 8.4 mm, 1st percentile 5.0; prints (box on the print) median 1.3, 90th percentile 3.5,
    rising with distance as depth noise grows (below 0.45 m at most 1.1 mm, beyond 0.9 m up to 6).
    """
    check_array("depth frame", depth_raw, shape=(None, None), dtype=np.uint16)
    if not (np.isfinite(depth_scale) and depth_scale > 0):
        raise InputValidationError(f"depth_scale must be a positive number, got {depth_scale}")
    if not np.isfinite(face_depth_m):
        return float("nan")
    height, width = depth_raw.shape
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    half_w, half_h = (box[2] - box[0]) * RELIEF_INNER_BOX / 2.0, (box[3] - box[1]) * RELIEF_INNER_BOX / 2.0
    x0, y0 = max(0, int(round(cx - half_w))), max(0, int(round(cy - half_h)))
    x1, y1 = min(width, int(round(cx + half_w))), min(height, int(round(cy + half_h)))
    if x1 - x0 < RELIEF_GRID or y1 - y0 < RELIEF_GRID:
        return float("nan")
    window_mm = depth_raw[y0:y1, x0:x1].astype(np.float32) * np.float32(depth_scale * 1000.0)
    face = (depth_raw[y0:y1, x0:x1] > 0) & (np.abs(window_mm - np.float32(face_depth_m * 1000.0)) < RELIEF_WINDOW_MM)
    # Cell means of valid pixels: area-averaged sums over area-averaged counts.
    grid = (RELIEF_GRID, RELIEF_GRID)
    share = cv2.resize(face.astype(np.float32), grid, interpolation=cv2.INTER_AREA)
    total = cv2.resize(np.where(face, window_mm, np.float32(0.0)), grid, interpolation=cv2.INTER_AREA)
    cells = share >= RELIEF_CELL_VALID
    if np.count_nonzero(cells) < RELIEF_MIN_CELLS * cells.size:
        return float("nan")
    z_mm = np.where(cells, total / np.maximum(share, np.float32(1e-6)), np.float32(0.0))
    return _sheet_residual_mm(z_mm, cells)
