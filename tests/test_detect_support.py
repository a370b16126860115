"""Constructed FrameSets around a real face photograph (scikit-image's astronaut, NASA, public
domain) for the detector and quality-gate tests, and checks of the construction itself."""
from __future__ import annotations

import numpy as np
import pytest

from sdk.types import SR300_DEPTH_SCALE, FaceBox, FrameSet
from tests.conftest import make_frameset

FX = 475.0  # tests.conftest.make_frameset's grid focal length
#: BlazeFace (short range) box of the astronaut's face in the 512x512 photo, and its centre.
ASTRONAUT_BOX = (177.0, 82.0, 272.0, 177.0)
ASTRONAUT_FACE_PX = ASTRONAUT_BOX[2] - ASTRONAUT_BOX[0]
ASTRONAUT_CENTER = ((ASTRONAUT_BOX[0] + ASTRONAUT_BOX[2]) / 2, (ASTRONAUT_BOX[1] + ASTRONAUT_BOX[3]) / 2)


def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the real face photo")
    return data.astronaut()


def metres_to_raw(z_m: float) -> int:
    return int(round(z_m / SR300_DEPTH_SCALE))


def face_px_for(width_m: float, depth_m: float) -> float:
    """Box width in pixels of a face width_m wide at depth_m (pinhole, fx = 475)."""
    return width_m * FX / depth_m


def paste_face(color: np.ndarray, ir: np.ndarray, depth: np.ndarray, face_px: float,
               center: tuple[float, float], depth_m: float | None) -> FaceBox:
    """Paste the astronaut's head and shoulders so its face box is face_px wide at ``center``;
    its pixels get depth ``depth_m`` (None: no depth). Returns the expected face box."""
    import cv2

    photo = astronaut()
    # Head and shoulders around the face (the rest of the photo is other structure).
    x0, y0, x1, y1 = 110, 20, 340, 290
    part = photo[y0:y1, x0:x1]
    scale = face_px / ASTRONAUT_FACE_PX
    w, h = max(1, int(round((x1 - x0) * scale))), max(1, int(round((y1 - y0) * scale)))
    part = cv2.resize(part, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    # Where the part's top-left lands so that the face centre lands on ``center``.
    ox = int(round(center[0] - (ASTRONAUT_CENTER[0] - x0) * scale))
    oy = int(round(center[1] - (ASTRONAUT_CENTER[1] - y0) * scale))
    H, W = depth.shape
    sx0, sy0, sx1, sy1 = max(0, ox), max(0, oy), min(W, ox + w), min(H, oy + h)
    sub = part[sy0 - oy:sy1 - oy, sx0 - ox:sx1 - ox]
    color[sy0:sy1, sx0:sx1] = sub
    ir[sy0:sy1, sx0:sx1] = np.clip(cv2.cvtColor(sub, cv2.COLOR_RGB2GRAY).astype(np.float32) * 0.8 + 30, 0, 255).astype(np.uint8)
    depth[sy0:sy1, sx0:sx1] = 0 if depth_m is None else metres_to_raw(depth_m)
    half = face_px / 2
    return FaceBox(center[0] - half, center[1] - half, center[0] + half, center[1] + half)


def face_frame(depth_m: float | None = 0.5, width_m: float = 0.15, center: tuple[float, float] = (320, 240),
               *, face_px: float | None = None, background_m: float | None = 2.0,
               extra: tuple[tuple[float, tuple[float, float], float | None], ...] = ()) -> tuple[FrameSet, FaceBox]:
    """A 640x480 FrameSet with the astronaut's face ``width_m`` wide at ``depth_m``.

    ``extra``: more faces as (face_px, center, depth_m). The background is a grey wall at
    ``background_m`` (None: no depth there, as beyond the SR300's range).
    """
    color = np.full((480, 640, 3), 90, np.uint8)
    ir = np.full((480, 640), 20, np.uint8)
    depth = np.full((480, 640), 0 if background_m is None else metres_to_raw(background_m), np.uint16)
    # Paste the far faces first so nearer ones cover them.
    for px, c, z in sorted(extra, key=lambda e: -(e[2] or 9.0)):
        paste_face(color, ir, depth, px, c, z)
    px = face_px if face_px is not None else face_px_for(width_m, depth_m if depth_m else 0.5)
    box = paste_face(color, ir, depth, px, center, depth_m)
    return make_frameset(color, ir, depth), box


def test_face_frame_puts_face_where_asked():
    frames, box = face_frame(0.6, 0.15, center=(300, 200))
    assert frames.shape == (480, 640)
    assert box.center == (300, 200)
    assert box.width == pytest.approx(0.15 * FX / 0.6)
    cx, cy = 300, 200
    assert frames.depth[cy, cx] == metres_to_raw(0.6)
    assert frames.depth[5, 5] == metres_to_raw(2.0)
    assert frames.color[cy, cx].any()


def test_face_frame_without_depth_leaves_holes():
    frames, _ = face_frame(None, face_px=120)
    assert frames.depth[240, 320] == 0
