"""The shared preprocessing contract: FrameSet + face box -> the crops the model sees.

Training (dataset generation and the CASIA-SURF reader), calibration and the device all import
these functions; there is no second copy anywhere. Any change to what they compute must bump
PREPROCESS_VERSION, which model manifests record and the session checks.

Pipeline (Parkin & Grinchuk): square box with margin -> resize to 125 -> centre crop 112.
The 125x125 "region" stage is what a CASIA-format dataset stores on disk, so a reader that
resizes to 125 and centre-crops 112 reproduces the device crop exactly (up to JPEG).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import cv2
import numpy as np

from sdk.types import CROP_SIZE, REGION_SIZE, FaceBox, FaceCrops, FrameSet
from sdk.validate import check_array

PREPROCESS_VERSION = "sr300-mlfa-crops/1"

#: The square region is the larger side of the face box times this factor, centred on the box.
BOX_SCALE = 1.3
#: Depth normalisation window around the face's median depth, in metres: a point this far in
#: front of the median maps to 255, this far behind it (and anything further) to 0.
DEPTH_FRONT_M = 0.10
DEPTH_BACK_M = 0.10
#: Share of the box (centred) whose valid depth pixels give the face's median depth.
MEDIAN_WINDOW = 0.5


def square_region(box: FaceBox, scale: float = BOX_SCALE) -> tuple[int, int, int]:
    """Integer (x0, y0, side) of the square region around a face box (may leave the image)."""
    cx, cy = box.center
    side = max(1, int(round(max(box.width, box.height) * scale)))
    x0 = int(round(cx - side / 2.0))
    y0 = int(round(cy - side / 2.0))
    return x0, y0, side


def _cut(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """The square [y0:y0+side, x0:x0+side] of image, zero-padded where it leaves the image."""
    h, w = image.shape[:2]
    out = np.zeros((side, side) + image.shape[2:], dtype=image.dtype)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(w, x0 + side), min(h, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a square-ish image to size x size (area averaging down, bilinear up)."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image.copy()
    interpolation = cv2.INTER_AREA if min(h, w) > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def center_crop(image: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Centre size x size crop (offset rounded as torchvision's CenterCrop does)."""
    h, w = image.shape[:2]
    if h < size or w < size:
        raise ValueError(f"cannot centre-crop {size}x{size} from {h}x{w}")
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def face_median_depth_m(frames: FrameSet, box: FaceBox) -> tuple[float, float]:
    """(median depth in metres, valid fraction) over the central part of the face box."""
    cx, cy = box.center
    half_w = box.width * MEDIAN_WINDOW / 2.0
    half_h = box.height * MEDIAN_WINDOW / 2.0
    h, w = frames.shape
    x0, x1 = max(0, int(cx - half_w)), min(w, int(np.ceil(cx + half_w)))
    y0, y1 = max(0, int(cy - half_h)), min(h, int(np.ceil(cy + half_h)))
    window = frames.depth[y0:y1, x0:x1]
    if window.size == 0:
        return float("nan"), 0.0
    valid = window[window > 0]
    fraction = valid.size / window.size
    if valid.size == 0:
        return float("nan"), 0.0
    return float(np.median(valid)) * frames.depth_scale, float(fraction)


def normalize_depth(depth_raw: np.ndarray, depth_scale: float, face_depth_m: float) -> np.ndarray:
    """uint16 raw depth -> uint8: near is bright, the face median is mid-grey, holes are 0."""
    if not np.isfinite(face_depth_m):
        return np.zeros(depth_raw.shape, dtype=np.uint8)
    z = depth_raw.astype(np.float32) * np.float32(depth_scale)
    span = np.float32(DEPTH_FRONT_M + DEPTH_BACK_M)
    level = (np.float32(face_depth_m + DEPTH_BACK_M) - z) / span
    level = np.clip(level, 0.0, 1.0)
    level[depth_raw == 0] = 0.0
    return np.round(level * 255.0).astype(np.uint8)


def make_region_crops(frames: FrameSet, box: FaceBox, size: int = REGION_SIZE) -> FaceCrops:
    """Stage 1: the square face region of all three modalities, resized to size x size.

    This is what a CASIA-format dataset stores; ``make_crops`` centre-crops it for the model.
    """
    x0, y0, side = square_region(box)
    face_depth_m, valid_fraction = face_median_depth_m(frames, box)
    depth_u8 = normalize_depth(_cut(frames.depth, x0, y0, side), frames.depth_scale, face_depth_m)
    return FaceCrops(
        rgb=resize_square(_cut(frames.color, x0, y0, side), size),
        ir=resize_square(_cut(frames.ir, x0, y0, side), size),
        depth=resize_square(depth_u8, size),
        face_depth_m=face_depth_m,
        depth_valid_fraction=valid_fraction,
        preprocess_version=PREPROCESS_VERSION,
    )


def center_crop_crops(crops: FaceCrops, size: int = CROP_SIZE) -> FaceCrops:
    """Stage 2: centre crop of region crops (the test-time transform of training too)."""
    return FaceCrops(
        rgb=center_crop(crops.rgb, size),
        ir=center_crop(crops.ir, size),
        depth=center_crop(crops.depth, size),
        face_depth_m=crops.face_depth_m,
        depth_valid_fraction=crops.depth_valid_fraction,
        preprocess_version=crops.preprocess_version,
    )


def make_crops(frames: FrameSet, box: FaceBox) -> FaceCrops:
    """FrameSet + face box -> the three 112x112 crops the model sees."""
    return center_crop_crops(make_region_crops(frames, box))


MODALITIES: tuple[str, ...] = ("rgb", "ir", "depth")


def to_chw3(image: np.ndarray) -> np.ndarray:
    """HxW or HxWx3 uint8 -> 3xHxW float32 in [0, 255] (grey images repeated to 3 channels).

    Normalisation (mean/std) lives inside the network, so engines feed these values as they are.
    """
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    check_array("crop", image, shape=(None, None, 3), dtype=np.uint8)
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)


def crops_to_inputs(crops: Sequence[FaceCrops] | Iterable[FaceCrops]) -> dict[str, np.ndarray]:
    """A batch of crops -> {"rgb", "ir", "depth"}: N x 3 x S x S float32 arrays, the model inputs."""
    batch = list(crops)
    if not batch:
        raise ValueError("crops_to_inputs needs at least one FaceCrops")
    return {
        name: np.stack([to_chw3(getattr(c, name)) for c in batch]) for name in MODALITIES
    }


def hflip_inputs(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Horizontally flipped model inputs (test-time augmentation: score = mean of both views)."""
    return {name: np.ascontiguousarray(array[..., ::-1]) for name, array in inputs.items()}
