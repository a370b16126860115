"""FacePipeline: one FrameSet -> detect -> depth confirm -> choose face -> crops -> gates.

Layering: a frame goes down the layers once. This module sits above everything it calls
(sdk.detect for boxes and the face choice, sdk.preprocess for crops, sdk.quality for the gates);
none of those imports it or each other upwards. The session (above) adds the engine and fusion.

The session calls ``analyze`` once per frame. ``timings_ms`` has exactly the session's stage
keys "detect" (BlazeFace + depth confirmation + face choice), "crops" and "quality", so summing
them never double-counts; the finer split is in ``detail_ms``.
"""
from __future__ import annotations

import time
from sdk.detect.base import Detector
from sdk.detect.depth import DepthConfirmedDetector
from sdk.detect.select import select_face
from sdk.preprocess import make_crops
from sdk.quality import QualityConfig, assess
from sdk.types import FaceAnalysis, FrameSet


class FacePipeline:
    """``detector``: "short", "full" or "auto" (BlazeFace modes), or a Detector instance (the
    pipeline then owns and closes it). Depth confirmation always wraps it, configured by
    ``quality.depth_check``."""

    def __init__(self, detector: str | Detector = "auto", quality: QualityConfig | None = None,
                 min_score: float = 0.5) -> None:
        self.quality = quality if quality is not None else QualityConfig()
        if isinstance(detector, Detector):
            inner = detector
        else:
            from sdk.detect.blazeface import BlazeFaceDetector

            inner = BlazeFaceDetector(str(detector), min_score=min_score)
        self.detector = DepthConfirmedDetector(inner, self.quality.depth_check)

    def analyze(self, frames: FrameSet) -> FaceAnalysis:
        t0 = time.perf_counter()
        detections = self.detector.detect(frames)
        t1 = time.perf_counter()
        selection = select_face(frames, detections, self.quality.similar_depth_m)
        t2 = time.perf_counter()
        box = selection.primary.box if selection.primary is not None else None
        crops = make_crops(frames, box) if box is not None else None
        t3 = time.perf_counter()
        report = assess(frames, selection, crops, self.quality)
        t4 = time.perf_counter()
        detail = {"blazeface+depth": (t1 - t0) * 1e3, "select": (t2 - t1) * 1e3, "crops": (t3 - t2) * 1e3,
                  "quality": (t4 - t3) * 1e3}
        timings = {"detect": (t2 - t0) * 1e3, "crops": (t3 - t2) * 1e3, "quality": (t4 - t3) * 1e3}
        return FaceAnalysis(box, crops if report.passed else None, report, detections, selection, timings, detail)

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> "FacePipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
