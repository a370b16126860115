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
def _bank() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(white Gaussian, white uniform, blobby uniform, correlated Gaussian) planes shared by every frame."""
    import cv2

    rng = np.random.Generator(np.random.PCG64(20240601))
    gauss = rng.standard_normal((BANK_SIZE, BANK_SIZE), dtype=np.float32)
    uniform = rng.random((BANK_SIZE, BANK_SIZE), dtype=np.float32)
    # Spatially correlated field, made uniform by rank: far-range depth drops out in blobs.
    smooth = cv2.GaussianBlur(rng.standard_normal((BANK_SIZE, BANK_SIZE), dtype=np.float32), (0, 0), 1.5)
    # Its empirical CDF maps it to uniform 0..1: 1,025 quantiles of every 16th value, linearly
    # interpolated (within 0.4 % of the exact rank; a full argsort cost 0.15 s per process).
    sample = np.sort(smooth.reshape(-1)[::16])
    levels = sample[np.linspace(0, sample.size - 1, 1025).astype(np.int64)]
    blob = np.interp(smooth.reshape(-1), levels, np.linspace(0.0, 1.0, levels.size)).astype(np.float32)
    # Spatially correlated Gaussian noise (unit std): coded-light depth errors come in patches.
    corr = cv2.GaussianBlur(rng.standard_normal((BANK_SIZE, BANK_SIZE), dtype=np.float32), (0, 0), 2.5)
    corr /= np.float32(corr.std())
    return gauss, uniform, blob.reshape(smooth.shape), corr


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
                blob: bool = False, correlated: bool = False) -> np.ndarray:
    gauss, unif, blobs, corr = _bank()
    src = corr if correlated else (blobs if blob else (unif if uniform else gauss))
    oy, ox = offset
    return src[oy + y0 : oy + y1, ox + x0 : ox + x1]


def to_srgb8(colour_lin: np.ndarray, noise: list[np.ndarray], sigma: float,
             white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Linear RGB -> sRGB uint8 with shot+read noise added in the linear domain."""
    out = np.empty(colour_lin.shape, np.uint8)
    lut = _gamma_lut()
    for ch in range(3):
        plane = np.clip(colour_lin[..., ch] * np.float32(white_balance[ch]), 0.0, 1.0)
        # Shot noise grows with the signal, read noise is constant.
        noisy = plane + noise[ch] * (np.float32(sigma) * (np.float32(0.0025) + np.sqrt(plane) * np.float32(0.012)))
        idx = np.clip(noisy * np.float32(4095.0) + np.float32(0.5), 0, 4095).astype(np.int32)
        out[..., ch] = lut[idx]
    return out


def to_ir8(ir_level: np.ndarray, noise: np.ndarray, sigma: float = 1.6, gamma: float = 1.0,
           offset: float = 0.0) -> np.ndarray:
    """NIR level (8-bit units, linear) -> uint8 with the camera's response curve and noise."""
    level = np.clip(ir_level, 0.0, 255.0)
    if gamma != 1.0:
        level = np.float32(255.0) * (level / np.float32(255.0)) ** np.float32(gamma)
    noisy = level + np.float32(offset) + noise * (np.float32(sigma) * (np.float32(0.5) + np.sqrt(level) * np.float32(0.12)))
    return np.clip(noisy + np.float32(0.5), 0, 255).astype(np.uint8)


def depth_sigma_m(z: np.ndarray | float) -> np.ndarray | float:
    """Structured-light depth noise: grows with the square of distance (~0.6 mm at 0.5 m)."""
    return 0.0006 * (np.asarray(z) / 0.5) ** 2


#: NIR level (8-bit image units, before clipping) at which the projected pattern is washed out:
#: the depth decoder runs on the raw sensor, so an IR image clipped at 255 can still give depth;
#: glints, glare and sunlight go far beyond this.
SATURATION_LEVEL = 600.0
#: A depth step to a neighbour larger than this (metres) leaves the pixel without a valid match
#: often (occlusion shadow of the projector, flying pixels at silhouettes and cut edges).
EDGE_STEP_M = 0.035


def depth_edges(z: np.ndarray) -> np.ndarray:
    """Pixels next to a large depth step (computed on the margin-padded window)."""
    zz = np.where(np.isfinite(z), z, np.float32(10.0)).astype(np.float32)
    pad = np.pad(zz, 1, mode="edge")
    step = np.maximum.reduce([np.abs(pad[:-2, 1:-1] - zz), np.abs(pad[2:, 1:-1] - zz),
                              np.abs(pad[1:-1, :-2] - zz), np.abs(pad[1:-1, 2:] - zz)])
    return step > np.float32(EDGE_STEP_M)


def to_depth16(z: np.ndarray, cos_v: np.ndarray, noise: np.ndarray, unif: np.ndarray, blob: np.ndarray,
               *, corr: np.ndarray | None = None, signal: np.ndarray | None = None,
               ambient: np.ndarray | None = None, saturated: np.ndarray | None = None,
               edges: np.ndarray | None = None, warp: np.ndarray | float = 0.0, flicker: float = 0.0,
               noise_scale: float = 1.0, corr_share: float = 0.0, hole_threshold: float = 8.0) -> np.ndarray:
    """Metres -> Z16 units with noise; holes (0) where coded light fails.

    Failure modes: grazing angles; a weak NIR return of the emitter's pattern (dark hair, beards,
    brows, dark cloth, black ink, screens), judged against the ambient NIR that drowns the
    pattern (sunlight); saturated IR (glints, glare, sunlight); depth steps; out of range; far
    dropouts; rare speckle. The noise is partly spatially correlated, with a low-frequency warp
    and a per-frame offset (flicker).
    """
    finite = np.isfinite(z)
    zz = np.where(finite, z, 0.0).astype(np.float32)
    sigma = np.float32(0.0006 / 0.25 * noise_scale) * zz * zz
    if corr is not None and corr_share > 0.0:
        mixed = noise * np.float32(np.sqrt(1.0 - corr_share)) + corr * np.float32(np.sqrt(corr_share))
    else:
        mixed = noise
    noisy = zz + mixed * sigma + np.float32(flicker) * (zz / np.float32(0.5)) ** 2 + np.asarray(warp, np.float32)
    # Grazing surfaces return too little of the pattern; the threshold jitters per pixel.
    grazing = cos_v < (np.float32(0.16) + np.float32(0.14) * unif)
    # Beyond ~1.2 m returns get sparse, then stop.
    far_drop = blob < np.clip((zz - np.float32(1.8)) / np.float32(2.5), 0.0, 0.9)
    speckle = unif > np.float32(0.9985)
    hole = (~finite) | grazing | far_drop | speckle | (zz < MIN_RANGE_M) | (zz > MAX_RANGE_M)
    if signal is not None:
        # The pattern must stand out of the ambient NIR; the threshold varies in patches.
        need = np.float32(hole_threshold) * (np.float32(0.6) + np.float32(0.8) * blob)
        if ambient is not None:
            need = need + np.float32(0.3) * ambient
        hole |= signal < need
    if saturated is not None:
        hole |= saturated
    if edges is not None:
        hole |= edges & (unif < np.float32(0.75))
    units = np.round(noisy / np.float32(DEPTH_SCALE))
    units = np.clip(units, 0, 65535).astype(np.uint16)
    units[hole] = 0
    return units
