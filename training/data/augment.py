"""Training augmentation with ONE set of random parameters for all three modalities.

The reference configs used rotation, resize 125 + random resized crop 112 and horizontal flip,
applied identically to RGB, depth and IR (the modalities are pixel-registered, so different
geometry per modality would teach the network misalignment). Colour jitter touches RGB only.
Inputs are the 125x125 region crops; outputs are 112x112 uint8 crops ready for to_chw3.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from sdk.preprocess import MODALITIES, resize_square
from sdk.types import CROP_SIZE


@dataclass(frozen=True)
class AugmentParams:
    """The random draw shared by the modalities of one sample."""

    angle_deg: float
    crop_x: int
    crop_y: int
    crop_w: int
    crop_h: int
    flip: bool
    brightness: float
    contrast: float
    saturation: float


@dataclass(frozen=True)
class PairedAugment:
    rotation_deg: float = 10.0
    scale: tuple[float, float] = (0.8, 1.0)
    ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    hflip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    out_size: int = CROP_SIZE

    def sample(self, side: int, rng: np.random.Generator) -> AugmentParams:
        angle = float(rng.uniform(-self.rotation_deg, self.rotation_deg)) if self.rotation_deg > 0 else 0.0
        area = side * side
        crop = None
        # Random resized crop: up to 10 tries for a box inside the image, else the whole image.
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= side and 0 < h <= side:
                crop = (int(rng.integers(0, side - w + 1)), int(rng.integers(0, side - h + 1)), w, h)
                break
        if crop is None:
            crop = (0, 0, side, side)
        jitter = lambda amount: float(rng.uniform(1 - amount, 1 + amount)) if amount > 0 else 1.0  # noqa: E731
        return AugmentParams(
            angle_deg=angle, crop_x=crop[0], crop_y=crop[1], crop_w=crop[2], crop_h=crop[3],
            flip=bool(rng.random() < self.hflip), brightness=jitter(self.brightness),
            contrast=jitter(self.contrast), saturation=jitter(self.saturation),
        )

    def apply(self, image: np.ndarray, params: AugmentParams, colour: bool) -> np.ndarray:
        side = image.shape[0]
        if params.angle_deg != 0.0:
            matrix = cv2.getRotationMatrix2D(((side - 1) / 2.0, (side - 1) / 2.0), params.angle_deg, 1.0)
            image = cv2.warpAffine(image, matrix, (image.shape[1], side), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        x, y = params.crop_x, params.crop_y
        image = resize_square(image[y : y + params.crop_h, x : x + params.crop_w], self.out_size)
        if params.flip:
            image = image[:, ::-1]
        if colour:
            image = _colour_jitter(image, params)
        return np.ascontiguousarray(image)

    def __call__(self, crops: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        params = self.sample(crops["rgb"].shape[0], rng)
        return {m: self.apply(crops[m], params, colour=(m == "rgb")) for m in MODALITIES}


def _colour_jitter(rgb: np.ndarray, p: AugmentParams) -> np.ndarray:
    x = rgb.astype(np.float32) * p.brightness
    mean = x.mean()
    x = (x - mean) * p.contrast + mean
    grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = (x - grey[..., None]) * p.saturation + grey[..., None]
    return np.clip(np.round(x), 0, 255).astype(np.uint8)
