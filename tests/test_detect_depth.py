"""Depth confirmation and the face-choice policy."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sdk.detect import (
    DepthCheckConfig,
    DepthConfirmedDetector,
    Detection,
    Detections,
    Detector,
    FaceDepth,
    measure_face_depth,
    select_face,
)
from sdk.detect.depth import depth_verdict
from sdk.errors import InputValidationError
from sdk.preprocess import face_median_depth_m
from sdk.types import FaceBox, FrameSet, Reason
from tests.conftest import make_frameset
from tests.test_detect_support import face_frame, metres_to_raw


class FixedDetector(Detector):
    """Returns the same boxes for every frame (stage by stage), so depth logic is tested alone."""

    name = "fixed"

    def __init__(self, *stages: tuple[FaceBox, ...]) -> None:
        self.stages = stages or ((),)
        self.closed = False

    def detect(self, frames: FrameSet) -> Detections:
        for result in self.detect_stages(frames):
            if result.accepted:
                return result
        return Detections()

    def detect_stages(self, frames: FrameSet):
        for i, boxes in enumerate(self.stages):
            yield Detections(tuple(Detection(b) for b in boxes), stage=f"s{i}" if boxes else "")

    def close(self) -> None:
        self.closed = True


def plane(z_m: float | None) -> FrameSet:
    depth = np.full((480, 640), 0 if z_m is None else metres_to_raw(z_m), np.uint16)
    return make_frameset(depth=depth, ir=np.full((480, 640), 50, np.uint8))


def box_for(width_m: float, z_m: float, cx: float = 320, cy: float = 240, score: float = 0.9) -> FaceBox:
    half = width_m * 475.0 / z_m / 2
    return FaceBox(cx - half, cy - half, cx + half, cy + half, score)


def test_measure_uses_the_shared_median_and_pinhole_width():
    frames, _ = face_frame(0.6, 0.15)
    box = box_for(0.15, 0.6)
    fd = measure_face_depth(frames, box)
    median, valid = face_median_depth_m(frames, box)
    assert fd.depth_m == median and fd.valid_fraction == valid
    assert fd.width_m == pytest.approx(box.width * 0.6 / 475.0)
    assert fd.width_m == pytest.approx(0.15, rel=1e-3)


@pytest.mark.parametrize(
    "z, width, expected",
    [
        (0.5, 0.15, None),
        (0.21, 0.15, None),
        (1.19, 0.15, None),
        (0.15, 0.15, Reason.FACE_TOO_CLOSE),
        (1.5, 0.15, Reason.FACE_TOO_FAR),
        (0.5, 0.05, Reason.IMPLAUSIBLE_FACE_SIZE),  # a face on a phone screen
        (0.5, 0.40, Reason.IMPLAUSIBLE_FACE_SIZE),  # a poster-sized face / a texture
        (None, 0.15, Reason.NO_DEPTH),
    ],
)
def test_verdicts(z, width, expected):
    frames = plane(z)
    det = DepthConfirmedDetector(FixedDetector((box_for(width, z or 0.5),)))
    result = det.detect(frames)
    if expected is None:
        assert len(result.accepted) == 1 and not result.rejected
        assert result.accepted[0].depth.depth_m == pytest.approx(z)
    else:
        assert not result.accepted and [d.rejection for d in result.rejected] == [expected]


def test_sparse_depth_is_no_depth():
    frames = plane(0.5)
    depth = np.zeros((480, 640), np.uint16)
    depth[::4, ::4] = metres_to_raw(0.5)  # 6 % valid
    frames = make_frameset(depth=depth)
    verdict = depth_verdict(measure_face_depth(frames, box_for(0.15, 0.5)), DepthCheckConfig())
    assert verdict is Reason.NO_DEPTH


def test_cascade_continues_past_a_rejected_false_positive():
    noise_box = FaceBox(0, 0, 300, 300, 0.55)  # at 0.5 m: 32 cm wide, not a face
    face = box_for(0.15, 0.5)
    inner = FixedDetector((noise_box,), (face,))
    result = DepthConfirmedDetector(inner).detect(plane(0.5))
    assert result.faces == (face,) and result.stage == "s1"
    assert [d.rejection for d in result.rejected] == [Reason.IMPLAUSIBLE_FACE_SIZE]


def test_config_is_honoured_and_validated():
    frames = plane(0.5)
    small = box_for(0.10, 0.5)
    assert DepthConfirmedDetector(FixedDetector((small,))).detect(frames).accepted
    strict = DepthCheckConfig(min_face_width_m=0.12)
    assert not DepthConfirmedDetector(FixedDetector((small,)), strict).detect(frames).accepted
    with pytest.raises(InputValidationError):
        DepthCheckConfig(min_depth_m=1.0, max_depth_m=0.5)
    with pytest.raises(InputValidationError):
        DepthCheckConfig(min_valid_fraction=2.0)


def test_close_closes_the_inner_detector():
    inner = FixedDetector()
    with DepthConfirmedDetector(inner):
        pass
    assert inner.closed


def test_blazeface_false_positive_on_noise_is_rejected():
    pytest.importorskip("mediapipe", reason="mediapipe runs BlazeFace")
    from sdk.detect.blazeface import BlazeFaceDetector

    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for depth in (np.zeros((480, 640), np.uint16), np.full((480, 640), metres_to_raw(0.8), np.uint16)):
        frames = make_frameset(noise, np.full((480, 640), 40, np.uint8), depth)
        with DepthConfirmedDetector(BlazeFaceDetector("auto")) as det:
            result = det.detect(frames)
        assert not result.accepted
        # BlazeFace does fire on this noise (design notes: ~0.5); depth turns every box down.
        assert result.rejected and all(d.rejection in (Reason.NO_DEPTH, Reason.IMPLAUSIBLE_FACE_SIZE) for d in result.rejected)


def test_astronaut_with_plausible_depth_is_confirmed_and_phone_sized_one_is_not():
    pytest.importorskip("mediapipe", reason="mediapipe runs BlazeFace")
    from sdk.detect.blazeface import BlazeFaceDetector

    with DepthConfirmedDetector(BlazeFaceDetector("auto")) as det:
        real, box = face_frame(0.5, 0.15)
        ok = det.detect(real)
        phone, _ = face_frame(0.5, 0.05)
        small = det.detect(phone)
    assert len(ok.accepted) == 1 and ok.faces[0].iou(box) > 0.6
    assert 0.12 < ok.accepted[0].depth.width_m < 0.19
    assert not small.accepted
    assert {d.rejection for d in small.rejected} == {Reason.IMPLAUSIBLE_FACE_SIZE}
    assert all(d.depth.width_m < 0.08 for d in small.rejected)


# -- choice of face ---------------------------------------------------------------------------
def _det(box: FaceBox, z: float | None) -> Detection:
    depth = FaceDepth(z if z is not None else math.nan, 1.0 if z else 0.0, box.width * (z or math.nan) / 475.0)
    return Detection(box, depth)


def test_closest_face_wins_over_a_larger_further_one():
    near = _det(FaceBox(10, 10, 60, 60, 0.9), 0.5)
    far_big = _det(FaceBox(100, 100, 300, 300, 0.99), 1.0)
    sel = select_face(plane(0.5), Detections((far_big, near)))
    assert sel.primary is near and sel.others == (far_big,) and sel.similar_others == 0


def test_largest_wins_among_faces_at_similar_depth():
    a = _det(FaceBox(10, 10, 110, 110, 0.99), 0.50)
    b = _det(FaceBox(200, 10, 340, 150, 0.80), 0.58)
    sel = select_face(plane(0.5), Detections((a, b)))
    assert sel.primary is b and sel.similar_others == 1 and sel.face_count == 2


def test_faces_without_depth_rank_last_and_are_measured_when_missing():
    frames = plane(0.5)
    unmeasured = Detection(box_for(0.15, 0.5))  # the selection measures it
    nodepth = _det(FaceBox(0, 0, 400, 400, 0.99), None)
    sel = select_face(frames, Detections((nodepth, unmeasured)))
    assert sel.primary.box == unmeasured.box and sel.primary.depth.depth_m == pytest.approx(0.5)
    assert sel.similar_others == 1  # unknown depth counts as "maybe beside you"
    assert select_face(frames, Detections()).primary is None
