"""Per-sequence scene parameters (room, light, where the person stands, how they move)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sdk.sim.camera import HEIGHT, WIDTH
from sdk.sim.identity import Identity, srgb_to_linear
from sdk.sim.render import Lighting


@dataclass(frozen=True)
class Background:
    wall_distance: float | None  # None: out of the SR300's range (no depth)
    wall_normal: tuple[float, float, float]
    wall_ir: float
    image: np.ndarray  # (H, W, 3) float32 linear albedo, full frame


def random_background(rng: np.random.Generator) -> Background:
    base = srgb_to_linear(rng.uniform(0.25, 0.85) * np.clip(rng.normal(1.0, 0.08, 3), 0.7, 1.2))
    canvas = np.empty((HEIGHT, WIDTH, 3), np.float32)
    grad = np.linspace(1.0 + rng.uniform(-0.25, 0.25), 1.0, HEIGHT, dtype=np.float32)[:, None, None]
    canvas[:] = (base[None, None, :] * grad).astype(np.float32)
    # A few rectangles: doors, frames, shelves, windows.
    for _ in range(int(rng.integers(0, 5))):
        x0, y0 = int(rng.integers(-100, WIDTH)), int(rng.integers(-100, HEIGHT))
        w, h = int(rng.integers(40, 300)), int(rng.integers(40, 400))
        colour = srgb_to_linear(rng.uniform(0.05, 0.95, 3)).astype(np.float32)
        cv2.rectangle(canvas, (x0, y0), (x0 + w, y0 + h), colour.tolist(), -1)
    canvas = cv2.GaussianBlur(canvas, (0, 0), float(rng.uniform(0.8, 3.0)))
    # Far walls are often out of range (no depth at all).
    distance = None if rng.random() < 0.3 else float(rng.uniform(1.5, 3.0))
    tilt = rng.normal(0.0, 0.08, 2)
    normal = np.array([tilt[0], tilt[1], 1.0])
    normal /= np.linalg.norm(normal)
    return Background(distance, tuple(float(v) for v in normal), float(rng.uniform(0.4, 0.85)), canvas)


def random_lighting(rng: np.random.Generator, skin_lum: float) -> tuple[Lighting, float]:
    """Lighting and the RGB noise level; auto-exposure partly compensates dark scenes and skin."""
    kind = rng.choice(["even", "side", "top", "dim"], p=[0.35, 0.3, 0.15, 0.2])
    warm = np.clip(rng.normal(1.0, 0.06, 3), 0.85, 1.15) * np.array([1.02, 1.0, 0.96])
    if kind == "even":
        ambient, key = rng.uniform(0.5, 0.8), rng.uniform(0.3, 0.6)
        az, el = rng.uniform(-0.4, 0.4), rng.uniform(-0.5, 0.0)
    elif kind == "side":
        ambient, key = rng.uniform(0.2, 0.45), rng.uniform(0.7, 1.1)
        az, el = rng.choice([-1, 1]) * rng.uniform(0.6, 1.1), rng.uniform(-0.6, 0.0)
    elif kind == "top":
        ambient, key = rng.uniform(0.3, 0.5), rng.uniform(0.6, 0.9)
        az, el = rng.uniform(-0.3, 0.3), rng.uniform(-1.0, -0.7)
    else:  # dim
        ambient, key = rng.uniform(0.25, 0.4), rng.uniform(0.1, 0.35)
        az, el = rng.uniform(-0.8, 0.8), rng.uniform(-0.6, 0.0)
    # Direction the light travels, camera frame: from in front of the person towards them.
    direction = np.array([-np.sin(az) * np.cos(el), -np.sin(el), np.cos(az) * np.cos(el)])
    direction /= np.linalg.norm(direction)
    level = ambient * 0.8 + key * 0.6
    ae = 0.2 / (level * max(skin_lum, 0.02) ** 0.55)
    exposure = float(np.clip(ae, 0.5, 9.0) * rng.uniform(0.85, 1.15) * (0.55 if kind == "dim" else 1.0))
    glare = float(rng.uniform(0.2, 1.2)) if rng.random() < 0.3 else 0.0
    light = Lighting(
        ambient=tuple(float(v) for v in ambient * warm),
        key_dir=tuple(float(v) for v in direction),
        key_rgb=tuple(float(v) for v in key * warm),
        exposure=exposure,
        glare=glare,
        ir_gain=float(36.0 * rng.uniform(0.85, 1.15)),
        ir_ambient=float(rng.uniform(1.0, 8.0)),
    )
    return light, (2.6 if kind == "dim" else 1.0)


def rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Head-frame rotation: yaw about y (up), pitch about x, roll about z (towards camera)."""
    y, p, r = np.radians([yaw_deg, pitch_deg, roll_deg])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


#: Head frame (x right, y up, z to the camera) -> camera frame (x right, y down, z forward).
FLIP = np.diag([1.0, -1.0, -1.0])


def to_camera(pose_r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matrix M and translation t with p_cam = M @ p_head + t."""
    return FLIP @ pose_r, t


@dataclass(frozen=True)
class Motion:
    """Smooth per-sequence motion: base pose plus slow sinusoids; blinks at fixed times."""

    yaw: float
    pitch: float
    roll: float
    distance: float
    centre_px: tuple[float, float]
    amp: tuple[float, float, float, float, float, float]  # yaw, pitch, roll (deg), x, y, z (m)
    freq: tuple[float, ...]
    phase: tuple[float, ...]
    blink_times: tuple[float, ...]
    blink_len: float

    def at(self, t: float) -> tuple[float, float, float, np.ndarray]:
        """(yaw, pitch, roll, offset xyz in metres) at time t seconds."""
        w = [a * np.sin(2 * np.pi * f * t + p) for a, f, p in zip(self.amp, self.freq, self.phase)]
        return self.yaw + w[0], self.pitch + w[1], self.roll + w[2], np.array(w[3:6])

    def blink(self, t: float) -> float:
        """Lid closure 0..1 at time t."""
        best = 0.0
        for tb in self.blink_times:
            d = abs(t - tb) / (self.blink_len / 2)
            if d < 1.0:
                best = max(best, 1.0 - d)
        return float(np.clip(best * 1.6, 0.0, 1.0))


def random_motion(rng: np.random.Generator, distance_range: tuple[float, float], max_yaw: float | tuple[float, float],
                  max_pitch: float = 12.0, max_roll: float = 12.0, still: float = 1.0,
                  blinks: bool = True, centre_spread: float = 0.5) -> Motion:
    """``max_yaw`` is the largest |yaw| of any frame, or a (min, max) range of |yaw| for every frame."""
    min_yaw, max_yaw = (0.0, float(max_yaw)) if np.isscalar(max_yaw) else (float(max_yaw[0]), float(max_yaw[1]))
    amp = (rng.uniform(0.5, 3.0), rng.uniform(0.3, 2.0), rng.uniform(0.2, 1.5),
           rng.uniform(0.0, 0.008), rng.uniform(0.0, 0.006), rng.uniform(0.0, 0.012))
    amp = tuple(float(a * still) for a in amp)
    yaw_lim = max(0.0, max_yaw - amp[0])
    yaw_low = min(yaw_lim, min_yaw + amp[0]) if min_yaw > 0 else 0.0
    distance = float(rng.uniform(*distance_range))
    # Keep the head in the picture: less room to wander when it is close.
    head_px = 475.0 * 0.24 / distance
    room_x = max(0.0, (640 - head_px * 0.7) / 2 - 20)
    room_y = max(0.0, (480 - head_px) / 2 - 10)
    centre = (320 + rng.uniform(-1, 1) * room_x * centre_spread, 235 + rng.uniform(-1, 1) * room_y * centre_spread)
    blink_times: list[float] = []
    if blinks:
        t = rng.uniform(-2.0, 2.0)
        while t < 120.0:
            blink_times.append(float(t))
            t += rng.uniform(1.2, 5.0)
    return Motion(
        yaw=float(rng.uniform(-yaw_lim, yaw_lim)) if min_yaw <= 0 else float(rng.choice([-1.0, 1.0]) * rng.uniform(yaw_low, yaw_lim)),
        pitch=float(rng.uniform(-max_pitch, max_pitch)),
        roll=float(rng.uniform(-max_roll, max_roll)),
        distance=distance,
        centre_px=(float(centre[0]), float(centre[1])),
        amp=amp,
        freq=tuple(float(f) for f in rng.uniform(0.1, 0.6, 6)),
        phase=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 6)),
        blink_times=tuple(blink_times),
        blink_len=float(rng.uniform(0.15, 0.3)),
    )


def skin_luminance(idn: Identity) -> float:
    r, g, b = idn.skin_rgb
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
