"""Face detection on SR300 FrameSets: BlazeFace (mediapipe Tasks) confirmed by depth.

    from sdk.detect import BlazeFaceDetector, DepthConfirmedDetector, select_face
    detections = DepthConfirmedDetector(BlazeFaceDetector("auto")).detect(frames)
    selection = select_face(frames, detections)

mediapipe is imported only when a BlazeFaceDetector is built. This package is the bottom of the
per-frame path: it never imports the quality gates or the pipeline above it. The whole per-frame
pipeline (detect -> choose -> crops -> gates) is sdk.pipeline.FacePipeline.
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
from sdk.types import FaceAnalysis

__all__ = [
    "BlazeFaceDetector", "DepthCheckConfig", "DepthConfirmedDetector", "Detection", "Detections", "Detector",
    "DetectorModelError", "DetectorModelNotFoundError", "FaceAnalysis", "FaceDepth",
    "FaceSelection", "measure_face_depth", "select_face",
]


def __getattr__(name: str) -> Any:
    if name == "BlazeFaceDetector":
        from sdk.detect.blazeface import BlazeFaceDetector

        return BlazeFaceDetector
    raise AttributeError(f"module 'sdk.detect' has no attribute {name!r}")
