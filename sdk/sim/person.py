"""A person in front of the camera: head points, neck and torso layers, pose over time."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sdk.sim.expression import NEUTRAL, Expression, draw_expression
from sdk.sim.face import MAT_CLOTH, MAT_CORNEA, MAT_SKIN, HeadModel, build_head
from sdk.sim.geometry import transform
from sdk.sim.identity import Identity, srgb_to_linear
from sdk.sim.render import Layer, Points, View, concat_points, cylinder_layer
from sdk.sim.rng import make_rng
from sdk.sim.scene import FLIP, Motion, rotation


@dataclass
class HeadPose:
    m: np.ndarray  # (3, 3) head frame -> camera frame
    t: np.ndarray  # (3,) head centre in the camera frame
    yaw: float
    pitch: float
    roll: float
    time: float = 0.0  # seconds into the sequence (the expression's clock)

    def apply(self, pts: np.ndarray) -> np.ndarray:
        return transform(pts, self.m, self.t)

    def rotate(self, vecs: np.ndarray) -> np.ndarray:
        return transform(vecs, self.m)


class PersonRig:
    """One identity placed by a Motion, seen by one camera."""

    def __init__(self, idn: Identity, motion: Motion, view: View, rng: np.random.Generator, min_distance: float | None = None,
                 density_px: float = 0.75, accessories: bool = True, expression: Expression | None = None):
        self.motion = motion
        self.view = view
        # The session's expression (smile, open mouth, talking), drawn from its own stream keyed
        # by the identity and this session's motion, so no other draw changes; the same for every
        # face (live, attacker, the person in an attack's photo). No accessories: neutral.
        if expression is None:
            expression = draw_expression(make_rng("expression", idn.blotch_seed, *motion.phase)) if accessories else NEUTRAL
        self.expression = expression
        # Per-session clothing and surroundings, the same distribution for live people and
        # attackers: hats, scarves / high collars, a hand at the face, a chair back or headrest.
        acc = rng.random(5)
        if not accessories:
            acc[:] = 1.0
        if acc[0] < 0.15:
            hat_srgb = rng.uniform(0.03, 0.85, 3)
            lum = float(hat_srgb @ np.array([0.2126, 0.7152, 0.0722]))
            idn = replace(idn, hat=True, hat_rgb=tuple(float(v) for v in srgb_to_linear(hat_srgb)),
                          hat_ir=float(np.clip(0.06 + 0.75 * lum**0.6 + rng.normal(0.0, 0.1), 0.04, 0.9)))
        self.idn = idn
        self.collar = None
        if acc[1] < 0.25:
            c_srgb = rng.uniform(0.03, 0.9, 3)
            lum = float(c_srgb @ np.array([0.2126, 0.7152, 0.0722]))
            self.collar = (float(rng.uniform(0.072, 0.095)), float(rng.uniform(0.085, 0.11)),
                           tuple(float(v) for v in srgb_to_linear(c_srgb)),
                           float(np.clip(0.06 + 0.75 * lum**0.6 + rng.normal(0.0, 0.1), 0.04, 0.9)))
        self.hand = None
        if acc[2] < 0.15:
            self.hand = (float(rng.choice([-1.0, 1.0])), float(rng.uniform(-0.02, 0.03)), float(rng.uniform(0.0, 0.02)))
        self.chair = None
        if acc[3] < 0.3:
            ch_srgb = rng.uniform(0.03, 0.7, 3)
            lum = float(ch_srgb @ np.array([0.2126, 0.7152, 0.0722]))
            self.chair = (float(rng.uniform(0.01, 0.08)), float(rng.uniform(0.2, 0.3)),
                          tuple(float(v) for v in srgb_to_linear(ch_srgb)),
                          float(np.clip(0.06 + 0.75 * lum**0.6 + rng.normal(0.0, 0.1), 0.04, 0.9)))
        d = min_distance if min_distance is not None else motion.distance - 0.03
        # ~0.75 px between samples at the nearest distance of the sequence (pinholes are filled).
        self.spacing_m = density_px * max(d, 0.15) / view.fx
        self.head: HeadModel = build_head(idn, self.spacing_m, smile=expression.smile, mouth=expression.max_drop > 0.0)
        cloth_srgb = rng.uniform(0.05, 0.9, 3)
        self.cloth_rgb = tuple(float(v) for v in srgb_to_linear(cloth_srgb))
        # Dark dyed cloth is often dark in NIR too (no depth on black clothes); not always.
        lum = float(cloth_srgb @ np.array([0.2126, 0.7152, 0.0722]))
        self.cloth_ir = float(np.clip(0.06 + 0.75 * lum**0.6 + rng.normal(0.0, 0.1), 0.04, 0.9))
        self.eye_z = float(self.head.landmarks["eye_r"][2])

    def restyle(self, idn: Identity | None = None, expression: Expression | None = None) -> None:
        """Rebuild the head with another look or expression (tests, figures): nothing else changes."""
        if idn is not None:
            self.idn = idn
        if expression is not None:
            self.expression = expression
        ex = self.expression
        self.head = build_head(self.idn, self.spacing_m, smile=ex.smile, mouth=ex.max_drop > 0.0)
        self.eye_z = float(self.head.landmarks["eye_r"][2])

    def pose(self, t: float) -> HeadPose:
        yaw, pitch, roll, offset = self.motion.at(t)
        r = FLIP @ rotation(yaw, pitch, roll)
        idn = self.idn
        centre = np.array([0.0, (idn.eye_y + idn.mouth_y) / 2.0, self.eye_z])
        rc = r @ centre
        z = self.motion.distance + self.eye_z + offset[2]
        zc = z + rc[2]
        u, v = self.motion.centre_px
        target = np.array([(u - self.view.ppx) * zc / self.view.fx, (v - self.view.ppy) * zc / self.view.fy])
        t_xyz = np.array([target[0] - rc[0] + offset[0], target[1] - rc[1] + offset[1], z])
        return HeadPose(r, t_xyz, yaw, pitch, roll, float(t))

    def mouth_drop(self, pose: HeadPose) -> float:
        """Jaw drop (metres) at the pose's time; 0 when the head was built without a mouth."""
        if self.head.cavity is None:
            return 0.0
        return self.expression.mouth_open(pose.time)

    def head_points(self, pose: HeadPose, blink: float = 0.0, material_override: int | None = None,
                    drop: float | None = None) -> Points:
        """The head's points at ``pose``; ``drop`` overrides the expression's jaw drop (metres)."""
        h = self.head
        rgb, ir, mat = h.rgb, h.ir, h.mat
        pos = h.pos
        drop = self.mouth_drop(pose) if (drop is None or h.cavity is None) else float(drop)
        cavity = None
        if drop > 0.0:
            # The jaw drops: lower lip, chin and jaw move down (and back), the upper lip rises,
            # and the cavity behind the lips shows between them.
            pos = pos.copy()
            pos[h.jaw_idx] += np.float32(drop) * h.jaw_vec
            c_pos, c_nrm, c_rgb, c_ir, c_mat = h.cavity.points(drop)
            cavity = Points(pose.apply(c_pos), pose.rotate(c_nrm), c_rgb, c_ir,
                            c_mat if material_override is None else np.full_like(c_mat, material_override))
        if blink > 0.0:
            rgb, ir, mat = rgb.copy(), ir.copy(), mat.copy()
            b = np.float32(blink)
            rgb[h.eye_idx] = (1 - b) * rgb[h.eye_idx] + b * h.rgb_closed
            ir[h.eye_idx] = (1 - b) * ir[h.eye_idx] + b * h.ir_closed
            if blink > 0.5:
                eye_mat = mat[h.eye_idx]
                mat[h.eye_idx] = np.where(eye_mat == MAT_CORNEA, MAT_SKIN, eye_mat)
        if material_override is not None:
            mat = np.full_like(mat, material_override)
        head = Points(pose.apply(pos), pose.rotate(h.nrm), rgb, ir, mat)
        return head if cavity is None else concat_points([head, cavity])

    def body_layers(self, pose: HeadPose, view: View) -> list[Layer]:
        cx, cy, cz = pose.t
        idn = self.idn
        skin = idn.skin_rgb
        neck = cylinder_layer(view, (cx, cz + 0.015), (0.058, 0.05), cy + 0.02, cy + 0.25, skin, idn.skin_ir, MAT_SKIN)
        if neck is not None:
            # The jaw shades the top of the neck.
            y = neck.pos[..., 1] - np.float32(cy + idn.half_height * 0.85)
            neck.rgb *= (np.float32(0.3) + np.float32(0.7) * np.clip(y / np.float32(0.06), 0.0, 1.0))[..., None]
        torso = cylinder_layer(view, (cx, cz + 0.07), (0.2, 0.11), 0.0, cy + 1.5, self.cloth_rgb, self.cloth_ir,
                               MAT_CLOTH, top_curve=(cy + 0.17, 0.09))
        layers = [neck, torso]
        if self.collar is not None:
            radius, top, rgb, ir = self.collar
            layers.append(cylinder_layer(view, (cx, cz + 0.01), (radius, radius * 0.85), cy + top, cy + 0.26, rgb, ir, MAT_CLOTH))
        if self.chair is not None:
            # A chair back / headrest right behind the head (in the SR300's range).
            behind, half_w, rgb, ir = self.chair
            surface = cz + self.idn.half_depth + behind
            layers.append(cylinder_layer(view, (cx, surface + 0.08), (half_w, 0.08), cy - 0.22, cy + 0.9, rgb, ir, MAT_CLOTH))
        return layers

    def hand_points(self, pose: HeadPose) -> Points | None:
        """A hand raised to the face (cheek / jaw), if this session has one."""
        if self.hand is None:
            return None
        from sdk.sim.attacks import capsule_points

        side, lift, fwd = self.hand
        idn = self.idn
        spacing = 0.75 * max(self.motion.distance - 0.05, 0.15) / self.view.fx
        wrist = np.array([side * 0.11, -0.24 + lift, 0.0 + fwd])
        palm = np.array([side * 0.085, -0.085 + lift, 0.035 + fwd])
        parts = [capsule_points(pose.apply(wrist[None])[0], pose.apply(palm[None])[0], 0.026, spacing * 1.5,
                                idn.skin_rgb, idn.skin_ir)]
        for k in range(4):
            tip = palm + np.array([side * (0.004 - 0.006 * k), 0.075 - 0.008 * abs(k - 1.5), -0.01 + 0.004 * k])
            base = palm + np.array([side * (0.006 - 0.006 * k), 0.0, 0.0])
            parts.append(capsule_points(pose.apply(base[None])[0], pose.apply(tip[None])[0], 0.0085, spacing,
                                        idn.skin_rgb, idn.skin_ir))
        return concat_points(parts)

    def contour_camera(self, pose: HeadPose) -> np.ndarray:
        contour = self.head.contour.astype(np.float32)
        drop = self.mouth_drop(pose)
        if drop > 0.0:
            contour = contour + np.float32(drop) * self.head.contour_jaw
        return pose.apply(contour)

    def landmark_camera(self, pose: HeadPose) -> dict[str, np.ndarray]:
        drop = self.mouth_drop(pose)
        out = {}
        for k, v in self.head.landmarks.items():
            p = v.astype(np.float32)
            if drop > 0.0:
                p = p + np.float32(drop) * self.head.landmark_jaw[k]
            out[k] = pose.apply(p[None, :])[0]
        return out
