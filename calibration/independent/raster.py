"""A z-buffer triangle rasteriser in numpy (perspective, per-pixel barycentrics).

Written for this package alone: it shares nothing with sdk/sim, which splats points. Every
triangle is expanded to the pixels of its bounding box in one vectorised pass, the inside test
and depth use barycentric coordinates, and the nearest surface per pixel wins (lexsort).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """Pinhole camera looking down +Z (metres), the SR300 depth imager's grid."""

    width: int
    height: int
    fx: float
    fy: float
    ppx: float
    ppy: float

    def project(self, points: np.ndarray) -> np.ndarray:
        """N x 3 camera-space points -> N x 2 pixel coordinates (pixel centres at integers)."""
        z = points[:, 2]
        return np.stack([self.fx * points[:, 0] / z + self.ppx, self.fy * points[:, 1] / z + self.ppy], axis=1)

    def rays(self) -> np.ndarray:
        """H x W x 3 unit-depth ray directions (x/z, y/z, 1) of every pixel."""
        u = (np.arange(self.width, dtype=np.float64) - self.ppx) / self.fx
        v = (np.arange(self.height, dtype=np.float64) - self.ppy) / self.fy
        uu, vv = np.meshgrid(u, v)
        return np.stack([uu, vv, np.ones_like(uu)], axis=-1)


@dataclass(frozen=True)
class Raster:
    """What the camera sees per pixel: surface id, triangle, barycentrics, depth (metres)."""

    surface: np.ndarray  # H x W int16: -1 where nothing was hit
    triangle: np.ndarray  # H x W int32 index into that surface's triangles
    bary: np.ndarray  # H x W x 3 float32 perspective-correct barycentrics
    z: np.ndarray  # H x W float32, inf where nothing was hit


def _pixels_of(tri_uv: np.ndarray, tri_z: np.ndarray, width: int, height: int):
    """Candidate (triangle, pixel, barycentrics, z) for every pixel centre inside a triangle."""
    lo = np.floor(tri_uv.min(axis=1)).astype(np.int64)
    hi = np.ceil(tri_uv.max(axis=1)).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi[:, 0] = np.minimum(hi[:, 0], width - 1)
    hi[:, 1] = np.minimum(hi[:, 1], height - 1)
    span = np.maximum(hi - lo + 1, 0)
    count = span[:, 0] * span[:, 1]
    keep = count > 0
    tri_index = np.repeat(np.nonzero(keep)[0], count[keep])
    if tri_index.size == 0:
        return None
    start = np.repeat(np.cumsum(count[keep]) - count[keep], count[keep])
    local = np.arange(tri_index.size) - start
    w = span[tri_index, 0]
    px = lo[tri_index, 0] + local % w
    py = lo[tri_index, 1] + local // w
    a, b, c = tri_uv[tri_index, 0], tri_uv[tri_index, 1], tri_uv[tri_index, 2]
    v0, v1 = b - a, c - a
    p = np.stack([px, py], axis=1).astype(np.float64) - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    ok = np.abs(den) > 1e-12
    den = np.where(ok, den, 1.0)
    l1 = (p[:, 0] * v1[:, 1] - v1[:, 0] * p[:, 1]) / den
    l2 = (v0[:, 0] * p[:, 1] - p[:, 0] * v0[:, 1]) / den
    l0 = 1.0 - l1 - l2
    eps = -1e-9
    inside = ok & (l0 >= eps) & (l1 >= eps) & (l2 >= eps)
    tri_index, px, py = tri_index[inside], px[inside], py[inside]
    screen = np.stack([l0[inside], l1[inside], l2[inside]], axis=1)
    # perspective-correct interpolation: barycentrics weighted by 1/z, renormalised
    inv_z = screen / tri_z[tri_index]
    norm = inv_z.sum(axis=1, keepdims=True)
    bary = inv_z / norm
    z = 1.0 / norm[:, 0]
    return tri_index, px, py, bary, z


def rasterize(camera: Camera, surfaces: list[tuple[np.ndarray, np.ndarray]], near: float = 0.05) -> Raster:
    """Rasterise surfaces (camera-space vertices N x 3 in metres, triangles M x 3) together."""
    h, w = camera.height, camera.width
    keys, zs, sids, tris, barys = [], [], [], [], []
    for sid, (vertices, triangles) in enumerate(surfaces):
        if len(triangles) == 0:
            continue
        tri_xyz = vertices[triangles]
        front = (tri_xyz[:, :, 2] > near).all(axis=1)
        triangles = triangles[front]
        tri_ids = np.nonzero(front)[0]
        tri_uv = camera.project(vertices)[triangles]
        found = _pixels_of(tri_uv, vertices[triangles][:, :, 2], w, h)
        if found is None:
            continue
        t, px, py, bary, z = found
        keys.append(py * w + px)
        zs.append(z)
        sids.append(np.full(t.shape, sid, np.int16))
        tris.append(tri_ids[t].astype(np.int32))
        barys.append(bary)
    surface = np.full((h, w), -1, np.int16)
    triangle = np.zeros((h, w), np.int32)
    bary_img = np.zeros((h, w, 3), np.float32)
    z_img = np.full((h, w), np.inf, np.float32)
    if not keys:
        return Raster(surface, triangle, bary_img, z_img)
    key = np.concatenate(keys)
    z = np.concatenate(zs)
    order = np.lexsort((z, key))  # by pixel, nearest first
    key_sorted = key[order]
    first = np.ones(order.size, bool)
    first[1:] = key_sorted[1:] != key_sorted[:-1]
    win = order[first]
    pix = key[win]
    surface.flat[pix] = np.concatenate(sids)[win]
    triangle.flat[pix] = np.concatenate(tris)[win]
    bary_img.reshape(-1, 3)[pix] = np.concatenate(barys)[win]
    z_img.flat[pix] = z[win]
    return Raster(surface, triangle, bary_img, z_img)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (orientation as the triangles' winding gives)."""
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    face_n = np.cross(b - a, c - a)
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(length, 1e-12)


def interpolate(raster: Raster, surface_id: int, attribute: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex attribute (N x C) of one surface -> (mask H x W, values K x C at the mask's pixels)."""
    mask = raster.surface == surface_id
    tri = triangles[raster.triangle[mask]]
    bary = raster.bary[mask].astype(np.float64)
    values = (attribute[tri] * bary[:, :, None]).sum(axis=1)
    return mask, values
