"""Depth confirmation: a face box is only a face if the depth behind it is a human face.

BlazeFace fires on noise and on pictures of faces. The SR300's depth settles both: the median
depth in the box must lie in the sensor's working range, and the box width converted to metres
at that depth (pinhole: width_px x z / fx) must be that of a human face. A face on a phone
screen at 40 cm is a few centimetres wide, which makes the size check an anti-spoofing cue too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

from sdk.detect.base import Detection, Detections, Detector, FaceDepth
from sdk.errors import InputValidationError
from sdk.preprocess import face_median_depth_m
from sdk.types import FaceBox, FrameSet, Reason
from sdk.validate import check_finite, check_positive


@dataclass(frozen=True)
class DepthCheckConfig:
    """Thresholds of depth confirmation (defaults: SR300 working range, adult and child faces)."""

    #: SR300 depth working range in metres (design notes: about 0.2-1.2 m).
    min_depth_m: float = 0.2
    max_depth_m: float = 1.2
    #: Physical width of a BlazeFace box in metres. BlazeFace boxes span roughly cheek to cheek
    #: plus a margin; on simulator faces they measure 11-19 cm (1st-99th percentile, down to
    #: 9.2 cm for an undersized low-score box). 9 and 22 cm leave room for children, yaw and box
    #: jitter while a face on a phone screen (3-7 cm) stays far outside.
    min_face_width_m: float = 0.09
    max_face_width_m: float = 0.22
    #: Minimum share of valid depth pixels in the box centre for the median to be trusted.
    min_valid_fraction: float = 0.25

    def __post_init__(self) -> None:
        for name in ("min_depth_m", "max_depth_m", "min_face_width_m", "max_face_width_m"):
            check_positive(f"DepthCheckConfig.{name}", getattr(self, name))
        if not self.min_depth_m < self.max_depth_m:
            raise InputValidationError("DepthCheckConfig needs min_depth_m < max_depth_m")
        if not self.min_face_width_m < self.max_face_width_m:
            raise InputValidationError("DepthCheckConfig needs min_face_width_m < max_face_width_m")
        if not 0.0 <= check_finite("min_valid_fraction", self.min_valid_fraction) <= 1.0:
            raise InputValidationError("DepthCheckConfig.min_valid_fraction must lie in [0, 1]")


def measure_face_depth(frames: FrameSet, box: FaceBox) -> FaceDepth:
    """Median depth (via the shared sdk.preprocess helper) and physical width of a box."""
    depth_m, valid = face_median_depth_m(frames, box)
    width_m = box.width * depth_m / frames.grid_intrinsics.fx if math.isfinite(depth_m) else float("nan")
    return FaceDepth(depth_m=depth_m, valid_fraction=valid, width_m=width_m)


def depth_verdict(depth: FaceDepth, config: DepthCheckConfig) -> Reason | None:
    """None if depth confirms the face, else the reason it does not.

    Order matters: without trustworthy depth nothing else can be judged; outside the working
    range the depth (and so the size) is unreliable, so range is judged before size.
    """
    if not depth.has_depth or depth.valid_fraction < config.min_valid_fraction:
        return Reason.NO_DEPTH
    if depth.depth_m < config.min_depth_m:
        return Reason.FACE_TOO_CLOSE
    if depth.depth_m > config.max_depth_m:
        return Reason.FACE_TOO_FAR
    if not config.min_face_width_m <= depth.width_m <= config.max_face_width_m:
        return Reason.IMPLAUSIBLE_FACE_SIZE
    return None


def size_plausible(depth: FaceDepth, config: DepthCheckConfig) -> bool:
    """Whether the physical width fits a human face (whatever the distance)."""
    return depth.has_depth and config.min_face_width_m <= depth.width_m <= config.max_face_width_m


def confirm(frames: FrameSet, detections: Detections, config: DepthCheckConfig) -> Detections:
    """Measure every box of ``detections`` and sort it into accepted and rejected."""
    accepted, rejected = [], list(detections.rejected)
    for det in detections.accepted:
        depth = measure_face_depth(frames, det.box)
        verdict = depth_verdict(depth, config)
        (accepted if verdict is None else rejected).append(Detection(det.box, depth, verdict))
    return Detections(accepted=tuple(accepted), rejected=tuple(rejected),
                      stage=detections.stage if accepted else "", image_size=detections.image_size)


class DepthConfirmedDetector(Detector):
    """Wraps a detector; only boxes that depth confirms are accepted, the others are kept in
    ``rejected`` with their reason. With a cascade inside, later (more expensive) attempts run
    until one yields a confirmed face. Closing it closes the inner detector."""

    def __init__(self, inner: Detector, config: DepthCheckConfig | None = None) -> None:
        self.inner = inner
        self.config = config or DepthCheckConfig()
        self.name = f"{inner.name}+depth"

    def detect(self, frames: FrameSet) -> Detections:
        rejected: list[Detection] = []
        last: Detections | None = None
        for stage in self.inner.detect_stages(frames):
            last = confirm(frames, stage, self.config)
            rejected.extend(last.rejected)
            if last.accepted:
                return Detections(last.accepted, tuple(rejected), last.stage, last.image_size)
        size = last.image_size if last is not None else (frames.shape[1], frames.shape[0])
        return Detections((), tuple(rejected), "", size)

    def detect_stages(self, frames: FrameSet) -> Iterator[Detections]:
        yield self.detect(frames)

    def close(self) -> None:
        self.inner.close()
