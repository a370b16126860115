"""Parametric 3D head: geometry, albedo (RGB and NIR) and landmarks on a (longitude, latitude) grid.

The head is a super-ellipsoid (flatter at the front than a sphere) with a tapered jaw, to which
smooth features are added along the viewing axis: nose, eye sockets and corneas, brow ridge,
cheekbones, lips and chin. Albedo is painted analytically in frontal coordinates (X, Y) of the
undisplaced head so it is sharp at any sampling density. Head frame: x to the image right,
y up, z towards the camera; metres; origin at the ellipsoid centre.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from sdk.sim.identity import Identity

# Material codes shared by every surface (render.py shades by them).
MAT_SKIN = 0
MAT_CORNEA = 1
MAT_HAIR = 2
MAT_PAPER = 3
MAT_SCREEN = 4
MAT_PLASTIC = 5
MAT_CLOTH = 6
MAT_GLASS = 7  # spectacle lenses: transparent, mirror the emitter (NIR glare)

THETA_RANGE = (-1.75, 1.75)  # longitude: +-100 degrees around the face
PHI_RANGE = (-1.25, 1.50)  # latitude: from under the chin to the crown
CORNEA_RADIUS = 0.0078
IRIS_RADIUS = 0.0058
PUPIL_RADIUS = 0.0029


def _smooth(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def _soft_inside(distance_inside: np.ndarray, soft: float = 0.0006) -> np.ndarray:
    """0..1 coverage from a signed 'how far inside' value in metres (anti-aliased edges)."""
    return np.clip(distance_inside / soft + 0.5, 0.0, 1.0)


@dataclass
class HeadModel:
    """A head sampled as points (flattened grid) in the head frame."""

    pos: np.ndarray  # (N, 3) float32
    nrm: np.ndarray  # (N, 3) float32, outward unit normals
    rgb: np.ndarray  # (N, 3) float32 linear albedo, eyes open
    ir: np.ndarray  # (N,) float32 NIR albedo
    mat: np.ndarray  # (N,) uint8 material
    eye_idx: np.ndarray  # indices of points whose look changes with a blink
    rgb_closed: np.ndarray  # (len(eye_idx), 3) albedo with the lids closed
    ir_closed: np.ndarray
    landmarks: dict[str, np.ndarray]  # name -> (3,) head-frame point
    contour: np.ndarray  # (K, 3) points whose projection bounds the detector-style face box
    # Mouth opening (expression.py): points the jaw drop moves, their displacement per metre of
    # drop, the same for the contour and landmarks, and the mouth cavity behind the lips.
    jaw_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    jaw_vec: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    contour_jaw: np.ndarray | None = None  # (K, 3)
    landmark_jaw: dict[str, np.ndarray] = field(default_factory=dict)
    cavity: "MouthCavity | None" = None


@dataclass
class MouthCavity:
    """Surface behind the lips (teeth, tongue, the dark oral cavity), shown only while the jaw is
    dropped: a copy of the head points around the mouth, pushed back, in the head frame."""

    pos: np.ndarray  # (M, 3) float32 surface positions before the recess
    xw: np.ndarray  # (M,) frontal coordinates (after the smile warp)
    yw: np.ndarray
    mouth_y: float
    mouth_width: float
    skin_rgb: np.ndarray
    teeth_rgb: np.ndarray

    def points(self, drop: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(pos, nrm, rgb, ir, mat) of the cavity with the jaw dropped ``drop`` metres."""
        my, mw = self.mouth_y, self.mouth_width
        x, y = self.xw, self.yw
        lat = np.abs(x) < 0.55 * mw
        # Upper teeth show under the upper lip's edge, lower teeth just above the lower lip's.
        upper = lat & (y > my - 0.005) & (y <= my + 0.2 * drop + 0.001)
        lower = lat & (y < my - drop + 0.004) & (y > my - drop - 0.004)
        teeth = upper | lower
        # The cavity is deep (2 cm) and dark: little room light or emitter light gets in.
        recess = np.where(teeth, np.float32(0.009), np.float32(0.022)).astype(np.float32)
        pos = self.pos.copy()
        pos[:, 2] -= recess
        n = pos.shape[0]
        nrm = np.zeros((n, 3), np.float32)
        nrm[:, 2] = 1.0
        interior = (self.skin_rgb * np.array([0.35, 0.09, 0.09]) * 0.3).astype(np.float32)
        rgb = np.where(teeth[:, None], self.teeth_rgb.astype(np.float32), interior).astype(np.float32)
        ir = np.where(teeth, np.float32(0.4), np.float32(0.14)).astype(np.float32)
        # No sheen inside the mouth (the room light does not reach it): the interior takes the
        # matte material; the teeth keep skin's faint sheen.
        mat = np.where(teeth, MAT_SKIN, MAT_CLOTH).astype(np.uint8)
        return pos, nrm, rgb, ir, mat


def eye_centres(idn: Identity) -> list[tuple[float, float]]:
    return [(-idn.eye_half_sep, idn.eye_y), (idn.eye_half_sep, idn.eye_y)]


def _shape(idn: Identity, theta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Undisplaced super-ellipsoid point (X, Y, Z) and the 'front' weight for features."""
    cp = np.cos(phi)
    y = idn.half_height * np.sin(phi)
    # Sagging (age) fills the lower face out: jowls, a less tapered jaw.
    taper = 1.0 - idn.jaw_taper * (1.0 - 0.35 * idn.looks.sag) * _smooth(-0.01, -idn.half_height, y)
    x = idn.half_width * taper * np.sin(theta) * cp
    ct = np.cos(theta) * cp
    z = idn.half_depth * np.sign(ct) * np.abs(ct) ** 0.7
    front = _smooth(0.15, 0.55, np.cos(theta)) * _smooth(-1.2, -0.9, phi)
    return x, y, z, front


def smile_warp(x: np.ndarray, y: np.ndarray, mouth_y: float, mouth_width: float, smile: float) -> tuple[np.ndarray, np.ndarray]:
    """Frontal coordinates whose neutral features appear at (x, y) on a smiling face: the mouth
    widens and its corners rise (the identity for smile = 0)."""
    if smile <= 0.0:
        return x, y
    w = _gauss(x, y, 0.0, mouth_y, 0.04, 0.02)
    xw = x / (1.0 + 0.15 * smile * w)
    yw = y - smile * 0.006 * np.minimum((xw / mouth_width) ** 2, 1.6) * w
    return xw, yw


def _fold(idn: Identity, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Nasolabial folds: creases from the nose wings down and out to beyond the mouth corners (0..1)."""
    ax = np.abs(x)
    top_y, bottom_y = -0.024, idn.mouth_y - 0.006
    t = np.clip((top_y - y) / (top_y - bottom_y), 0.0, 1.0)
    centre_x = idn.nose_width * 0.7 + 0.004 + (idn.mouth_width + 0.006 - idn.nose_width * 0.7 - 0.004) * t**0.8
    along = _smooth(top_y + 0.004, top_y - 0.002, y) * _smooth(bottom_y - 0.008, bottom_y + 0.002, y)
    return np.exp(-0.5 * ((ax - centre_x) / 0.0018) ** 2) * along


def _forehead_lines(idn: Identity, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Horizontal forehead creases and crow's feet (0..1), for older faces."""
    ax = np.abs(x)
    phase = (idn.looks.seed % 1000) / 1000.0 * 6.283
    base = idn.eye_y + 0.035
    wavy = y - 0.0015 * np.sin(x * 90.0 + phase)
    lines = np.zeros_like(x)
    for k in range(3):
        lines = np.maximum(lines, np.exp(-0.5 * ((wavy - base - 0.009 * k) / 0.0006) ** 2))
    lines *= _smooth(0.05, 0.03, ax) * _smooth(idn.eye_y + 0.028, idn.eye_y + 0.032, y)
    # Crow's feet: short rays from the outer eye corners.
    corner_x = idn.eye_half_sep + idn.eye_width + 0.003
    dx, dy = ax - corner_x, y - idn.eye_y
    r = np.sqrt(dx**2 + dy**2)
    rays = np.cos(np.arctan2(dy, np.maximum(dx, 1e-6)) * 9.0 + phase) ** 8
    feet = rays * _smooth(0.001, 0.003, r) * _smooth(0.014, 0.008, r) * (dx > 0)
    return np.maximum(lines, feet)


def _relief(idn: Identity, x: np.ndarray, y: np.ndarray, smile: float = 0.0) -> np.ndarray:
    """Facial relief along +z (metres) at frontal coordinates (x, y) (already smile-warped);
    ``smile`` adds the raised cheeks and deeper folds of a smile."""
    ax = np.abs(x)
    h = np.zeros_like(x)
    looks = idn.looks
    if smile > 0.0:
        h += smile * 0.0035 * _gauss(ax, y, 0.036, idn.eye_y - 0.034, 0.013, 0.012)
    if smile > 0.0 or looks.wrinkles > 0.0:
        h -= (0.0012 * smile + 0.0008 * looks.wrinkles) * _fold(idn, x, y)
    if looks.wrinkles > 0.0:
        h -= 0.0003 * looks.wrinkles * _forehead_lines(idn, x, y)
    if looks.sag > 0.0:
        h += looks.sag * 0.003 * _gauss(ax, y, 0.05, idn.mouth_y - 0.022, 0.012, 0.012)  # jowls
        h += looks.sag * 0.0015 * _gauss(ax, y, idn.eye_half_sep, idn.eye_y - 0.013, 0.011, 0.004)  # eye bags
        h -= looks.sag * 0.002 * _gauss(ax, y, 0.042, idn.eye_y - 0.03, 0.018, 0.014)  # cheeks descend
    # Flatten the forehead/face front a little and push the lower face forward (a real face is
    # flatter than an ellipsoid and its mouth and chin stand further out).
    h += 0.016 * _gauss(x, y, 0.0, -0.06, 0.034, 0.03)
    h += idn.chin_bulge * _gauss(x, y, 0.0, -0.088, 0.017, 0.011)
    # Brow ridge and cheekbones.
    h += 0.006 * _gauss(ax, y, 0.025, idn.eye_y + 0.022, 0.03, 0.008)
    h += 0.005 * _gauss(ax, y, 0.042, idn.eye_y - 0.03, 0.018, 0.014)
    # Eye sockets.
    h -= idn.socket_depth * _gauss(ax, y, idn.eye_half_sep, idn.eye_y, 0.016, 0.011)
    # Nose: a ridge rising from the nasion to the tip, then falling fast to the base.
    nasion_y, tip_y = idn.eye_y + 0.005, -0.024
    t = np.clip((nasion_y - y) / (nasion_y - tip_y), 0.0, 1.0)
    below = np.clip((tip_y - y) / 0.009, 0.0, 1.0)
    profile = (0.25 + 0.75 * t**1.2) * (1.0 - below**1.5) * _smooth(nasion_y + 0.012, nasion_y - 0.002, y)
    width = 0.0045 + (idn.nose_width * 0.42) * t**1.5
    h += idn.nose_protrusion * profile * np.exp(-0.5 * (x / width) ** 2)
    # Nose wings.
    h += 0.006 * _gauss(ax, y, idn.nose_width * 0.55, tip_y - 0.003, 0.0045, 0.004)
    # Lips.
    h += idn.lip_thickness * 0.8 * _gauss(x, y, 0.0, idn.mouth_y + 0.003, idn.mouth_width * 0.75, 0.0045)
    h += idn.lip_thickness * 0.8 * _gauss(x, y, 0.0, idn.mouth_y - 0.005, idn.mouth_width * 0.7, 0.005)
    return h


def _cornea(idn: Identity, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Corneal bulge (m) over both irises: a spherical cap, where the glint comes from."""
    out = np.zeros_like(x)
    base = np.sqrt(CORNEA_RADIUS**2 - IRIS_RADIUS**2)
    for ex, ey in eye_centres(idn):
        r2 = (x - ex) ** 2 + (y - ey) ** 2
        cap = np.sqrt(np.clip(CORNEA_RADIUS**2 - r2, 0.0, None)) - base
        out = np.maximum(out, np.clip(cap, 0.0, None))
    return out


def _eye_masks(idn: Identity, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Soft eye-opening coverage (0..1) and per-eye signed 'inside' distances."""
    total = np.zeros_like(x)
    insides = []
    for ex, ey in eye_centres(idn):
        dx = (x - ex) / idn.eye_width
        # Almond: the upper lid arches higher than the lower; the outer corner sits a bit higher.
        lift = 0.0012 * np.sign(ex) * (x - ex) / idn.eye_width
        dy = y - ey - lift
        shape = np.clip(1.0 - dx**2, 0.0, None)
        top = idn.eye_open * shape**0.8
        bottom = -0.7 * idn.eye_open * shape**0.9
        inside = np.minimum(top - dy, dy - bottom)
        inside = np.where(np.abs(dx) < 1.0, inside, -0.01)
        insides.append(inside)
        total = np.maximum(total, _soft_inside(inside, 0.0005))
    return total, insides


def _blotch(idn: Identity, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Low-frequency skin variation: a few random waves, -1..1."""
    rng = np.random.default_rng(idn.blotch_seed)
    blotch = np.zeros_like(x)
    for _ in range(6):
        k = rng.uniform(60, 220, 2) * rng.choice([-1, 1], 2)
        blotch += np.sin(k[0] * x + k[1] * y + rng.uniform(0, 6.3))
    return blotch / 2.5


def _age_spots(idn: Identity, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Age spots (lentigines) on the forehead, temples and cheeks (0..1)."""
    spots = np.zeros_like(x)
    if idn.looks.spots <= 0:
        return spots
    rng = np.random.default_rng(idn.looks.seed)
    for _ in range(idn.looks.spots):
        cx, cy = rng.uniform(-0.062, 0.062), rng.uniform(idn.mouth_y, idn.eye_y + 0.06)
        if abs(cx) < 0.02 and cy < idn.eye_y + 0.02:  # not on the nose or between the eyes
            cx = np.sign(cx + 1e-9) * rng.uniform(0.035, 0.06)
        r = rng.uniform(0.0015, 0.004)
        spots = np.maximum(spots, rng.uniform(0.5, 1.0) * _gauss(x, y, cx, cy, r, r * rng.uniform(0.7, 1.3)))
    return spots


def _paint(idn: Identity, x: np.ndarray, y: np.ndarray, hair_cov: np.ndarray, blotch: np.ndarray, smile: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rgb open, ir open, cornea coverage, rgb closed, ir closed, eye-region mask)."""
    skin = np.array(idn.skin_rgb, dtype=np.float64)
    looks = idn.looks
    ax = np.abs(x)
    # Skin variation (stronger texture with age), redder cheeks, darker under the eyes.
    shade = 1.0 + (0.025 + 0.03 * looks.wrinkles) * blotch
    rgb = skin[None, None, :] * shade[..., None]
    cheek = _gauss(ax, y, 0.04, idn.eye_y - 0.035, 0.017, 0.014)
    rgb = rgb * (1.0 + cheek[..., None] * np.array([0.08, -0.06, -0.04]))
    under_eye = _gauss(ax, y, idn.eye_half_sep, idn.eye_y - 0.012, 0.012, 0.005)
    lid = _gauss(ax, y, idn.eye_half_sep, idn.eye_y + 0.008, 0.015, 0.0045)
    rgb = rgb * (1.0 - (0.12 + 0.1 * looks.sag) * under_eye - 0.28 * lid)[..., None]
    ir_age = np.ones_like(x)
    if looks.spots > 0:
        # Melanin absorbs visible light strongly and NIR hardly at all.
        spot = _age_spots(idn, x, y)
        rgb = rgb * (1.0 - spot[..., None] * np.array([0.25, 0.38, 0.5]))
        ir_age = ir_age * (1.0 - 0.04 * spot)
    if looks.foundation > 0:
        # Foundation evens and tints the skin's colour; it is nearly transparent in NIR.
        even = skin * np.asarray(looks.foundation_tint) * (1.0 + 0.006 * blotch)[..., None] * (1.0 - 0.28 * lid)[..., None]
        rgb = rgb * (1.0 - looks.foundation) + looks.foundation * even
    if looks.eye_makeup > 0:
        shadow = _gauss(ax, y, idn.eye_half_sep + 0.002, idn.eye_y + 0.008, 0.017, 0.006) * 0.6 * looks.eye_makeup
        rgb = rgb * (1.0 - shadow[..., None]) + shadow[..., None] * np.asarray(looks.shadow_rgb)
    if looks.wrinkles > 0.0 or smile > 0.0:
        # Creases darken the room-lit colour; the emitter beside the lens casts little shadow into them.
        crease = (0.25 * smile + 0.18 * looks.wrinkles) * _fold(idn, x, y)
        if looks.wrinkles > 0.0:
            crease = crease + 0.22 * looks.wrinkles * _forehead_lines(idn, x, y)
        rgb = rgb * (1.0 - crease)[..., None]
        ir_age = ir_age * (1.0 - 0.35 * crease)
    # Ambient occlusion baked into the albedo (room light reaches deep places less): eye sockets,
    # beside the nose, under the nose and lower lip. It makes the face read at low resolution.
    ao = 0.40 * _gauss(ax, y, idn.eye_half_sep - 0.002, idn.eye_y + 0.002, 0.016, 0.011)
    ao += 0.18 * _gauss(ax, y, idn.nose_width * 0.75, -0.012, 0.006, 0.016)
    ao += 0.25 * _gauss(x, y, 0.0, -0.036, 0.012, 0.003)
    ao += 0.22 * _gauss(x, y, 0.0, idn.mouth_y - 0.014, 0.014, 0.004)
    ao += 0.12 * _gauss(ax, y, idn.mouth_width + 0.004, idn.mouth_y, 0.004, 0.006)
    rgb = rgb * np.clip(1.0 - ao, 0.35, 1.0)[..., None]
    if idn.beard > 0:
        jaw = _smooth(idn.mouth_y + 0.018, idn.mouth_y - 0.002, y) * _smooth(0.07, 0.05, ax)
        rgb = rgb * (1.0 - idn.beard * 0.45 * jaw)[..., None] + idn.beard * 0.3 * jaw[..., None] * np.array(idn.hair_rgb)
    ir = np.full_like(x, idn.skin_ir) * (1.0 + 0.01 * blotch) * ir_age
    if idn.beard > 0:
        # Beard hair absorbs the emitter's pattern like scalp hair does.
        ir = ir * (1.0 - jaw * idn.beard) + jaw * idn.beard * idn.hair_ir

    def put(cov: np.ndarray, colour: np.ndarray | tuple, ir_value: float | np.ndarray | None = None) -> None:
        nonlocal rgb, ir
        c = cov[..., None]
        rgb = rgb * (1.0 - c) + c * np.asarray(colour)
        if ir_value is not None:
            ir = ir * (1.0 - cov) + cov * ir_value

    # Eyebrows: arches above the eyes, thicker towards the nose.
    for ex, _ in eye_centres(idn):
        dx = (x - ex) * np.sign(ex)
        u = dx / 0.022
        centre_y = idn.eye_y + 0.017 + 0.005 * (1.0 - u**2) - 0.002 * u
        half = idn.brow_thickness * (0.65 - 0.25 * u) * 0.9
        inside = np.minimum(half - np.abs(y - centre_y), 0.022 - np.abs(dx + 0.001))
        put(_soft_inside(inside, 0.0012) * 0.9, idn.brow_rgb, idn.hair_ir)
    # Lips and the dark mouth line.
    my, mw = idn.mouth_y, idn.mouth_width
    u = np.clip(1.0 - (x / mw) ** 2, 0.0, None)
    bow = 1.0 - 0.35 * np.exp(-0.5 * (x / 0.003) ** 2)
    upper = np.minimum(idn.lip_thickness * 0.85 * u**0.6 * bow - (y - my), (y - my))
    lower = np.minimum(idn.lip_thickness * 1.1 * u**0.7 - (my - y), (my - y))
    lip_cov = _soft_inside(np.maximum(upper, lower), 0.0009) * (np.abs(x) < mw)
    put(lip_cov, idn.lip_rgb, idn.skin_ir * 0.92)
    if looks.lipstick > 0:
        put(lip_cov * looks.lipstick, looks.lipstick_rgb)  # colour only: lipstick dyes pass NIR
    line = _soft_inside(0.0006 * u**0.5 - np.abs(y - my), 0.0007) * (np.abs(x) < mw * 0.97)
    put(line * 0.85, np.array(idn.lip_rgb) * 0.15, idn.skin_ir * 0.4)
    # Nostrils.
    for sx in (-1.0, 1.0):
        nostril = 1.0 - ((x - sx * 0.0068) / 0.0033) ** 2 - ((y - (-0.0315)) / 0.0018) ** 2
        put(np.clip(nostril * 3.0, 0.0, 1.0) * 0.9, skin * 0.12, 0.12)

    # Hair (scalp, temples) painted last over skin, except where the face is.
    put(hair_cov, idn.hair_rgb, idn.hair_ir)

    rgb_closed, ir_closed = rgb.copy(), ir.copy()
    eye_cov, insides = _eye_masks(idn, x, y)
    cornea_cov = np.zeros_like(x)
    sclera = np.array([0.7, 0.66, 0.62]) * (0.85 + 0.15 * (1.0 - idn.skin_tone))
    eye_rgb = np.broadcast_to(sclera, rgb.shape).copy()
    eye_ir = np.full_like(x, 0.62)
    for (ex, ey), inside in zip(eye_centres(idn), insides):
        r = np.sqrt((x - ex) ** 2 + (y - ey + 0.0004) ** 2)
        iris = _soft_inside(IRIS_RADIUS - r, 0.0007)
        ring = 1.0 - 0.7 * _smooth(IRIS_RADIUS * 0.65, IRIS_RADIUS, r)
        iris_col = np.asarray(idn.iris_rgb)[None, None, :] * ring[..., None]
        eye_rgb = eye_rgb * (1.0 - iris[..., None]) + iris[..., None] * iris_col
        eye_ir = eye_ir * (1.0 - iris) + iris * 0.32
        pupil = _soft_inside(PUPIL_RADIUS - r, 0.0006)
        eye_rgb = eye_rgb * (1.0 - pupil[..., None]) + pupil[..., None] * 0.004
        eye_ir = eye_ir * (1.0 - pupil) + pupil * 0.03
        cornea_cov = np.maximum(cornea_cov, (r < IRIS_RADIUS * 1.05) * (inside > 0))
        # Shadow and lashes under the upper lid.
        lash = _soft_inside(0.0011 - np.abs(inside - 0.0003), 0.0006) * (y > ey - 0.0005)
        eye_rgb = eye_rgb * (1.0 - 0.85 * lash[..., None]) + 0.85 * lash[..., None] * 0.01
        eye_ir = eye_ir * (1.0 - 0.6 * lash) + 0.6 * lash * 0.12
    # Eye outline (lash line) drawn on the skin side too, so the eye reads at low resolution.
    outline = np.zeros_like(x)
    for (ex, ey), inside in zip(eye_centres(idn), insides):
        outline = np.maximum(outline, _soft_inside(0.0016 - np.abs(inside), 0.0008) * (0.5 + 0.5 * (y > ey - 0.001)))
    rgb = rgb * (1.0 - eye_cov[..., None]) + eye_cov[..., None] * eye_rgb
    ir = ir * (1.0 - eye_cov) + eye_cov * eye_ir
    rgb = rgb * (1.0 - 0.9 * outline[..., None]) + 0.9 * outline[..., None] * 0.008
    ir = ir * (1.0 - 0.4 * outline) + 0.4 * outline * 0.15
    if looks.eye_makeup > 0:
        # Eyeliner and mascara: a wider dark line above the eye, in colour only (iron-oxide
        # pigments are nearly transparent in NIR).
        liner = np.zeros_like(x)
        for (ex, ey), inside in zip(eye_centres(idn), insides):
            liner = np.maximum(liner, _soft_inside(0.0026 - np.abs(inside), 0.0008) * (y > ey - 0.0005) * (1.0 - eye_cov))
        liner *= 0.85 * looks.eye_makeup
        rgb = rgb * (1.0 - liner[..., None]) + liner[..., None] * 0.01
    # Closed lids: skin with a lash line across the middle.
    for (ex, ey), inside in zip(eye_centres(idn), insides):
        dx = (x - ex) / idn.eye_width
        closed_line = _soft_inside(0.0007 - np.abs(y - ey + 0.0015 * (1 - dx**2)), 0.0006) * (np.abs(dx) < 1.0)
        rgb_closed = rgb_closed * (1.0 - 0.8 * closed_line[..., None]) + 0.8 * closed_line[..., None] * 0.01
        ir_closed = ir_closed * (1.0 - 0.4 * closed_line) + 0.4 * closed_line * 0.15
    rgb_closed *= (1.0 - 0.08 * eye_cov)[..., None]
    # Glasses: frames painted on (no lens geometry).
    if idn.glasses:
        frame = np.zeros_like(x)
        for ex, ey in eye_centres(idn):
            dx, dy = np.abs(x - ex), np.abs(y - ey - 0.002)
            # Rounded rectangle (superellipse) rims.
            box = ((dx / 0.023) ** 4 + (dy / 0.016) ** 4) ** 0.25
            frame = np.maximum(frame, _soft_inside(0.0012 - np.abs(box - 1.0) * 0.02, 0.0007))
        bridge = _soft_inside(0.0012 - np.abs(y - idn.eye_y - 0.006), 0.0006) * (ax < idn.eye_half_sep - 0.02)
        frame = np.maximum(frame, bridge)
        c = frame[..., None]
        for arr_rgb, arr_ir in ((rgb, ir), (rgb_closed, ir_closed)):
            arr_rgb *= 1.0 - c
            arr_rgb += c * np.asarray(idn.glasses_rgb)
            arr_ir *= 1.0 - frame
            arr_ir += frame * 0.25
    region = np.zeros(x.shape, dtype=bool)
    for ex, ey in eye_centres(idn):
        region |= (np.abs(x - ex) < idn.eye_width * 1.2) & (np.abs(y - ey) < 0.009)
    return rgb, ir, cornea_cov, rgb_closed, ir_closed, region


def _hair_coverage(idn: Identity, theta: np.ndarray, x: np.ndarray, y: np.ndarray, soft: float = 0.004) -> np.ndarray:
    """Where hair covers the head: above a hairline that drops towards the temples and the back."""
    side = _smooth(0.5, 1.25, np.abs(theta))  # 0 at the face, 1 beside and behind it
    line = idn.hairline_y - 0.045 * _smooth(0.035, 0.07, np.abs(x)) - 0.03 * side
    if idn.long_hair:
        # Hair down beside the face to the jaw and behind it.
        line = line - 0.17 * _smooth(0.8, 1.1, np.abs(theta))
    if idn.bald:
        line = np.maximum(line, 0.105 - 0.07 * side)
    return _smooth(-soft / 2, soft / 2, y - line)


def _hair_over_face(idn: Identity, theta: np.ndarray, x: np.ndarray, y: np.ndarray, soft: float = 0.002) -> np.ndarray:
    """Hair hanging over the face (0..1): a fringe over the forehead, long hair over the outer
    cheeks. Strand tips make the lower edge ragged."""
    looks = idn.looks
    cover = np.zeros_like(x)
    if looks.fringe:
        phase = (looks.seed % 997) / 997.0 * 6.283
        tips = 0.0025 * np.sin(x / 0.006 + phase) + 0.0015 * np.sin(x / 0.0023 + 2.0 * phase)
        bottom = idn.eye_y + looks.fringe_bottom + tips + 0.25 * x**2 / 0.06  # shorter at the sides
        across = _smooth(looks.fringe_half_width, looks.fringe_half_width - 0.012, np.abs(x))
        cover = np.maximum(cover, _smooth(-soft / 2, soft / 2, y - bottom) * across * (np.cos(theta) > 0.3))
    if looks.hair_over_cheeks > 0.0:
        start = looks.hair_over_cheeks + 0.02 * np.sin(y / 0.008)
        down = _smooth(-0.115, -0.09, y)  # down to about the jaw
        cover = np.maximum(cover, _smooth(start, start + 0.08, np.abs(theta)) * down)
    return cover


JAW_BACK = 0.15  # the chin moves back this much per metre it drops (the jaw turns about the ears)
UPPER_LIP_LIFT = 0.2  # the upper lip rises this much per metre of jaw drop


def _jaw_weights(idn: Identity, x: np.ndarray, y: np.ndarray, z: np.ndarray, xw: np.ndarray, yw: np.ndarray) -> np.ndarray:
    """(N, 3) displacement per metre of jaw drop of head points at (x, y, z), whose smile-warped
    frontal coordinates are (xw, yw). The lower lip, chin and jaw move down and a little back; the
    upper lip rises a little; the lips part only between the mouth corners (the surface is torn
    there, the cavity fills the gap), everywhere else the skin stretches."""
    mw, my = idn.mouth_width, idn.mouth_y
    # The gap between the lips is lens-shaped: widest in the middle, closed at the corners.
    lat_m = np.sqrt(np.clip(1.0 - (xw / (1.02 * mw)) ** 2, 0.0, 1.0))
    lat_jaw = _smooth(0.072, 0.04, np.abs(x))
    below = yw < my
    in_front = _smooth(0.02, 0.07, z)  # the throat and the back of the head stay put
    down = lat_jaw * (lat_m + (1.0 - lat_m) * _smooth(0.0, 0.02, my - yw)) * in_front
    down = np.where(below, down, 0.0)
    up = np.where(below, 0.0, lat_m * _smooth(0.02, 0.0, yw - my) * in_front)
    vec = np.zeros(x.shape + (3,))
    vec[..., 1] = -down + UPPER_LIP_LIFT * up
    vec[..., 2] = -JAW_BACK * down
    return vec


def build_head(idn: Identity, spacing_m: float, smile: float = 0.0, mouth: bool = False) -> HeadModel:
    """Sample the head with about ``spacing_m`` between neighbouring points.

    ``smile`` (0..1) bends the face into a smile (expression.py); ``mouth`` prepares the jaw drop
    and the mouth cavity (sessions whose mouth opens)."""
    spacing_m = float(np.clip(spacing_m, 0.00025, 0.004))
    smile = float(np.clip(smile, 0.0, 1.0))
    if smile > 0.0:
        idn = replace(idn, eye_open=idn.eye_open * (1.0 - 0.25 * smile))  # smiling eyes narrow
    n_theta = int(np.ceil((THETA_RANGE[1] - THETA_RANGE[0]) * 0.085 / spacing_m)) + 1
    n_phi = int(np.ceil((PHI_RANGE[1] - PHI_RANGE[0]) * 0.105 / spacing_m)) + 1
    theta = np.linspace(*THETA_RANGE, n_theta)
    phi = np.linspace(*PHI_RANGE, n_phi)[::-1]  # row 0 = top of the head
    tt, pp = np.meshgrid(theta, phi)
    x, y, z, front = _shape(idn, tt, pp)
    hair_over = _hair_over_face(idn, tt, x, y)
    hair_cov = np.maximum(_hair_coverage(idn, tt, x, y), hair_over)
    # Ears: rounded outward bumps beside the head, from brow to nose-base height.
    ear = idn.ear_size * np.exp(-0.5 * ((np.abs(tt) - 1.5) / 0.12) ** 2 - 0.5 * ((y - (idn.eye_y - 0.012)) / 0.016) ** 4)
    hair_cov = hair_cov * (1.0 - _smooth(0.002, 0.006, ear))
    # Hair volume rises over a few centimetres above the hairline (no cliff at the hairline).
    hair_lift = _hair_coverage(idn, tt, x, y, soft=0.025)
    # Facial features live in the front of the head: evaluate them there only (speed).
    sel = (np.abs(x) < 0.08) & (y > -0.125) & (y < 0.09) & (np.cos(tt) > 0.2)
    xs0, ys0 = x[sel], y[sel]
    # Features are evaluated at smile-warped frontal coordinates (identity without a smile).
    xs, ys = smile_warp(xs0, ys0, idn.mouth_y, idn.mouth_width, smile)
    relief = np.zeros_like(x)
    relief[sel] = _relief(idn, xs, ys, smile) * front[sel]
    eye_cov_s, _ = _eye_masks(idn, xs, ys)
    cornea = np.zeros_like(x)
    cornea[sel] = _cornea(idn, xs, ys) * np.clip(eye_cov_s * 1.5, 0.0, 1.0) * front[sel]
    z = z + relief + cornea
    lens = np.zeros(x.shape, bool)
    if idn.glasses:
        # Real lenses: a convex shell ~1 cm in front of the eyes. They pass the eye's look (no
        # refraction modelled) but mirror the emitter: a NIR glare spot where they face the camera.
        lens_s = np.zeros(xs.shape, bool)
        r2 = np.full(xs.shape, np.inf)
        for ex, ey in eye_centres(idn):
            dx, dy = np.abs(xs - ex), np.abs(ys - ey - 0.002)
            inside = ((dx / 0.0225) ** 4 + (dy / 0.0155) ** 4) < 1.0
            lens_s |= inside
            r2 = np.where(inside, (xs - ex) ** 2 + (ys - ey) ** 2, r2)
        lens[sel] = lens_s
        if lens_s.any():
            zs = z[sel]
            front = float(zs[lens_s].max()) + 0.004
            zs = np.where(lens_s, front - r2 / (2 * 0.09), zs)
            z[sel] = zs
    # Hair volume and ears push the surface outwards, radially.
    radius = np.sqrt(x**2 + y**2 + z**2) + 1e-9
    hat_lift = _smooth(idn.hairline_y + 0.0, idn.hairline_y + 0.02, y) * 0.012 if idn.hat else 0.0
    # A fringe or hair over the cheeks lies on the skin: a few millimetres thick.
    hair_on_face = _smooth(0.0, 0.6, hair_over) * min(idn.hair_volume, 0.006)
    grow = 1.0 + (np.maximum(idn.hair_volume * hair_lift, hair_on_face) + ear + hat_lift) / radius
    pos = np.stack([x * grow, y * grow, z * grow], axis=-1)
    # Normals from the grid (theta grows to the right, phi rows go downwards).
    d_theta = np.gradient(pos, axis=1)
    d_phi = np.gradient(pos, axis=0)
    nrm = np.cross(d_theta, d_phi)
    nrm /= np.linalg.norm(nrm, axis=-1, keepdims=True) + 1e-12
    flip = np.sum(nrm * pos, axis=-1) < 0
    nrm[flip] *= -1.0
    blotch = _blotch(idn, x, y)
    skin = np.asarray(idn.skin_rgb)
    hc = hair_cov[..., None]
    rgb = (skin * (1.0 + 0.025 * blotch)[..., None]) * (1.0 - hc) + hc * np.asarray(idn.hair_rgb)
    ir = idn.skin_ir * (1.0 + 0.01 * blotch) * (1.0 - hair_cov) + hair_cov * idn.hair_ir
    rgb_s, ir_s, cornea_cov_s, rgb_c_s, ir_c_s, region_s = _paint(idn, xs, ys, hair_cov[sel], blotch[sel], smile)
    rgb[sel], ir[sel] = rgb_s, ir_s
    rgb_c, ir_c = rgb.copy(), ir.copy()
    rgb_c[sel], ir_c[sel] = rgb_c_s, ir_c_s
    cornea_cov = np.zeros_like(x)
    cornea_cov[sel] = cornea_cov_s
    region = np.zeros(x.shape, bool)
    region[sel] = region_s
    mat = np.where(cornea_cov > 0.5, MAT_CORNEA, np.where(hair_cov > 0.5, MAT_HAIR, MAT_SKIN)).astype(np.uint8)
    mat[lens] = MAT_GLASS
    if idn.hat:
        # A hat over the scalp: cloth colour and NIR, no hair showing there.
        hat = _smooth(idn.hairline_y + 0.008, idn.hairline_y + 0.02, y)
        for arr in (rgb, rgb_c):
            arr *= (1.0 - hat)[..., None]
            arr += hat[..., None] * np.asarray(idn.hat_rgb)
        ir = ir * (1.0 - hat) + hat * idn.hat_ir
        ir_c = ir_c * (1.0 - hat) + hat * idn.hat_ir
        mat[hat > 0.5] = MAT_CLOTH
    rgb[lens] *= 0.92
    rgb_c[lens] *= 0.92
    eye_idx = np.flatnonzero(region.reshape(-1))

    def lm(px: float, py: float) -> np.ndarray:
        """Surface point in front of frontal coordinates (px, py) (features of the neutral face;
        the smile moves only the mouth corners, which no landmark sits on)."""
        th = np.arcsin(np.clip(px / (idn.half_width * 0.999), -1, 1))
        ph = np.arcsin(np.clip(py / idn.half_height, -1, 1))
        for _ in range(3):  # refine for the jaw taper and the latitude factor
            xx, yy, zz, fr = _shape(idn, np.array([th]), np.array([ph]))
            th = th + (px - xx[0]) / (idn.half_width * max(np.cos(th) * np.cos(ph), 0.2))
        xx, yy, zz, fr = _shape(idn, np.array([th]), np.array([ph]))
        wx, wy = smile_warp(xx, yy, idn.mouth_y, idn.mouth_width, smile)
        zr = zz + _relief(idn, wx, wy, smile) * fr + _cornea(idn, wx, wy) * fr
        return np.array([xx[0], yy[0], zr[0]])

    landmarks = {
        "eye_r": lm(-idn.eye_half_sep, idn.eye_y),  # subject's right eye: image left
        "eye_l": lm(idn.eye_half_sep, idn.eye_y),
        "nose_tip": lm(0.0, -0.024),
        "mouth": lm(0.0, idn.mouth_y),
        "chin": lm(0.0, -0.1),
        "cheek_r": lm(-0.045, idn.eye_y - 0.03),
        "cheek_l": lm(0.045, idn.eye_y - 0.03),
        "brow": lm(0.0, idn.eye_y + 0.025),
    }
    # Detector-style box: brow-to-chin, cheek-to-cheek (calibrated against BlazeFace).
    contour = np.array(
        [lm(px, py) for px, py in (
            (-0.062, idn.eye_y), (0.062, idn.eye_y), (-0.058, idn.mouth_y), (0.058, idn.mouth_y),
            (0.0, idn.eye_y + 0.032), (-0.03, idn.eye_y + 0.03), (0.03, idn.eye_y + 0.03), (0.0, -0.1),
            (-0.03, -0.094), (0.03, -0.094),
        )]
    )
    jaw_idx = np.zeros(0, np.int64)
    jaw_vec = np.zeros((0, 3), np.float32)
    contour_jaw, landmark_jaw, cavity = None, {}, None
    if mouth:
        xw_all, yw_all = x.copy(), y.copy()
        xw_all[sel], yw_all[sel] = xs, ys
        vec = _jaw_weights(idn, x, y, z, xw_all, yw_all).reshape(-1, 3)
        jaw_idx = np.flatnonzero(np.abs(vec).max(axis=1) > 1e-4)
        jaw_vec = vec[jaw_idx].astype(np.float32)

        def jaw_of(p: np.ndarray) -> np.ndarray:
            pw = smile_warp(p[:, 0], p[:, 1], idn.mouth_y, idn.mouth_width, smile)
            return _jaw_weights(idn, p[:, 0], p[:, 1], p[:, 2], *pw).astype(np.float32)

        contour_jaw = jaw_of(contour)
        landmark_jaw = {k: jaw_of(v[None, :])[0] for k, v in landmarks.items()}
        # The mouth landmark sits on the lip line: it follows the middle of the gap.
        landmark_jaw["mouth"] = np.array([0.0, (UPPER_LIP_LIFT - 1.0) / 2.0, -JAW_BACK / 2.0], np.float32)
        flat_pos = pos.reshape(-1, 3)
        zone = sel & (np.abs(xw_all) < idn.mouth_width * 1.05) & (yw_all > idn.mouth_y - 0.03) & (yw_all < idn.mouth_y + 0.009)
        zi = np.flatnonzero(zone.reshape(-1))
        cavity = MouthCavity(pos=flat_pos[zi].astype(np.float32), xw=xw_all.reshape(-1)[zi], yw=yw_all.reshape(-1)[zi],
                             mouth_y=idn.mouth_y, mouth_width=idn.mouth_width, skin_rgb=np.asarray(idn.skin_rgb),
                             teeth_rgb=np.array([0.3, 0.28, 0.22]))  # in the mouth's shade
    return HeadModel(
        pos=pos.reshape(-1, 3).astype(np.float32),
        nrm=nrm.reshape(-1, 3).astype(np.float32),
        rgb=rgb.reshape(-1, 3).astype(np.float32),
        ir=ir.reshape(-1).astype(np.float32),
        mat=mat.reshape(-1),
        eye_idx=eye_idx,
        rgb_closed=rgb_c.reshape(-1, 3)[eye_idx].astype(np.float32),
        ir_closed=ir_c.reshape(-1)[eye_idx].astype(np.float32),
        landmarks=landmarks,
        contour=contour,
        jaw_idx=jaw_idx,
        jaw_vec=jaw_vec,
        contour_jaw=contour_jaw,
        landmark_jaw=landmark_jaw,
        cavity=cavity,
    )
