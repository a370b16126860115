"""The SR300's sensors: exposure and gamma, sensor noise, depth noise and holes, quantisation.

Noise comes from one fixed bank of Gaussian and uniform values (built once per process from a
constant seed); each frame reads it at offsets drawn from the frame's own Generator. A pixel's
noise therefore depends only on its position and the frame, never on the window rendered.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from sdk.sim.camera import DEPTH_SCALE, MAX_RANGE_M, MIN_RANGE_M

BANK_SIZE = 1024


@lru_cache(maxsize=1)
def _bank() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(white Gaussian, white uniform, blobby uniform) planes shared by every frame."""
    import cv2

    rng = np.random.Generator(np.random.PCG64(20240601))
    gauss = rng.standard_normal((BANK_SIZE, BANK_SIZE), dtype=np.float32)
    uniform = rng.random((BANK_SIZE, BANK_SIZE), dtype=np.float32)
    # Spatially correlated field, made uniform by rank: far-range depth drops out in blobs.
    smooth = cv2.GaussianBlur(rng.standard_normal((BANK_SIZE, BANK_SIZE), dtype=np.float32), (0, 0), 1.5)
    blob = np.empty(smooth.size, np.float32)
    blob[np.argsort(smooth, axis=None, kind="stable")] = np.linspace(0.0, 1.0, smooth.size, dtype=np.float32)
    return gauss, uniform, blob.reshape(smooth.shape)


@lru_cache(maxsize=1)
def _gamma_lut() -> np.ndarray:
    """Linear 0..1 (4096 steps) -> sRGB uint8."""
    x = np.linspace(0.0, 1.0, 4096)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(srgb * 255.0).astype(np.uint8)


def draw_offsets(rng: np.random.Generator, count: int, height: int, width: int) -> list[tuple[int, int]]:
    """Bank offsets for ``count`` noise planes of a height x width image."""
    oy = rng.integers(0, BANK_SIZE - height + 1, count)
    ox = rng.integers(0, BANK_SIZE - width + 1, count)
    return [(int(a), int(b)) for a, b in zip(oy, ox)]


def bank_window(offset: tuple[int, int], y0: int, y1: int, x0: int, x1: int, uniform: bool = False,
                blob: bool = False) -> np.ndarray:
    gauss, unif, blobs = _bank()
    src = blobs if blob else (unif if uniform else gauss)
    oy, ox = offset
    return src[oy + y0 : oy + y1, ox + x0 : ox + x1]


def to_srgb8(colour_lin: np.ndarray, noise: list[np.ndarray], sigma: float) -> np.ndarray:
    """Linear RGB -> sRGB uint8 with shot+read noise added in the linear domain."""
    c = np.clip(colour_lin, 0.0, 1.0)
    out = np.empty(c.shape, np.uint8)
    lut = _gamma_lut()
    for ch in range(3):
        plane = c[..., ch]
        # Shot noise grows with the signal, read noise is constant.
        noisy = plane + noise[ch] * (np.float32(sigma) * (np.float32(0.0025) + np.sqrt(plane) * np.float32(0.012)))
        idx = np.clip(noisy * np.float32(4095.0) + np.float32(0.5), 0, 4095).astype(np.int32)
        out[..., ch] = lut[idx]
    return out


def to_ir8(ir_level: np.ndarray, noise: np.ndarray, sigma: float = 1.6) -> np.ndarray:
    noisy = ir_level + noise * (np.float32(sigma) * (np.float32(0.5) + np.sqrt(np.clip(ir_level, 0, 255)) * np.float32(0.12)))
    return np.clip(noisy + np.float32(0.5), 0, 255).astype(np.uint8)


def depth_sigma_m(z: np.ndarray | float) -> np.ndarray | float:
    """Structured-light depth noise: grows with the square of distance (~0.6 mm at 0.5 m)."""
    return 0.0006 * (np.asarray(z) / 0.5) ** 2


def to_depth16(z: np.ndarray, cos_v: np.ndarray, noise: np.ndarray, unif: np.ndarray, blob: np.ndarray,
               valid_bias: np.ndarray | None = None) -> np.ndarray:
    """Metres -> Z16 units with noise; holes (0) at grazing angles, out of range, and far dropouts."""
    finite = np.isfinite(z)
    zz = np.where(finite, z, 0.0).astype(np.float32)
    noisy = zz + noise * np.float32(0.0006 / 0.25) * zz * zz
    # Grazing surfaces return too little of the pattern; the threshold jitters per pixel.
    grazing = cos_v < (np.float32(0.16) + np.float32(0.14) * unif)
    # Beyond ~1.2 m returns get sparse, then stop.
    far_drop = blob < np.clip((zz - np.float32(1.8)) / np.float32(2.5), 0.0, 0.9)
    speckle = unif > np.float32(0.9985)
    hole = (~finite) | grazing | far_drop | speckle | (zz < MIN_RANGE_M) | (zz > MAX_RANGE_M)
    if valid_bias is not None:
        hole |= valid_bias
    units = np.round(noisy / np.float32(DEPTH_SCALE))
    units = np.clip(units, 0, 65535).astype(np.uint16)
    units[hole] = 0
    return units
