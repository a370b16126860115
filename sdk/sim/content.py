"""What one frame contains before rendering: surfaces, face truth, screen effects."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from sdk.sim.render import Layer, Points, View


@dataclass
class FrameContent:
    points: list[Points]
    layers: Callable[[View], list[Layer]]
    contour: np.ndarray | None  # (K, 3) camera-frame points bounding the presented face
    distance_m: float
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)  # camera-frame points
    moire: tuple[float, float, float, float] | None = None  # (kx, ky, phase, depth) for screens
