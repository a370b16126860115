"""Presentation attacks: prints (flat, curved, with cut-outs), screen replay and rigid 3D masks.

The attack content is a photograph of an identity that usually differs from the attacker's own
(so a model cannot separate classes by who is shown). The attacker is a live person rig: their
real skin, eyes (with glints and blinks) and depth show through cut-outs and around masks.
"""
from __future__ import annotations

import cv2
import numpy as np

from sdk.sim.content import FrameContent
from sdk.sim.face import MAT_PAPER, MAT_PLASTIC, MAT_SCREEN, MAT_SKIN, build_head
from sdk.sim.geometry import transform
from sdk.sim.identity import Identity, apply_appearance, random_identity, srgb_to_linear
from sdk.sim.live import identity_for
from sdk.sim.person import HeadPose, PersonRig
from sdk.sim.photo import Photo, render_photo
from sdk.sim.render import Points, View
from sdk.sim.rng import make_rng
from sdk.sim.scenarios import ScenarioSpec
from sdk.sim.scene import FLIP, random_motion, rotation

#: Share of attacks whose content shows the attacker's own face (CASIA-SURF subjects held
#: prints of their own face; other attackers show someone else).
SAME_IDENTITY_RATE = 0.5


def content_identity(rng: np.random.Generator, attacker_seed: int, appearance: str | None = None) -> tuple[Identity, bool]:
    if rng.random() < SAME_IDENTITY_RATE:
        return identity_for(attacker_seed, appearance), True
    key = int(rng.integers(2**62))
    idn = random_identity(make_rng("content-identity", key))
    return apply_appearance(idn, appearance, make_rng("content-appearance", key)), False


def _grid(nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """Texel-centre coordinates in [0, 1] of an ny x nx grid (row 0 at the top)."""
    s = (np.arange(nx, dtype=np.float32) + 0.5) / nx
    t = (np.arange(ny, dtype=np.float32) + 0.5) / ny
    return np.meshgrid(s, t)


def capsule_points(p0: np.ndarray, p1: np.ndarray, radius: float, spacing: float, rgb: tuple, ir: float) -> Points:
    """A finger: cylinder from p0 to p1 (camera frame), with a rounded tip at p1."""
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    a = axis / length
    side = np.cross(a, [0.0, 0.0, 1.0])
    if np.linalg.norm(side) < 1e-6:
        side = np.cross(a, [0.0, 1.0, 0.0])
    side /= np.linalg.norm(side)
    up = np.cross(a, side)
    n_len = max(2, int(length / spacing))
    n_ang = max(8, int(2 * np.pi * radius / spacing))
    l = np.linspace(0.0, length, n_len)
    ang = np.linspace(0.0, 2 * np.pi, n_ang, endpoint=False)
    ll, aa = np.meshgrid(l, ang)
    # Narrow towards the tip so it reads as a finger, not a pipe.
    rr = radius * np.sqrt(np.clip(1.0 - np.clip((ll - (length - radius)) / radius, 0.0, 1.0) ** 2, 0.05, 1.0))
    nrm = np.cos(aa)[..., None] * side + np.sin(aa)[..., None] * up
    pos = p0 + ll[..., None] * a + rr[..., None] * nrm
    n = pos.shape[0] * pos.shape[1]
    return Points(pos.reshape(-1, 3).astype(np.float32), nrm.reshape(-1, 3).astype(np.float32),
                  np.broadcast_to(np.asarray(rgb, np.float32), (n, 3)).copy(), np.full(n, ir, np.float32),
                  np.full(n, MAT_SKIN, np.uint8))


class _Sheet:
    """A printed or displayed rectangle in its own frame (x right, y up, z to the camera),
    origin at the shown face's eye midpoint; optionally bent into a cylinder about a vertical axis."""

    def __init__(self, width: float, height: float, eye_uv: tuple[float, float], radius: float | None):
        self.width, self.height, self.eye_uv, self.radius = width, height, eye_uv, radius

    def local(self, s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points and normals of sheet coordinates s, t in [0, 1] (t = 0 at the top)."""
        x = (s - self.eye_uv[0]) * self.width
        y = -(t - self.eye_uv[1]) * self.height
        xc = (0.5 - self.eye_uv[0]) * self.width  # the bend is symmetric about the sheet's centre
        if self.radius is None:
            pos = np.stack([x, y, np.zeros_like(x)], axis=-1)
            nrm = np.broadcast_to(np.array([0.0, 0.0, 1.0], np.float32), pos.shape)
        else:
            r = self.radius
            alpha = (x - xc) / r
            alpha0 = -xc / r
            px = xc + r * np.sin(alpha)
            pz = -r * (1.0 - np.cos(alpha)) + r * (1.0 - np.cos(alpha0))
            pos = np.stack([px, y, pz], axis=-1)
            nrm = np.stack([np.sin(alpha), np.zeros_like(alpha), np.cos(alpha)], axis=-1)
        return pos.astype(np.float32), np.ascontiguousarray(nrm, dtype=np.float32)


def _print_texture(crop: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """sRGB photo crop -> (linear RGB albedo of the print, NIR albedo of paper and ink)."""
    img = cv2.GaussianBlur(crop.astype(np.float32) / 255.0, (0, 0), float(rng.uniform(0.4, 1.3)))
    lin = srgb_to_linear(img).astype(np.float32)
    lum = lin @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    sat = np.float32(rng.uniform(0.65, 1.15))
    lin = lum[..., None] + (lin - lum[..., None]) * sat
    paper = (rng.uniform(0.72, 0.88) * np.clip(rng.normal(1.0, 0.02, 3), 0.95, 1.05) * np.array([1.0, 0.99, 0.95])).astype(np.float32)
    black = np.float32(rng.uniform(0.015, 0.05))
    lin = black + (paper - black) * np.clip(lin, 0.0, 1.0)
    # Inkjet dyes are nearly transparent in NIR, carbon toner is not: ink strength varies.
    ink = np.float32(rng.uniform(0.05, 0.35) if rng.random() < 0.5 else rng.uniform(0.7, 1.0))
    ir = np.float32(rng.uniform(0.7, 0.9)) * (1.0 - ink * (1.0 - np.clip(lum, 0, 1) ** 0.5))
    return lin.astype(np.float32), ir.astype(np.float32)


def _paper_grain(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Print texture below the camera's resolution: halftone dots are 0.1-0.2 mm apart (invisible
    at ~1 mm per pixel), so what remains is a faint, unstructured grain of the paper and ink."""
    amp = np.float32(rng.uniform(0.005, 0.025))
    return (1.0 + amp * rng.standard_normal(shape).astype(np.float32)).astype(np.float32)


#: Print shapes: a sheet as printed (rectangle), cut along the photographed head's contour, or a
#: small photo that does not cover the attacker's head.
PRINT_SHAPES = ("sheet", "contour", "small")
PRINT_SHAPE_P = (0.3, 0.45, 0.25)
#: Worn cut-outs come in one more shape: a paper mask cut along the face oval (forehead, cheeks,
#: chin), so the attacker's own hair, ears and neck, and the room behind them, show around it.
CUT_SHAPES = ("sheet", "contour", "small", "oval")
CUT_SHAPE_P = (0.15, 0.25, 0.15, 0.45)
#: Share of prints on glossy photo paper (mirror-like glare of the room light and the emitter).
GLOSSY_RATE = 0.3


class PrintScene:
    """Prints (flat or curved), optionally with eyes / nose / mouth cut out, held by an attacker.

    The sheet moves with the attacker's head (a cut-out is worn, a whole print is held up in front
    of it). A cut-out rests on the most protruding feature under its uncut part (nose tip, lips,
    chin) plus a clearance, so no attacker skin is ever nearer than the paper where it is uncut.
    """

    def __init__(self, rng: np.random.Generator, seed: int, view: View, distance_range: tuple[float, float],
                 max_yaw: tuple[float, float], fps: float, spec: ScenarioSpec,
                 appearance: str | None = None, accessories: bool = True):
        self.fps, self.view, self.spec = fps, view, spec
        self.idn = identity_for(seed, appearance)  # the attacker
        self.content_idn, self.same_identity = content_identity(rng, seed, appearance)
        self.photo: Photo = render_photo(self.content_idn, rng)
        cut = spec.cutouts
        self.cutouts = cut
        self.shape = str(rng.choice(CUT_SHAPES, p=CUT_SHAPE_P) if cut else rng.choice(PRINT_SHAPES, p=PRINT_SHAPE_P))
        self.paper_gloss = float(rng.uniform(0.3, 1.0)) if rng.random() < GLOSSY_RATE else 0.0
        # Cut-outs are worn against the face; whole prints are held in front of it, or stand alone.
        self.attacker_visible = bool(cut) or rng.random() < 0.7
        scale = self.idn.interocular_m * (rng.uniform(0.95, 1.05) if cut else rng.uniform(0.8, 1.1))
        # The sheet is tilted a little against the head: keep head yaw + tilt within the yaw range.
        lo, hi = max_yaw
        self.tilt_limit = min(4.0, hi - lo) if lo > 0 else min(4.0, hi)
        self.tilt = rng.normal(0.0, 2.0, 3)
        self.tilt[0] = float(np.clip(self.tilt[0], -self.tilt_limit, self.tilt_limit))
        yaw_range = (min(lo + self.tilt_limit, hi), max(0.0, hi - self.tilt_limit)) if lo > 0 else (0.0, max(0.0, hi - self.tilt_limit))
        # Motion is drawn for the sheet's distance; the attacker stands `gap` behind it (set below).
        motion = random_motion(rng, distance_range, yaw_range, max_pitch=10.0, max_roll=10.0)
        self.rig = PersonRig(self.idn, motion, view, rng, min_distance=motion.distance + (0.0 if cut else 0.03),
                             accessories=accessories)
        ph = self.photo
        iod = ph.interocular_px
        eye_mid = (ph.landmarks_px["eye_r"] + ph.landmarks_px["eye_l"]) / 2.0
        if self.shape == "small":
            half_w, top, bottom = iod * rng.uniform(0.95, 1.25), iod * rng.uniform(1.0, 1.4), iod * rng.uniform(1.5, 2.0)
        else:
            half_w, top, bottom = iod * rng.uniform(1.5, 1.9), iod * rng.uniform(1.4, 1.8), iod * rng.uniform(2.0, 2.6)
        x0, x1 = int(max(0, eye_mid[0] - half_w)), int(min(ph.image.shape[1], eye_mid[0] + half_w))
        y0, y1 = int(max(0, eye_mid[1] - top)), int(min(ph.image.shape[0], eye_mid[1] + bottom))
        crop = ph.image[y0:y1, x0:x1]
        m_per_px = scale / iod
        width, height = (x1 - x0) * m_per_px, (y1 - y0) * m_per_px
        self.crop_origin = np.array([x0, y0], np.float64)
        self.crop_size = np.array([x1 - x0, y1 - y0], np.float64)
        eye_uv = tuple((eye_mid - self.crop_origin) / self.crop_size)
        radius = float(rng.uniform(0.09, 0.25)) if spec.curved else None
        self.sheet = _Sheet(width, height, eye_uv, radius)
        tex_rgb, tex_ir = _print_texture(crop, rng)
        # Sample the sheet at ~0.75 px at the nearest distance it comes to.
        spacing = 0.75 * max(motion.distance - 0.03, 0.15) / view.fx
        nx, ny = max(8, int(width / spacing)), max(8, int(height / spacing))
        s, t = _grid(nx, ny)
        rgb = cv2.resize(tex_rgb, (nx, ny), interpolation=cv2.INTER_LINEAR)
        ir = cv2.resize(tex_ir, (nx, ny), interpolation=cv2.INTER_LINEAR)
        rgb = rgb * _paper_grain((ny, nx), rng)[..., None]
        keep = np.ones((ny, nx), bool)
        if self.shape == "contour":
            person = cv2.resize(ph.person_mask[y0:y1, x0:x1].astype(np.uint8), (nx, ny), interpolation=cv2.INTER_NEAREST)
            keep &= person.astype(bool)
        elif self.shape == "oval":
            keep &= self._face_oval(s, t, rng)
        if cut:
            keep &= ~self._holes(s, t, rng)
        # Cut edges: the white paper core shows along every cut (a few tenths of a millimetre to
        # a millimetre, wider where the scissors went ragged).
        edge_px = max(1, int(round(rng.uniform(0.0006, 0.0015) / spacing)))
        inner = cv2.erode(keep.astype(np.uint8), np.ones((2 * edge_px + 1, 2 * edge_px + 1), np.uint8),
                          borderType=cv2.BORDER_CONSTANT, borderValue=1).astype(bool)
        rim = keep & ~inner
        if self.shape != "sheet" or cut:
            paper = np.float32(rng.uniform(0.7, 0.9))
            rgb[rim] = paper
            ir[rim] = np.float32(0.85)
        pos, nrm = self.sheet.local(s, t)
        k = keep.reshape(-1)
        self.local_pos, self.local_nrm = pos.reshape(-1, 3)[k], nrm.reshape(-1, 3)[k]
        self.rgb, self.ir = rgb.reshape(-1, 3)[k].astype(np.float32), ir.reshape(-1)[k].astype(np.float32)
        self.mat = np.full(self.ir.shape, MAT_PAPER, np.uint8)
        self.keep = keep
        # Where the sheet sits against the head: relative rotation and the gap in front of the eyes.
        self.rel = rotation(*self.tilt)
        self.eye_mid_head = (self.rig.head.landmarks["eye_r"] + self.rig.head.landmarks["eye_l"]) / 2.0
        clearance = float(rng.uniform(0.002, 0.008))
        self.min_gap = self._resting_gap() + clearance
        if cut:
            self.gap = self.min_gap
        else:
            self.gap = max(self.min_gap, float(rng.uniform(0.05, 0.2)))
        self.rig.motion = type(motion)(**{**motion.__dict__, "distance": motion.distance + self.gap})
        # Fingers holding the sheet: thumbs at one or both side edges, the hand behind the edge.
        self.fingers = []
        for side in ([-1, 1] if rng.random() < 0.6 else [int(rng.choice([-1, 1]))]):
            tv = float(rng.uniform(0.45, 0.85))
            self.fingers.append((side, tv, float(rng.uniform(-0.6, 0.2))))
        self.finger_spacing = spacing
        # The thumbs and hands are rigid with the sheet: sampled once, in the sheet's frame.
        self.hand_parts = self._hand_parts()
        # Contour of the printed face in sheet coordinates.
        cu = (ph.contour_px - self.crop_origin) / self.crop_size
        self.contour_local, _ = self.sheet.local(cu[:, 0].astype(np.float32), cu[:, 1].astype(np.float32))
        self.lm_local = {}
        for name, p in ph.landmarks_px.items():
            uv = (p - self.crop_origin) / self.crop_size
            self.lm_local[name] = self.sheet.local(np.array([uv[0]], np.float32), np.array([uv[1]], np.float32))[0][0]

    def _hand_parts(self) -> list[Points]:
        """Thumbs at the sheet's side edges and the palms behind them, in sheet coordinates."""
        idn, parts = self.idn, []
        for side, tv, slant in self.fingers:
            s_edge = 0.0 if side < 0 else 1.0
            edge, _ = self.sheet.local(np.array([s_edge], np.float32), np.array([tv], np.float32))
            e = edge[0].astype(np.float64)
            inward = np.array([-side * 1.0, slant, 0.0])
            inward /= np.linalg.norm(inward)
            front = np.array([0.0, 0.0, 0.009])
            parts.append(capsule_points(e - inward * 0.04 + front, e + inward * 0.018 + front, 0.0085,
                                        self.finger_spacing, idn.skin_rgb, idn.skin_ir))
            # The hand the thumb belongs to: a palm behind the sheet's edge, reaching down and out.
            h0 = e - inward * 0.03 + np.array([0.0, 0.0, -0.015])
            h1 = h0 + np.array([side * 0.03, -0.08, -0.02])
            parts.append(capsule_points(h1, h0, 0.024, self.finger_spacing * 1.5, idn.skin_rgb, idn.skin_ir))
        return parts

    def sheet_local_of_head(self, pts_head: np.ndarray) -> np.ndarray:
        """Head-frame points in the sheet's frame with the sheet at gap 0 (origin at the eyes)."""
        return (pts_head - self.eye_mid_head) @ self.rel

    def sheet_cover(self, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For sheet-frame points: (covered by uncut paper, the paper's z there at gap 0)."""
        sh = self.sheet
        x, y = local[:, 0], local[:, 1]
        xc = (0.5 - sh.eye_uv[0]) * sh.width
        if sh.radius is None:
            x_arc, z = x, np.zeros_like(x)
        else:
            r = sh.radius
            alpha = np.arcsin(np.clip((x - xc) / r, -1.0, 1.0))
            alpha0 = -xc / r
            x_arc = xc + r * alpha
            z = -r * (1.0 - np.cos(alpha)) + r * (1.0 - np.cos(alpha0))
        s = x_arc / sh.width + sh.eye_uv[0]
        t = sh.eye_uv[1] - y / sh.height
        ny, nx = self.keep.shape
        col = np.floor(s * nx).astype(np.int64)
        row = np.floor(t * ny).astype(np.int64)
        inside = (col >= 0) & (col < nx) & (row >= 0) & (row < ny)
        covered = np.zeros(x.shape, bool)
        covered[inside] = self.keep[row[inside], col[inside]]
        return covered, z

    def _resting_gap(self) -> float:
        """Smallest gap (metres in front of the eyes) at which the uncut paper clears the head."""
        local = self.sheet_local_of_head(self.rig.head.pos.astype(np.float64))
        covered, z_paper = self.sheet_cover(local)
        if not covered.any():
            return 0.0
        return float(max(0.0, np.max(local[covered, 2] - z_paper[covered])))

    def _face_oval(self, s: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sheet texels inside a hand-cut oval around the printed face: cheek to cheek (a little
        wider), from the forehead (below or at the hairline) to just under the chin."""
        ph = self.photo
        px = self.crop_origin[0] + s * self.crop_size[0]
        py = self.crop_origin[1] + t * self.crop_size[1]
        iod = ph.interocular_px
        lm = ph.landmarks_px
        left, right = float(ph.contour_px[:, 0].min()), float(ph.contour_px[:, 0].max())
        eye_y = float(lm["eye_r"][1] + lm["eye_l"][1]) / 2.0
        top = eye_y - iod * rng.uniform(0.8, 1.3)
        bottom = max(float(ph.contour_px[:, 1].max()), float(lm["chin"][1])) + iod * rng.uniform(0.0, 0.2)
        cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
        ax, ay = (right - left) / 2.0 * rng.uniform(1.0, 1.15), (bottom - top) / 2.0
        wobble = rng.uniform(-0.03, 0.03, (3, 2))  # scissors: a few low harmonics on the radius
        ang = np.arctan2(py - cy, px - cx)
        rr = 1.0 + sum(a * np.cos((k + 2) * ang + b * 10) for k, (a, b) in enumerate(wobble))
        return ((px - cx) / ax) ** 2 + ((py - cy) / ay) ** 2 < rr**2

    def _holes(self, s: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        ph = self.photo
        px = self.crop_origin[0] + s * self.crop_size[0]
        py = self.crop_origin[1] + t * self.crop_size[1]
        iod = ph.interocular_px
        lm = ph.landmarks_px
        holes = np.zeros(s.shape, bool)
        # Hand-cut holes: ragged outlines (a few low harmonics on the ellipse radius).
        wobble = rng.uniform(-0.06, 0.06, (4, 2))

        def ellipse(c: np.ndarray, ax: float, ay: float) -> np.ndarray:
            ang = np.arctan2(py - c[1], px - c[0])
            rr = 1.0 + sum(a * np.cos((k + 2) * ang + b * 10) for k, (a, b) in enumerate(wobble))
            return ((px - c[0]) / ax) ** 2 + ((py - c[1]) / ay) ** 2 < rr**2

        j = lambda: rng.uniform(0.9, 1.15)  # noqa: E731 - hand-cut holes vary
        if "eyes" in self.cutouts:
            holes |= ellipse(lm["eye_r"], 0.34 * iod * j(), 0.19 * iod * j())
            holes |= ellipse(lm["eye_l"], 0.34 * iod * j(), 0.19 * iod * j())
        if "nose" in self.cutouts:
            c = lm["nose_tip"] + np.array([0.0, -0.08 * iod])
            holes |= ellipse(c, 0.28 * iod * j(), 0.46 * iod * j())
        if "mouth" in self.cutouts:
            holes |= ellipse(lm["mouth"], 0.5 * iod * j(), 0.22 * iod * j())
        return holes

    def _sheet_pose(self, pose: HeadPose) -> tuple[np.ndarray, np.ndarray]:
        """Sheet frame -> camera frame: rigid with the head, `gap` in front of the eyes."""
        m = pose.m @ self.rel
        anchor = self.eye_mid_head + self.rel @ np.array([0.0, 0.0, self.gap])
        return m, pose.m @ anchor + pose.t

    def content(self, index: int) -> FrameContent:
        t = index / self.fps
        rig = self.rig
        pose = rig.pose(t)
        m, c = self._sheet_pose(pose)
        m32, c32 = m.astype(np.float32), c.astype(np.float32)
        sheet = Points(transform(self.local_pos, m32, c32), transform(self.local_nrm, m32), self.rgb, self.ir,
                       self.mat)
        points = [sheet]
        if self.attacker_visible:
            points.append(rig.head_points(pose, rig.motion.blink(t)))
            hand = rig.hand_points(pose)
            if hand is not None:
                points.append(hand)
        for hand in self.hand_parts:
            points.append(Points(transform(hand.pos, m32, c32), transform(hand.nrm, m32), hand.rgb, hand.ir, hand.mat))
        contour = transform(self.contour_local, m32, c32)
        lm_cam = {k: m @ v + c for k, v in self.lm_local.items()}
        yaw = float(pose.yaw + self.tilt[0])
        layers = (lambda view, pose=pose: rig.body_layers(pose, view)) if self.attacker_visible else (lambda view: [])
        return FrameContent(points=points, layers=layers, contour=contour,
                            distance_m=float((lm_cam["eye_r"][2] + lm_cam["eye_l"][2]) / 2.0), yaw=yaw,
                            pitch=float(pose.pitch + self.tilt[1]), roll=float(pose.roll + self.tilt[2]), landmarks=lm_cam)


class ScreenScene:
    """A phone or tablet replaying a face: emissive, dark in NIR, flat, with a bezel and moire."""

    def __init__(self, rng: np.random.Generator, seed: int, view: View, distance_range: tuple[float, float],
                 max_yaw: tuple[float, float], fps: float, spec: ScenarioSpec,
                 appearance: str | None = None, accessories: bool = True):
        self.fps, self.view = fps, view
        self.idn = identity_for(seed, appearance)  # whose hand holds the device
        self.content_idn, self.same_identity = content_identity(rng, seed, appearance)
        self.photo = render_photo(self.content_idn, rng, talking_levels=4)  # a talking video: 4 mouth openings
        ph = self.photo
        tablet = rng.random() < 0.4
        if tablet:
            sw, sh, bezel = rng.uniform(0.14, 0.19), rng.uniform(0.19, 0.25), rng.uniform(0.008, 0.02)
        else:
            sw, sh, bezel = rng.uniform(0.062, 0.072), rng.uniform(0.13, 0.155), rng.uniform(0.003, 0.006)
        # The displayed picture is scaled so the face is about life-size on a tablet, smaller on a phone.
        iod_m = self.idn.interocular_m * (rng.uniform(0.75, 1.05) if tablet else rng.uniform(0.4, 0.6))
        m_per_px = iod_m / ph.interocular_px
        eye_mid = (ph.landmarks_px["eye_r"] + ph.landmarks_px["eye_l"]) / 2.0
        # Photo pixels shown on the screen: a window of sw x sh metres centred near the face.
        cw, chh = sw / m_per_px, sh / m_per_px
        cx, cy = eye_mid[0], eye_mid[1] + 0.6 * ph.interocular_px
        self.crop_origin = np.array([cx - cw / 2, cy - chh / 2])
        self.crop_size = np.array([cw, chh])
        big = cv2.copyMakeBorder(ph.image, 600, 600, 600, 600, cv2.BORDER_REPLICATE)
        affine = np.array([[cw / 512.0, 0, self.crop_origin[0] + 600], [0, chh / 512.0, self.crop_origin[1] + 600]])
        shown = cv2.warpAffine(big, affine, (512, 512), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_AREA)
        w_all, h_all = sw + 2 * bezel, sh + 2 * bezel
        eye_uv_screen = (eye_mid - self.crop_origin) / self.crop_size
        eye_uv = ((bezel + eye_uv_screen[0] * sw) / w_all, (bezel + eye_uv_screen[1] * sh) / h_all)
        self.sheet = _Sheet(w_all, h_all, eye_uv, None)
        # The same pose and distance ranges as live people (a screen can be held anywhere).
        motion = random_motion(rng, distance_range, max_yaw, 12.0, 12.0, blinks=False)
        self.motion = motion
        spacing = 0.75 * max(motion.distance - 0.03, 0.15) / view.fx
        nx, ny = max(8, int(w_all / spacing)), max(8, int(h_all / spacing))
        s, t = _grid(nx, ny)
        ss = (s * w_all - bezel) / sw
        tt = (t * h_all - bezel) / sh
        on_screen = (ss >= 0) & (ss < 1) & (tt >= 0) & (tt < 1)
        content = srgb_to_linear(shown.astype(np.float32) / 255.0).astype(np.float32)
        self.content_img = content
        # A replayed video of a talking person: the same shot at a few mouth openings, one per frame.
        self.video = [(d, srgb_to_linear(cv2.warpAffine(cv2.copyMakeBorder(img, 600, 600, 600, 600, cv2.BORDER_REPLICATE),
                                                        affine, (512, 512), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_AREA)
                                         .astype(np.float32) / 255.0).astype(np.float32)) for d, img in ph.talking_images]
        self.screen_idx = np.flatnonzero(on_screen.reshape(-1))
        self.screen_st = (ss.reshape(-1)[self.screen_idx], tt.reshape(-1)[self.screen_idx])
        self.brightness = float(rng.uniform(0.5, 1.0))
        bezel_rgb = np.float32(0.015 if rng.random() < 0.8 else 0.6)
        rgb = np.where(on_screen[..., None], np.zeros(3, np.float32), np.full(3, bezel_rgb, np.float32))
        ir = np.where(on_screen, np.float32(0.03), np.float32(rng.uniform(0.08, 0.25)))
        mat = np.where(on_screen, MAT_SCREEN, MAT_PLASTIC).astype(np.uint8)
        pos, nrm = self.sheet.local(s, t)
        self.local_pos, self.local_nrm = pos.reshape(-1, 3), nrm.reshape(-1, 3)
        self.rgb, self.ir, self.mat = rgb.reshape(-1, 3).astype(np.float32), ir.reshape(-1), mat.reshape(-1)
        self.geom = (bezel, sw, sh, w_all, h_all)
        # Face contour and landmarks in screen coordinates (0..1) of the displayed picture.
        self.contour_uv = (ph.contour_px - self.crop_origin) / self.crop_size
        self.lm_uv = {name: (p - self.crop_origin) / self.crop_size for name, p in ph.landmarks_px.items()}
        self.moire_k = rng.uniform(0.4, 1.3, 2) * rng.choice([-1, 1], 2)
        self.moire_amount = float(rng.uniform(0.04, 0.15))
        self.finger = (float(rng.uniform(0.3, 0.8)), int(rng.choice([-1, 1])))
        self.spacing = spacing
        # The replayed video moves: the picture drifts a little and its brightness flickers.
        self.drift = (rng.uniform(0.01, 0.04, 2), rng.uniform(0.2, 0.8, 2), rng.uniform(0, 2 * np.pi, 2))

    def _screen_to_sheet(self, uv: np.ndarray) -> np.ndarray:
        bezel, sw, sh, w_all, h_all = self.geom
        uv = np.atleast_2d(uv)
        s = ((bezel + uv[:, 0] * sw) / w_all).astype(np.float32)
        t = ((bezel + uv[:, 1] * sh) / h_all).astype(np.float32)
        return self.sheet.local(s, t)[0]

    def content(self, index: int) -> FrameContent:
        t = index / self.fps
        yaw, pitch, roll, offset = self.motion.at(t)
        m = FLIP @ rotation(yaw, pitch, roll)
        u, v = self.motion.centre_px
        z = self.motion.distance + offset[2]
        c = np.array([(u - self.view.ppx) * z / self.view.fx + offset[0], (v - self.view.ppy) * z / self.view.fy + offset[1], z])
        m32, c32 = m.astype(np.float32), c.astype(np.float32)
        amp, freq, ph = self.drift
        shift = amp * np.sin(2 * np.pi * freq * t + ph)  # picture displacement in screen units
        ss, tt = self.screen_st
        rows = np.clip(((tt - shift[1]) * 512).astype(np.int64), 0, 511)
        cols = np.clip(((ss - shift[0]) * 512).astype(np.int64), 0, 511)
        rgb = self.rgb.copy()
        shown = self.content_img
        if self.video:
            drop = self.photo.expression.mouth_open(t)
            shown = min(self.video, key=lambda level: abs(level[0] - drop))[1]
        rgb[self.screen_idx] = shown[rows, cols] * np.float32(self.brightness * (1.0 + 0.02 * np.sin(7.0 * t)))
        pts = [Points(transform(self.local_pos, m32, c32), transform(self.local_nrm, m32), rgb, self.ir, self.mat)]
        tv, side = self.finger
        edge, _ = self.sheet.local(np.array([0.0 if side < 0 else 1.0], np.float32), np.array([tv], np.float32))
        inward = np.array([-side, -0.3, 0.0])
        inward /= np.linalg.norm(inward)
        front = np.array([0.0, 0.0, 0.01])
        p0, p1 = edge[0] - inward * 0.04 + front, edge[0] + inward * 0.012 + front
        pts.append(capsule_points(m @ p0 + c, m @ p1 + c, 0.0085, self.spacing, self.idn.skin_rgb, self.idn.skin_ir))
        lm_cam = {k: m @ self._screen_to_sheet(v + shift)[0] + c for k, v in self.lm_uv.items()}
        contour = transform(self._screen_to_sheet(self.contour_uv + shift), m32, c32)
        phase = float(2 * np.pi * ((index * 0.37) % 1.0))
        return FrameContent(points=pts, layers=lambda view: [], contour=contour,
                            distance_m=float(c[2]), yaw=float(yaw), pitch=float(pitch), roll=float(roll),
                            landmarks=lm_cam, moire=(float(self.moire_k[0]), float(self.moire_k[1]), phase, self.moire_amount))


class MaskScene:
    """A rigid face-shaped mask (another identity's face, printed) worn by the attacker."""

    def __init__(self, rng: np.random.Generator, seed: int, view: View, distance_range: tuple[float, float],
                 max_yaw: tuple[float, float], fps: float, spec: ScenarioSpec,
                 appearance: str | None = None, accessories: bool = True):
        self.fps = fps
        self.idn = identity_for(seed, appearance)
        self.content_idn, self.same_identity = content_identity(rng, seed, appearance)
        motion = random_motion(rng, distance_range, max_yaw, blinks=False)
        self.rig = PersonRig(self.idn, motion, view, rng, accessories=accessories)
        b = self.content_idn
        mask_head = build_head(b, 0.75 * max(motion.distance - 0.05, 0.15) / view.fx)
        p = mask_head.pos
        eye_b = (mask_head.landmarks["eye_r"] + mask_head.landmarks["eye_l"]) / 2.0
        a = self.idn
        eye_a = (self.rig.head.landmarks["eye_r"] + self.rig.head.landmarks["eye_l"]) / 2.0
        sx, sy = a.half_width / b.half_width * 1.04, a.half_height / b.half_height * 1.02
        cy = (b.eye_y + (-0.1)) / 2.0 + 0.012
        inside = ((p[:, 0] / (0.92 * b.half_width)) ** 2 + ((p[:, 1] - cy) / 0.088) ** 2 < 1.0) & (p[:, 2] > 0.02)
        scale = np.array([sx, sy, (sx + sy) / 2], np.float32)
        forward = np.array([0.0, 0.0, 0.006 + a.nose_protrusion * 0.25], np.float32)
        self.mask_pos = ((p[inside] - eye_b) * scale + eye_a + forward).astype(np.float32)
        n = mask_head.nrm[inside] / scale
        self.mask_nrm = (n / np.linalg.norm(n, axis=1, keepdims=True)).astype(np.float32)
        rgb = mask_head.rgb[inside]
        lum = rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        sat = np.float32(rng.uniform(0.6, 0.95))
        self.mask_rgb = (lum[:, None] + (rgb - lum[:, None]) * sat).astype(np.float32) * np.float32(rng.uniform(0.8, 1.0))
        ink = np.float32(rng.uniform(0.0, 0.25))
        self.mask_ir = (np.float32(rng.uniform(0.55, 0.85)) * (1.0 - ink * (1.0 - np.clip(lum / max(float(lum.max()), 1e-3), 0, 1)))).astype(np.float32)
        self.contour_head = ((mask_head.contour - eye_b) * scale + eye_a + forward).astype(np.float32)
        self.lm_head = {k: ((v - eye_b) * scale + eye_a + forward).astype(np.float32) for k, v in mask_head.landmarks.items()}

    def content(self, index: int) -> FrameContent:
        t = index / self.fps
        rig = self.rig
        pose = rig.pose(t)
        head = rig.head_points(pose)
        mask = Points(pose.apply(self.mask_pos), pose.rotate(self.mask_nrm), self.mask_rgb, self.mask_ir,
                      np.full(self.mask_ir.shape, MAT_PLASTIC, np.uint8))
        lm_cam = {k: pose.apply(v[None, :])[0] for k, v in self.lm_head.items()}
        hand = rig.hand_points(pose)
        return FrameContent(points=[mask, head] + ([hand] if hand is not None else []), layers=lambda view, pose=pose: rig.body_layers(pose, view),
                            contour=pose.apply(self.contour_head), distance_m=float((lm_cam["eye_r"][2] + lm_cam["eye_l"][2]) / 2.0),
                            yaw=pose.yaw, pitch=pose.pitch, roll=pose.roll, landmarks=lm_cam)
