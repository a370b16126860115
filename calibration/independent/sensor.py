"""This renderer's own SR300 sensor models (written independently of sdk/sim/sensor.py).

* Colour: linear radiance from albedo x (ambient + Lambert), auto-exposure on the face,
  Poisson-Gaussian noise, a plain 2.2 power-law gamma and a little lens vignetting.
* NIR: the SR300's 860 nm emitter falls off as cos(theta) / d^2 over a Gaussian beam; skin
  scatters light under the surface (the NIR image is blurred by ~2 mm on skin); NIR albedo comes
  from the visible albedo through a material rule (skin bright and flat, dark hair dim, ink
  transparent except carbon black, LCD panels nearly black).
* Depth: coded-light noise that grows with z^2 and with the incidence angle, correlated along
  rows; holes where too little of the pattern comes back (dim NIR return, grazing angles,
  specular glass, saturated IR), at depth edges, out of range, and as random dropouts.
"""
from __future__ import annotations

import cv2
import numpy as np

#: SR300 depth unit (1/8 mm) and working range.
DEPTH_UNIT_M = 0.000125
RANGE_M = (0.2, 1.5)


def colour_image(albedo_lin: np.ndarray, shading: np.ndarray, face_mask: np.ndarray, rng: np.random.Generator,
                 target: float, emissive: np.ndarray | None = None) -> np.ndarray:
    """Linear albedo (H x W x 3) x shading (H x W) -> 8-bit RGB after exposure, noise, gamma."""
    radiance = albedo_lin * shading[..., None]
    if emissive is not None:
        radiance = radiance + emissive
    lum = radiance @ np.array([0.2126, 0.7152, 0.0722])
    level = float(np.median(lum[face_mask])) if face_mask.any() else float(np.median(lum))
    exposure = target / max(level, 1e-4)
    signal = np.clip(radiance * exposure, 0.0, None)
    h, w = signal.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / (w / 2) ** 2
    signal = signal * (1.0 - 0.18 * r2)[..., None]
    full_well = 900.0  # electrons at white: shot noise
    electrons = rng.poisson(np.clip(signal, 0, 1.5) * full_well).astype(np.float64)
    noisy = electrons / full_well + rng.normal(0.0, 0.004, signal.shape)
    return np.clip(np.power(np.clip(noisy, 0, 1), 1 / 2.2) * 255 + 0.5, 0, 255).astype(np.uint8)


def nir_image(nir_albedo: np.ndarray, cos_in: np.ndarray, z: np.ndarray, skin: np.ndarray, gain: float,
              ambient: float, metres_per_px: float, rng: np.random.Generator,
              specular: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(8-bit IR image, return strength) from NIR albedo, incidence cosine and distance."""
    h, w = z.shape
    yy, xx = np.mgrid[0:h, 0:w]
    beam = np.exp(-(((xx - w / 2) / (0.75 * w)) ** 2 + ((yy - h / 2) / (0.75 * h)) ** 2))
    finite = np.isfinite(z)
    zz = np.where(finite, z, 10.0)
    returned = np.where(finite, nir_albedo * np.clip(cos_in, 0, 1) * beam / (zz * zz), 0.0)
    if specular is not None:
        returned = returned + specular
    # subsurface scattering in skin: ~2 mm blur of the skin part of the image
    sigma = max(0.3, 0.002 / max(metres_per_px, 1e-5))
    blurred = cv2.GaussianBlur(returned.astype(np.float32), (0, 0), sigma)
    returned = np.where(skin, blurred, returned)
    level = gain * returned + ambient
    electrons = rng.poisson(np.clip(level, 0, 400) * 4.0) / 4.0
    ir = electrons + rng.normal(0.0, 1.2, level.shape)
    return np.clip(ir + 0.5, 0, 255).astype(np.uint8), returned


def depth_image(z: np.ndarray, cos_in: np.ndarray, returned: np.ndarray, ir: np.ndarray, glass: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """Metres (inf where nothing) -> Z16 units with this model's noise and holes."""
    finite = np.isfinite(z)
    zz = np.where(finite, z, 0.0)
    white = rng.normal(0.0, 1.0, z.shape).astype(np.float32)
    # the pattern is decoded along rows: noise correlated over ~3 px horizontally
    rows = cv2.GaussianBlur(white, (9, 1), 1.6) * 2.2
    sigma = 0.00035 * (zz / 0.4) ** 2 / np.clip(cos_in, 0.25, 1.0)
    noisy = zz + rows * sigma
    hole = ~finite | (zz < RANGE_M[0]) | (zz > RANGE_M[1])
    hole |= cos_in < 0.22 + 0.1 * rng.random(z.shape)
    hole |= returned < 0.25 * (1.0 + rng.random(z.shape))  # too little light comes back
    hole |= ir >= 254  # saturated pattern cannot be decoded
    hole |= glass  # specular surfaces send the pattern elsewhere
    # edges: a pixel next to a jump of more than 15 mm is invalidated (pattern broken)
    zf = np.where(finite, zz, 10.0).astype(np.float32)
    jump = np.maximum(cv2.dilate(zf, np.ones((3, 3), np.uint8)) - zf, zf - cv2.erode(zf, np.ones((3, 3), np.uint8)))
    hole |= (jump > 0.015) & (rng.random(z.shape) < 0.8)
    hole |= rng.random(z.shape) < 0.002
    units = np.clip(np.round(noisy / DEPTH_UNIT_M), 0, 65535).astype(np.uint16)
    units[hole] = 0
    return units


def srgb_to_linear(rgb8: np.ndarray) -> np.ndarray:
    return np.power(rgb8.astype(np.float64) / 255.0, 2.2)
