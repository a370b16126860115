"""Training augmentation with ONE set of random parameters for all three modalities.

The reference configs used rotation, resize 125 + random resized crop 112 and horizontal flip,
applied identically to RGB, depth and IR (the modalities are pixel-registered, so different
geometry per modality would teach the network misalignment). Colour jitter touches RGB only.
Inputs are the 125x125 region crops; outputs are 112x112 uint8 crops ready for to_chw3.

Physics-friendly augmentation (all off by default; the distillation and ensemble presets turn
them on). They push a network toward what a real SR300 measures (depth relief, NIR response)
and away from one renderer's exact appearance:
  * IR gain and gamma jitter: the camera's NIR response, emitter power and exposure vary.
  * Depth noise: extra Gaussian noise on valid depth and random dropouts (holes).
  * Background fill: depth that is empty (0: holes, or more than 10 cm behind the face) is,
    with probability ``background_fill``, replaced by a near background (a wall or headrest a
    few centimetres behind the head), so that "an empty depth border" stops meaning live.
  * Outline randomisation: with probability ``outline_cut`` depth outside a random head-sized
    ellipse is set to 0, so a head outline is no longer only a live-face cue.
Both depth-border augmentations are applied regardless of the label.
  * Aligned holes: with probability ``aligned_holes``, up to ``aligned_hole_max`` of the pixels lose
    their depth AND their colour (sdk.align_holes), mostly where the NIR return is weak, as
    rs.align leaves a far or dark-haired live face; applied regardless of the label, so black
    speckles in the colour crop stop meaning "attack".
  * Colour refocus: with probability ``colour_refocus`` the colour crop is blurred or sharpened
    (sdk.colour_focus: Gaussian sigma 0.7-2 px, amount -1 (blur) to ``colour_sharpen_max``
    (unsharp masking)), as focus, motion and an image processor's sharpening change a real
    camera's picture; applied regardless of the label, before the aligned holes (a camera
    sharpens before rs.align punches its holes), so colour sharpness stops meaning anything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from sdk.align_holes import low_return_hole_mask, punch_holes
from sdk.colour_focus import MIN_AMOUNT, refocus
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
    ir_gain: float = 1.0
    ir_gamma: float = 1.0
    depth_noise_std: float = 0.0
    background_level: float = -1.0  # < 0: no background fill
    outline: tuple[float, float, float, float] | None = None  # ellipse cx, cy, rx, ry (fractions)
    noise_seed: int = 0
    hole_fraction: float = 0.0  # aligned holes (depth and colour), share of the pixels
    focus_sigma: float = 0.0  # colour refocus (sdk.colour_focus); 0: off
    focus_amount: float = 0.0


@dataclass(frozen=True)
class PairedAugment:
    rotation_deg: float = 10.0
    scale: tuple[float, float] = (0.8, 1.0)
    ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    hflip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    #: IR gain drawn from [1 - ir_gain, 1 + ir_gain]; gamma from [1/(1 + ir_gamma), 1 + ir_gamma].
    ir_gain: float = 0.0
    ir_gamma: float = 0.0
    #: Extra depth noise: std drawn from [0, depth_noise] grey levels on valid pixels, plus
    #: dropouts of up to depth_dropout of them.
    depth_noise: float = 0.0
    depth_dropout: float = 0.0
    #: Probabilities of the two depth-border augmentations (see the module docstring).
    background_fill: float = 0.0
    outline_cut: float = 0.0
    #: Probability of aligned holes and their largest share of the pixels (see the module docstring).
    aligned_holes: float = 0.0
    aligned_hole_max: float = 0.3
    #: Probability of a colour blur or sharpening and the strongest sharpening (see the docstring).
    colour_refocus: float = 0.0
    colour_sharpen_max: float = 1.5
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
        params = AugmentParams(
            angle_deg=angle, crop_x=crop[0], crop_y=crop[1], crop_w=crop[2], crop_h=crop[3],
            flip=bool(rng.random() < self.hflip), brightness=jitter(self.brightness),
            contrast=jitter(self.contrast), saturation=jitter(self.saturation),
        )
        if not self.physics_enabled:
            # No further draws: configs without physics augmentation keep their exact old streams.
            return params
        gamma = 1.0
        if self.ir_gamma > 0:
            gamma = float(math.exp(rng.uniform(-math.log1p(self.ir_gamma), math.log1p(self.ir_gamma))))
        background = -1.0
        if self.background_fill > 0 and rng.random() < self.background_fill:
            # 0-70 grey levels: 10 cm down to ~5 cm behind the face median (which sits at ~128).
            background = float(rng.uniform(0.0, 70.0))
        outline = None
        if self.outline_cut > 0 and rng.random() < self.outline_cut:
            outline = (float(rng.uniform(0.45, 0.55)), float(rng.uniform(0.45, 0.6)),
                       float(rng.uniform(0.3, 0.45)), float(rng.uniform(0.38, 0.55)))
        drawn = {
            "ir_gain": jitter(self.ir_gain), "ir_gamma": gamma,
            "depth_noise_std": float(rng.uniform(0.0, self.depth_noise)) if self.depth_noise > 0 else 0.0,
            "background_level": background, "outline": outline,
            "noise_seed": int(rng.integers(0, 2**31 - 1)),
        }
        # Drawn last and only when enabled, so configs without it keep their exact old streams.
        if self.aligned_holes > 0 and rng.random() < self.aligned_holes:
            drawn["hole_fraction"] = float(rng.uniform(0.0, self.aligned_hole_max))
        # Drawn after the holes and only when enabled, for the same reason.
        if self.colour_refocus > 0 and rng.random() < self.colour_refocus:
            drawn["focus_sigma"] = float(rng.uniform(0.7, 2.0))
            drawn["focus_amount"] = float(rng.uniform(MIN_AMOUNT, self.colour_sharpen_max))
        return AugmentParams(**{**params.__dict__, **drawn})

    @property
    def physics_enabled(self) -> bool:
        return any(v > 0 for v in (self.ir_gain, self.ir_gamma, self.depth_noise, self.depth_dropout,
                                    self.background_fill, self.outline_cut, self.aligned_holes,
                                    self.colour_refocus))

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
        out = {m: self.apply(crops[m], params, colour=(m == "rgb")) for m in MODALITIES}
        if self.physics_enabled:
            noise = np.random.default_rng(params.noise_seed)
            out["ir"] = ir_response(out["ir"], params.ir_gain, params.ir_gamma)
            out["depth"] = self._depth(out["depth"], params, noise)
            if params.focus_sigma > 0:
                out["rgb"] = refocus(out["rgb"], params.focus_sigma, params.focus_amount)
            if params.hole_fraction > 0:
                hole = low_return_hole_mask(out["ir"], params.hole_fraction, noise)
                out["rgb"], out["depth"] = punch_holes(out["rgb"], out["depth"], hole)
        return out

    def _depth(self, depth: np.ndarray, p: AugmentParams, noise: np.random.Generator) -> np.ndarray:
        x = depth.astype(np.float32)
        empty = depth == 0
        if p.background_level >= 0:
            # A near, slightly tilted background plane with sensor noise where depth was empty.
            h, w = x.shape
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            tilt = noise.uniform(-0.15, 0.15, 2).astype(np.float32)
            plane = p.background_level + tilt[0] * (xx - w / 2) + tilt[1] * (yy - h / 2)
            plane += noise.normal(0.0, 2.0, x.shape).astype(np.float32)
            x = np.where(empty, np.clip(plane, 1.0, 110.0), x)
        valid = x > 0
        if p.depth_noise_std > 0:
            x = np.where(valid, x + noise.normal(0.0, p.depth_noise_std, x.shape).astype(np.float32), x)
            x = np.where(valid, np.clip(x, 1.0, 255.0), 0.0)
        if self.depth_dropout > 0:
            drop = noise.random(x.shape) < noise.uniform(0.0, self.depth_dropout)
            x[drop] = 0.0
        if p.outline is not None:
            h, w = x.shape
            cx, cy, rx, ry = p.outline
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            outside = ((xx - cx * w) / (rx * w)) ** 2 + ((yy - cy * h) / (ry * h)) ** 2 > 1.0
            x[outside] = 0.0
        return np.clip(np.round(x), 0, 255).astype(np.uint8)


def ir_response(ir: np.ndarray, gain: float, gamma: float) -> np.ndarray:
    """IR crop through another camera response: 255 * gain * (ir / 255) ** gamma, clipped."""
    if gain == 1.0 and gamma == 1.0:
        return ir
    x = (ir.astype(np.float32) / 255.0) ** np.float32(gamma) * np.float32(gain)
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def _colour_jitter(rgb: np.ndarray, p: AugmentParams) -> np.ndarray:
    x = rgb.astype(np.float32) * p.brightness
    mean = x.mean()
    x = (x - mean) * p.contrast + mean
    grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = (x - grey[..., None]) * p.saturation + grey[..., None]
    return np.clip(np.round(x), 0, 255).astype(np.uint8)
