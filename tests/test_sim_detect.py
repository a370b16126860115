"""BlazeFace (mediapipe Tasks, short-range model) finds the simulator's live faces."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdk.sim import Simulator
from sdk.types import FaceBox

MODEL = Path(__file__).resolve().parent.parent / "sdk" / "detect" / "models" / "face_detection_short_range.tflite"


@pytest.fixture(scope="module")
def detector():
    mp = pytest.importorskip("mediapipe", reason="mediapipe is not installed")
    if not MODEL.exists():
        pytest.skip(reason=f"{MODEL} is missing")
    from mediapipe.tasks.python import BaseOptions
    from mediapipe.tasks.python.vision import FaceDetector, FaceDetectorOptions

    det = FaceDetector.create_from_options(
        FaceDetectorOptions(base_options=BaseOptions(model_asset_path=str(MODEL)), min_detection_confidence=0.5)
    )
    yield lambda rgb: det.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
    det.close()


def test_blazeface_detects_live_frames(detector):
    found, ious = 0, []
    n = 20
    for seed in range(n):
        fs, truth = Simulator("live", 500 + seed, distance_range_m=(0.3, 0.7)).render(seed % 5)
        result = detector(fs.color)
        if result.detections:
            found += 1
            b = result.detections[0].bounding_box
            box = FaceBox(b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height)
            ious.append(box.iou(truth.face_box))
    assert found / n >= 0.95
    assert np.mean(ious) >= 0.6


def test_blazeface_finds_nothing_in_empty_scenes(detector):
    hits = sum(bool(detector(Simulator("empty", s).render(0)[0].color).detections) for s in range(5))
    assert hits <= 1
