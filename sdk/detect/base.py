"""The detector contract: FrameSet in, a frozen Detections result out.

A detector finds face boxes on the shared pixel grid of a FrameSet. Depth confirmation
(sdk.detect.depth) wraps any detector and sorts its boxes into accepted and rejected ones, each
with what depth said about it, so the quality gates can tell "no face" from "a face that is
too far" or "a face that is physically too small to be a person".

Detections, Detection and FaceDepth are result types of the detect stage; they live here until
they move to sdk/types.py.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Iterator

from sdk.errors import InputValidationError, ModelError
from sdk.types import FaceBox, FrameSet, Reason


class DetectorModelError(ModelError):
    """A face-detector model cannot be loaded or run (to move to sdk/errors.py)."""


class DetectorModelNotFoundError(DetectorModelError, FileNotFoundError):
    """The face-detector model file is not where it should be (a broken install or a wrong path)."""

    def __init__(self, path: object, hint: str = "") -> None:
        message = f"face detector model not found: {path}"
        super().__init__(message + (f" ({hint})" if hint else ""))
        self.path = str(path)


@dataclass(frozen=True)
class FaceDepth:
    """What the depth stream says about one face box.

    ``depth_m`` is the median of valid depth over the central part of the box
    (sdk.preprocess.face_median_depth_m), nan without valid depth; ``width_m`` is the box width
    in metres at that depth (box width x depth / fx of the grid intrinsics).
    """

    depth_m: float
    valid_fraction: float
    width_m: float

    @property
    def has_depth(self) -> bool:
        return math.isfinite(self.depth_m)


@dataclass(frozen=True)
class Detection:
    """One detector output: the box, its depth measurement (None if not measured) and, when
    depth rejected it, why (NO_DEPTH, FACE_TOO_CLOSE, FACE_TOO_FAR or IMPLAUSIBLE_FACE_SIZE)."""

    box: FaceBox
    depth: FaceDepth | None = None
    rejection: Reason | None = None

    def __post_init__(self) -> None:
        if self.rejection is not None:
            object.__setattr__(self, "rejection", Reason(self.rejection))

    @property
    def score(self) -> float:
        return self.box.score


@dataclass(frozen=True)
class Detections:
    """Everything one detector call found in one FrameSet.

    ``accepted``: faces the detector stands behind (for a plain detector: every box; behind
    depth confirmation: the confirmed ones), highest score first. ``rejected``: boxes depth
    confirmation turned down, with the reason. ``stage`` names what produced ``accepted``
    (e.g. "short", "full", "full+lowlight"; "" when nothing was found).
    """

    accepted: tuple[Detection, ...] = ()
    rejected: tuple[Detection, ...] = ()
    stage: str = ""
    image_size: tuple[int, int] = (0, 0)  # (width, height) of the grid the boxes live on

    def __post_init__(self) -> None:
        object.__setattr__(self, "accepted", tuple(self.accepted))
        object.__setattr__(self, "rejected", tuple(self.rejected))
        if any(d.rejection is not None for d in self.accepted):
            raise InputValidationError("Detections.accepted must not hold rejected detections")
        if any(d.rejection is None for d in self.rejected):
            raise InputValidationError("Detections.rejected needs a rejection reason for each detection")

    @property
    def faces(self) -> tuple[FaceBox, ...]:
        """The accepted boxes (what most callers want)."""
        return tuple(d.box for d in self.accepted)

    def __len__(self) -> int:
        return len(self.accepted)

    def __bool__(self) -> bool:
        return bool(self.accepted)


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
