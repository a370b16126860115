"""Live and empty scenes."""
from __future__ import annotations

import numpy as np

from sdk.sim.content import FrameContent
from sdk.sim.identity import apply_appearance, random_identity
from sdk.sim.person import PersonRig
from sdk.sim.render import View
from sdk.sim.rng import make_rng
from sdk.sim.scene import random_motion


def identity_for(seed: int, appearance: str | None = None, accessories: bool = True):
    """The identity of a subject seed (the same person in every scenario with that seed)."""
    idn = random_identity(make_rng("identity", int(seed)))
    return apply_appearance(idn, appearance, make_rng("appearance", int(seed)))


class LiveScene:
    def __init__(self, rng: np.random.Generator, seed: int, view: View, distance_range: tuple[float, float],
                 max_yaw: tuple[float, float], fps: float, appearance: str | None = None, accessories: bool = True):
        self.fps = fps
        self.idn = identity_for(seed, appearance)
        motion = random_motion(rng, distance_range, max_yaw)
        self.rig = PersonRig(self.idn, motion, view, rng, accessories=accessories)

    def content(self, index: int) -> FrameContent:
        t = index / self.fps
        rig = self.rig
        pose = rig.pose(t)
        pts = [rig.head_points(pose, rig.motion.blink(t))]
        hand = rig.hand_points(pose)
        if hand is not None:
            pts.append(hand)
        lms = rig.landmark_camera(pose)
        return FrameContent(
            points=pts,
            layers=lambda view, pose=pose: rig.body_layers(pose, view),
            contour=rig.contour_camera(pose),
            distance_m=float((lms["eye_r"][2] + lms["eye_l"][2]) / 2.0),
            yaw=pose.yaw, pitch=pose.pitch, roll=pose.roll,
            landmarks=lms,
        )


class EmptyScene:
    def __init__(self, rng: np.random.Generator, seed: int, view: View, distance_range: tuple[float, float],
                 max_yaw: tuple[float, float], fps: float, appearance: str | None = None, accessories: bool = True):
        self.fps = fps

    def content(self, index: int) -> FrameContent:
        return FrameContent(points=[], layers=lambda view: [], contour=None, distance_m=0.0)
