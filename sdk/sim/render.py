"""Rasterisation and shading on an arbitrary pixel window of a pinhole camera.

Surfaces come as camera-frame point samples (``Points``) or as per-pixel analytic layers
(``Layer``: walls, torso, neck). Points are splatted into a z-buffer with ``np.minimum.at``
on a (depth, index) key, single-pixel gaps are filled from the nearest neighbour, and every
layer is composed by depth. All later work is per pixel, so rendering a sub-window gives
exactly the pixels of the full frame there (the region-crop fast path relies on this).
Camera frame: x right, y down, z forward, metres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdk.sim.geometry import dot3
from sdk.sim.face import MAT_CLOTH, MAT_CORNEA, MAT_GLASS, MAT_PAPER, MAT_PLASTIC, MAT_SCREEN, MAT_SKIN

_KEY_NONE = np.iinfo(np.int64).max
_INDEX_BITS = 24
_Z_QUANTUM = 2.0e-5  # metres per z-buffer step


@dataclass(frozen=True)
class View:
    """A pinhole camera and the window [x0, x1) x [y0, y1) of its pixels being rendered."""

    fx: float
    fy: float
    ppx: float
    ppy: float
    width: int
    height: int
    x0: int = 0
    y0: int = 0
    x1: int = -1
    y1: int = -1

    def __post_init__(self) -> None:
        if self.x1 < 0:
            object.__setattr__(self, "x1", self.width)
        if self.y1 < 0:
            object.__setattr__(self, "y1", self.height)

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0

    def window(self, x0: int, y0: int, x1: int, y1: int) -> "View":
        return View(self.fx, self.fy, self.ppx, self.ppy, self.width, self.height,
                    max(0, x0), max(0, y0), min(self.width, x1), min(self.height, y1))

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Normalised image coordinates (x/z, y/z) of the window's pixel centres."""
        u = (np.arange(self.x0, self.x1, dtype=np.float32) - np.float32(self.ppx)) / np.float32(self.fx)
        v = (np.arange(self.y0, self.y1, dtype=np.float32) - np.float32(self.ppy)) / np.float32(self.fy)
        return np.broadcast_to(u[None, :], self.shape), np.broadcast_to(v[:, None], self.shape)

    def project(self, pts: np.ndarray) -> np.ndarray:
        """(N, 3) camera points -> (N, 2) pixel coordinates of the full image."""
        z = pts[:, 2]
        return np.stack([self.fx * pts[:, 0] / z + self.ppx, self.fy * pts[:, 1] / z + self.ppy], axis=1)


@dataclass
class Points:
    pos: np.ndarray  # (N, 3) float32 camera frame
    nrm: np.ndarray  # (N, 3) float32 unit normals
    rgb: np.ndarray  # (N, 3) float32 linear albedo (emitted radiance for screens)
    ir: np.ndarray  # (N,) float32 NIR albedo
    mat: np.ndarray  # (N,) uint8 material


@dataclass
class Layer:
    """Per-pixel surface over ``box`` = (r0, r1, c0, c1) of the window; z = inf where empty."""

    z: np.ndarray  # (h, w) float32
    pos: np.ndarray  # (h, w, 3) float32
    nrm: np.ndarray  # (h, w, 3)
    rgb: np.ndarray  # (h, w, 3)
    ir: np.ndarray  # (h, w)
    mat: np.ndarray  # (h, w) uint8
    box: tuple[int, int, int, int] = (0, 0, 0, 0)

    def __post_init__(self) -> None:
        if self.box == (0, 0, 0, 0):
            self.box = (0, self.z.shape[0], 0, self.z.shape[1])


_FIELDS = ("z", "pos", "nrm", "rgb", "ir", "mat")


def empty_layer(shape: tuple[int, int], box: tuple[int, int, int, int] | None = None) -> Layer:
    h, w = shape
    return Layer(
        z=np.full(shape, np.inf, np.float32),
        pos=np.zeros((h, w, 3), np.float32),
        nrm=np.zeros((h, w, 3), np.float32),
        rgb=np.zeros((h, w, 3), np.float32),
        ir=np.zeros(shape, np.float32),
        mat=np.zeros(shape, np.uint8),
        box=box or (0, h, 0, w),
    )


def crop_layer(layer: Layer, r0: int, r1: int, c0: int, c1: int) -> Layer:
    """Copy of a full-window layer's sub-box."""
    return Layer(*(getattr(layer, f)[r0:r1, c0:c1].copy() for f in _FIELDS), box=(r0, r1, c0, c1))


def view_layer(layer: Layer, r0: int, r1: int, c0: int, c1: int) -> Layer:
    """A sub-box of a layer as views (no copy): for read-only use such as shading."""
    return Layer(*(getattr(layer, f)[r0:r1, c0:c1] for f in _FIELDS), box=(r0, r1, c0, c1))


def concat_points(items: list[Points]) -> Points:
    items = [p for p in items if p.pos.shape[0]]
    if len(items) == 1:
        return items[0]
    if not items:
        z3 = np.zeros((0, 3), np.float32)
        return Points(z3, z3, z3, np.zeros(0, np.float32), np.zeros(0, np.uint8))
    return Points(*(np.concatenate([getattr(p, f) for p in items]) for f in ("pos", "nrm", "rgb", "ir", "mat")))


def splat(points: Points, view: View, fill_passes: int = 2) -> Layer | None:
    """Z-buffer the points into the window (nearest point wins), filling pinholes.

    Returns a layer over the bounding box of the points that land in the window (None if none do).
    """
    h, w = view.shape
    if points.pos.shape[0] == 0:
        return None
    pos = points.pos
    z = pos[:, 2]
    facing = dot3(points.nrm, pos) < 0.0
    ok = facing & (z > 0.05)
    sel = np.flatnonzero(ok)
    pz = z[sel]
    u = np.floor(np.float32(view.fx) * pos[sel, 0] / pz + np.float32(view.ppx + 0.5)).astype(np.int64) - view.x0
    v = np.floor(np.float32(view.fy) * pos[sel, 1] / pz + np.float32(view.ppy + 0.5)).astype(np.int64) - view.y0
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    if not inside.any():
        return None
    sel, u, v, pz = sel[inside], u[inside], v[inside], pz[inside]
    r0, r1 = int(v.min()), int(v.max()) + 1
    c0, c1 = int(u.min()), int(u.max()) + 1
    bh, bw = r1 - r0, c1 - c0
    key = (np.round(pz / _Z_QUANTUM).astype(np.int64) << _INDEX_BITS) | sel.astype(np.int64)
    buf = np.full(bh * bw, _KEY_NONE, np.int64)
    np.minimum.at(buf, (v - r0) * bw + (u - c0), key)
    buf = buf.reshape(bh, bw)
    for _ in range(fill_passes):
        buf = _fill_pinholes(buf)
    # One dense gather per field (empty pixels read point 0, then are cleared): the same values
    # as masked assignment into an empty layer, without six boolean scatters.
    flat = buf.reshape(-1)
    empty = flat == _KEY_NONE
    idx = np.where(empty, 0, flat & ((1 << _INDEX_BITS) - 1)).astype(np.intp)
    fields = {}
    for name in ("pos", "nrm", "rgb", "ir", "mat"):
        values = getattr(points, name)[idx]
        np.copyto(values, values.dtype.type(0), where=empty[:, None] if values.ndim == 2 else empty)
        fields[name] = values.reshape((bh, bw) + values.shape[1:])
    z_px = fields["pos"][..., 2].copy()
    z_px[empty.reshape(bh, bw)] = np.inf
    return Layer(z=z_px, box=(r0, r1, c0, c1), **fields)


def _fill_pinholes(buf: np.ndarray) -> np.ndarray:
    """Empty pixels surrounded on >= 3 of 4 sides take the nearest 4-neighbour's sample."""
    pad = np.pad(buf, 1, constant_values=_KEY_NONE)
    nb = np.stack([pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]])
    count = (nb != _KEY_NONE).sum(axis=0)
    fill = (buf == _KEY_NONE) & (count >= 3)
    if not fill.any():
        return buf
    out = buf.copy()
    out[fill] = nb.min(axis=0)[fill]
    return out


def compose(base: Layer, layers: list[Layer], origin: tuple[int, int] = (0, 0)) -> Layer:
    """Nearest surface per pixel: ``base`` is updated in place. Layer boxes are window
    coordinates; ``base`` starts at window pixel ``origin`` (row, column) and covers them all."""
    for layer in layers:
        r0, r1, c0, c1 = layer.box
        r0, r1, c0, c1 = r0 - origin[0], r1 - origin[0], c0 - origin[1], c1 - origin[1]
        take = layer.z < base.z[r0:r1, c0:c1]
        if not take.any():
            continue
        # copyto with a mask writes the same pixels as boolean-index assignment, several times faster.
        for f in _FIELDS:
            masked_copy(getattr(base, f)[r0:r1, c0:c1], getattr(layer, f), take)
    return base


def masked_copy(dst: np.ndarray, src: np.ndarray, take: np.ndarray) -> None:
    """dst[take] = src[take] for (h, w) or (h, w, k) arrays; a (h, w, k) pixel moves as one element."""
    if src.ndim == 3:
        pixel = np.dtype((np.void, src.shape[2] * src.itemsize))
        try:
            np.copyto(dst.view(pixel)[..., 0], src.view(pixel)[..., 0], where=take)
            return
        except ValueError:  # a pixel's channels are not contiguous: copy them channel-wise
            np.copyto(dst, src, where=take[..., None])
            return
    np.copyto(dst, src, where=take)


def union_box(layers: list[Layer]) -> tuple[int, int, int, int] | None:
    boxes = [l.box for l in layers]
    if not boxes:
        return None
    return min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes)


@dataclass(frozen=True)
class Lighting:
    """Scene light: ambient plus one directional key light (camera frame), RGB exposure."""

    ambient: tuple[float, float, float]
    key_dir: tuple[float, float, float]  # direction the light travels (unit)
    key_rgb: tuple[float, float, float]
    exposure: float
    glare: float = 0.0  # strength of specular glare on paper and plastic
    ir_gain: float = 36.0  # emitter power: NIR level = gain * albedo * cos / r^2
    ir_ambient: float = 4.0  # sunlight/room NIR on an albedo-1 surface
    paper_gloss: float = 0.0  # glossy photo paper: mirror-like glare of light and emitter


#: How much of a material's NIR albedo returns the emitter's pattern diffusely (depth needs it).
#: Screens are glass over an LCD that absorbs NIR: the pattern mirrors away or is absorbed.
_PATTERN_RETURN = {MAT_SCREEN: 0.25, MAT_GLASS: 0.8}


@dataclass
class Shading:
    colour: np.ndarray  # (h, w, 3) linear
    ir: np.ndarray  # (h, w) NIR level in 8-bit units (emitter + ambient)
    cos_v: np.ndarray  # (h, w) cosine to the camera
    signal: np.ndarray  # (h, w) diffuse return of the emitter's pattern (what depth decodes)


def shade(layer: Layer, light: Lighting) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(colour linear (h,w,3), IR level (h,w) in 0..255 units, cos to the camera) of a layer."""
    s = shade_full(layer, light)
    return s.colour, s.ir, s.cos_v


def shade_full(layer: Layer, light: Lighting) -> Shading:
    present = np.isfinite(layer.z)
    pos = layer.pos
    r = np.sqrt(dot3(pos, pos)) + np.float32(1e-6)
    view_dir = -pos / r[..., None]  # towards the camera (and the emitter beside it)
    n = layer.nrm
    cos_v = np.clip(dot3(n, view_dir), 0.0, 1.0)
    key = -np.asarray(light.key_dir, np.float32)
    cos_k = np.clip(dot3(n, key), 0.0, None)
    irradiance = np.asarray(light.ambient, np.float32) * (0.6 + 0.4 * cos_v[..., None]) + cos_k[..., None] * np.asarray(light.key_rgb, np.float32)
    colour = layer.rgb * irradiance
    mat = layer.mat
    # Specular highlight of the key light (skin sheen, cornea catch-light, glare on paper/plastic/lenses).
    half = view_dir + key
    half /= (np.sqrt(dot3(half, half)) + np.float32(1e-6))[..., None]
    cos_h = np.clip(dot3(n, half), 0.0, 1.0)
    # Per-material constants by table lookup (one gather instead of a mask per material); the
    # power terms are evaluated only where their weight is non-zero (elsewhere they are 0 anyway).
    spec_w = _material_table({MAT_SKIN: 0.05, MAT_CORNEA: 0.8, MAT_PAPER: light.glare + 2.0 * light.paper_gloss,
                              MAT_PLASTIC: 0.12 + light.glare, MAT_GLASS: 0.6 + light.glare}, 0.0)[mat]
    spec_p = _material_table({MAT_CORNEA: 800.0, MAT_PAPER: 60.0 + 340.0 * light.paper_gloss, MAT_GLASS: 300.0},
                             25.0)[mat]
    spec = np.zeros(spec_w.shape, np.float32)
    lit = spec_w != 0
    if lit.any():
        spec[lit] = spec_w[lit] * cos_h[lit] ** spec_p[lit]
    colour = colour + spec[..., None] * np.asarray(light.key_rgb, np.float32)
    screen = mat == MAT_SCREEN
    if screen.any():
        # Emissive: not lit by the room; the camera's exposure applies, the light does not.
        colour[screen] = layer.rgb[screen] / np.float32(max(light.exposure, 1e-3))
    colour *= np.float32(light.exposure)
    # NIR from the SR300's own emitter: Lambertian, inverse square; corneas, glass and glossy
    # paper mirror it back (a glint) when they face the camera.
    r2 = r * r
    emit = layer.ir * (np.float32(light.ir_gain) * cos_v / r2)
    ambient = layer.ir * (np.float32(light.ir_ambient) * (0.5 + 0.5 * cos_k))
    glint_w = _material_table({MAT_CORNEA: 8.0, MAT_SCREEN: 6.0, MAT_GLASS: 10.0, MAT_PAPER: 6.0 * light.paper_gloss},
                              0.0)[mat]
    glint_p = _material_table({MAT_SCREEN: 40000.0, MAT_GLASS: 3000.0, MAT_PAPER: 6000.0}, 80.0)[mat]
    glint = np.zeros(glint_w.shape, np.float32)
    shiny = glint_w != 0
    if shiny.any():
        glint[shiny] = glint_w[shiny] * np.float32(light.ir_gain) * cos_v[shiny] ** glint_p[shiny] / r2[shiny]
    ir = emit + ambient + glint
    signal = emit.copy()
    for code, share in _PATTERN_RETURN.items():
        sel = mat == code
        if sel.any():
            signal[sel] *= np.float32(share)
    colour[~present] = 0.0
    ir[~present] = 0.0
    signal[~present] = 0.0
    return Shading(colour, ir, cos_v, signal)


def _material_table(values: dict[int, float], default: float) -> np.ndarray:
    """A float32 lookup table over every uint8 material code."""
    table = np.full(256, np.float32(default), np.float32)
    for code, value in values.items():
        table[code] = np.float32(value)
    return table


# ---- analytic layers -------------------------------------------------------------------------

def wall_layer(view: View, distance: float, normal: tuple[float, float, float], rgb_image: np.ndarray,
               ir_albedo: float) -> Layer:
    """A plane n.X = distance (n points to the camera side) textured by a full-frame image."""
    xn, yn = view.rays()
    n = np.asarray(normal, np.float32)
    denom = n[0] * xn + n[1] * yn + n[2]
    z = np.float32(distance) / np.maximum(denom, np.float32(1e-3))
    layer = empty_layer(view.shape)
    layer.z = z.astype(np.float32)
    layer.pos = np.stack([xn * z, yn * z, z], axis=-1).astype(np.float32)
    layer.nrm[:] = -n  # faces the camera
    layer.rgb = rgb_image[view.y0:view.y1, view.x0:view.x1].astype(np.float32)
    layer.ir[:] = ir_albedo
    layer.mat[:] = MAT_CLOTH
    return layer


def cylinder_layer(view: View, centre: tuple[float, float], radii: tuple[float, float], y_top: float,
                   y_bottom: float, rgb: tuple[float, float, float], ir: float, mat: int,
                   top_curve: tuple[float, float] | None = None) -> Layer | None:
    """Front of a vertical elliptic cylinder (x-z centre, x/z radii) between two heights (y down).

    ``top_curve`` = (y0, drop): the top edge lies at y0 + drop * (x/rx)^2 (shoulders). The layer
    covers only the window pixels the cylinder can project to.
    """
    cx, cz = centre
    ax, az = radii
    top_min = top_curve[0] if top_curve is not None else y_top
    zs = (max(cz - az, 0.05), cz + az)
    us = [view.fx * x / z + view.ppx for x in (cx - ax, cx + ax) for z in zs]
    vs = [view.fy * y / z + view.ppy for y in (top_min, y_bottom) for z in zs]
    c0 = max(int(np.floor(min(us))) - 1 - view.x0, 0)
    c1 = min(int(np.ceil(max(us))) + 2 - view.x0, view.shape[1])
    r0 = max(int(np.floor(min(vs))) - 1 - view.y0, 0)
    r1 = min(int(np.ceil(max(vs))) + 2 - view.y0, view.shape[0])
    if c1 <= c0 or r1 <= r0:
        return None
    sub = View(view.fx, view.fy, view.ppx, view.ppy, view.width, view.height,
               view.x0 + c0, view.y0 + r0, view.x0 + c1, view.y0 + r1)
    # A vertical cylinder: where a ray meets it depends on the pixel's column only, so the
    # quadratic is solved once per column (a 1 x w row) and broadcast down the rows.
    xn = ((np.arange(sub.x0, sub.x1, dtype=np.float32) - np.float32(sub.ppx)) / np.float32(sub.fx))[None, :]
    yn = ((np.arange(sub.y0, sub.y1, dtype=np.float32) - np.float32(sub.ppy)) / np.float32(sub.fy))[:, None]
    # Ray X = t*(xn, yn, 1): ((t xn - cx)/ax)^2 + ((t - cz)/az)^2 = 1
    a = (xn / ax) ** 2 + np.float32(1.0 / az**2)
    b = -2.0 * (xn * np.float32(cx / ax**2) + np.float32(cz / az**2))
    c = np.float32((cx / ax) ** 2 + (cz / az) ** 2 - 1.0)
    disc = b * b - 4.0 * a * c
    hits_column = disc > 0
    t = np.where(hits_column, (-b - np.sqrt(np.where(hits_column, disc, 0.0))) / (2.0 * a), 0.0).astype(np.float32)
    x, y = xn * t, yn * t
    if top_curve is not None:
        top = top_curve[0] + top_curve[1] * ((x - cx) / ax) ** 2
    else:
        top = y_top
    ok = hits_column & (y >= top) & (y <= y_bottom)
    tt = np.where(ok, t, np.float32(0.0))
    nx = (xn * tt - cx) / ax**2
    nz = (tt - cz) / az**2
    norm = np.sqrt(nx**2 + nz**2) + 1e-9
    return Layer(
        z=np.where(ok, t, np.float32(np.inf)).astype(np.float32),
        pos=np.stack([xn * tt, yn * tt, tt], axis=-1).astype(np.float32, copy=False),
        nrm=np.stack([nx / norm, np.zeros_like(nx), nz / norm], axis=-1).astype(np.float32, copy=False),
        rgb=ok[..., None] * np.asarray(rgb, np.float32),
        ir=np.where(ok, np.float32(ir), np.float32(0.0)).astype(np.float32),
        mat=np.where(ok, np.uint8(mat), np.uint8(0)).astype(np.uint8),
        box=(r0, r1, c0, c1),
    )
