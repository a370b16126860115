"""Face detection on SR300 FrameSets: BlazeFace (mediapipe Tasks) confirmed by depth.

    from sdk.detect.pipeline import FacePipeline
    with FacePipeline() as pipeline:
        analysis = pipeline.analyze(frames)   # box, crops, quality report, timings

mediapipe is imported only when a BlazeFaceDetector is built. FacePipeline lives in
sdk.detect.pipeline (imported lazily here, since sdk.quality imports this package).
"""
from __future__ import annotations

from typing import Any

from sdk.detect.base import (
    Detection,
    Detections,
    Detector,
    DetectorModelError,
    DetectorModelNotFoundError,
    FaceDepth,
)
from sdk.detect.depth import DepthCheckConfig, DepthConfirmedDetector, measure_face_depth
from sdk.detect.select import FaceSelection, select_face

__all__ = [
    "BlazeFaceDetector", "DepthCheckConfig", "DepthConfirmedDetector", "Detection", "Detections", "Detector",
    "DetectorModelError", "DetectorModelNotFoundError", "FaceAnalysis", "FaceDepth", "FacePipeline",
    "FaceSelection", "measure_face_depth", "select_face",
]


def __getattr__(name: str) -> Any:
    if name == "BlazeFaceDetector":
        from sdk.detect.blazeface import BlazeFaceDetector

        return BlazeFaceDetector
    if name in ("FacePipeline", "FaceAnalysis"):
        from sdk.detect import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'sdk.detect' has no attribute {name!r}")
