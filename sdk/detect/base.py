"""The detector contract: FrameSet in, a frozen Detections result out.

A detector finds face boxes on the shared pixel grid of a FrameSet. Depth confirmation
(sdk.detect.depth) wraps any detector and sorts its boxes into accepted and rejected ones, each
with what depth said about it, so the quality gates can tell "no face" from "a face that is
too far" or "a face that is physically too small to be a person".

The result types (FaceDepth, Detection, Detections) live in sdk.types with the other results;
they are re-exported here for the detectors' convenience.
"""
from __future__ import annotations

import abc
from typing import Iterator

from sdk.errors import DetectorModelError, DetectorModelNotFoundError
from sdk.types import Detection, Detections, FaceDepth, FrameSet

__all__ = ["Detection", "Detections", "Detector", "DetectorModelError", "DetectorModelNotFoundError", "FaceDepth"]


class Detector(abc.ABC):
    """Face detector on FrameSets. Use as a context manager or call close()."""

    name: str = "detector"

    @abc.abstractmethod
    def detect(self, frames: FrameSet) -> Detections:
        """Faces in ``frames`` on its shared grid."""

    def detect_stages(self, frames: FrameSet) -> Iterator[Detections]:
        """Results of increasingly expensive attempts, cheapest first.

        A cascade (BlazeFace "auto") yields one result per attempt, so a wrapper such as depth
        confirmation can stop at the first attempt that gives it a face it accepts instead of at
        the first attempt that fired at all (a false positive on noise must not hide a real
        face the next attempt would find). A single-stage detector yields ``detect(frames)``.
        """
        yield self.detect(frames)

    def close(self) -> None:
        """Release native resources (idempotent)."""

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
