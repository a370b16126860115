"""Each quality gate triggered by a constructed frame, and the config / report contracts.

Frames are built around the real astronaut photo (tests/test_detect_support.py) and run through
the whole FacePipeline (BlazeFace "auto" + depth confirmation + crops + gates), so a gate is
shown to fire on what the detector actually reports, not on a hand-made box.
"""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

from sdk.detect import Detection, Detections, FaceDepth
from sdk.detect.select import FaceSelection
from sdk.errors import InputValidationError
from sdk.quality import QualityConfig, QualityReport, assess, sharpness
from sdk.types import FaceBox, Reason
from tests.conftest import make_frameset
from tests.test_detect_support import face_frame, metres_to_raw

pytest.importorskip("mediapipe", reason="mediapipe runs BlazeFace")


@pytest.fixture(scope="module")
def pipeline():
    from sdk.pipeline import FacePipeline

    with FacePipeline("auto") as p:
        yield p


@pytest.fixture(scope="module")
def good():
    return face_frame(0.5, 0.15)[0]


def reasons(pipeline, frames) -> set[Reason]:
    return set(pipeline.analyze(frames).quality.reasons)


def test_a_good_frame_passes_every_gate(pipeline, good):
    analysis = pipeline.analyze(good)
    assert analysis.quality.passed, analysis.quality
    m = analysis.quality.measurements
    assert m["face_depth_m"] == pytest.approx(0.5)
    assert 0.12 < m["face_width_m"] < 0.19
    for key in ("brightness", "ir_brightness", "depth_hole_fraction", "sharpness", "center_offset"):
        assert math.isfinite(m[key])


def test_no_face(pipeline):
    report = pipeline.analyze(make_frameset(np.full((480, 640, 3), 120, np.uint8), np.full((480, 640), 60, np.uint8),
                                            np.full((480, 640), metres_to_raw(0.9), np.uint16))).quality
    assert not report.passed and report.reasons == (Reason.NO_FACE,)


def test_noise_with_a_blazeface_false_positive_is_still_no_face(pipeline):
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    frames = make_frameset(noise, np.full((480, 640), 40, np.uint8), np.full((480, 640), metres_to_raw(0.8), np.uint16))
    analysis = pipeline.analyze(frames)
    assert analysis.detections.rejected  # BlazeFace fired (design notes: ~0.5 on noise)
    assert Reason.NO_FACE in analysis.quality.reasons
    assert Reason.IMPLAUSIBLE_FACE_SIZE not in analysis.quality.reasons  # not a spoof cue


def test_dark_frame(pipeline, good):
    assert Reason.TOO_DARK in reasons(pipeline, dataclasses.replace(good, color=(good.color * 0.08).astype(np.uint8)))
    black = dataclasses.replace(good, color=np.zeros_like(good.color))
    assert {Reason.NO_FACE, Reason.TOO_DARK} <= reasons(pipeline, black)


def test_overexposed_frame(pipeline, good):
    washed = np.clip(good.color.astype(np.int32) * 3 + 120, 0, 255).astype(np.uint8)
    assert Reason.OVEREXPOSED in reasons(pipeline, dataclasses.replace(good, color=washed))


def test_ir_too_dark_and_overexposed(pipeline, good):
    assert reasons(pipeline, dataclasses.replace(good, ir=np.zeros_like(good.ir))) == {Reason.IR_TOO_DARK}
    assert reasons(pipeline, dataclasses.replace(good, ir=np.full_like(good.ir, 255))) == {Reason.IR_OVEREXPOSED}


def test_depth_holes_in_the_face(pipeline, good):
    depth = good.depth.copy()
    depth[np.random.default_rng(0).random(depth.shape) < 0.5] = 0
    analysis = pipeline.analyze(dataclasses.replace(good, depth=depth))
    assert analysis.box is not None  # half the depth still confirms the face ...
    assert set(analysis.quality.reasons) == {Reason.DEPTH_HOLES}  # ... but it is too holey to score


def test_no_depth_at_all_on_the_face(pipeline):
    frames, _ = face_frame(None, face_px=140)
    analysis = pipeline.analyze(frames)
    assert analysis.box is None and analysis.quality.reasons == (Reason.NO_DEPTH,)


def test_face_too_far(pipeline):
    frames, _ = face_frame(1.5, 0.15, background_m=None)
    assert reasons(pipeline, frames) == {Reason.FACE_TOO_FAR}
    # Confirmed by depth (within the sensor's 1.2 m) but beyond the gates' 1.1 m.
    frames, _ = face_frame(1.15, 0.15, background_m=None)
    analysis = pipeline.analyze(frames)
    assert analysis.box is not None and set(analysis.quality.reasons) == {Reason.FACE_TOO_FAR}


def test_face_too_close(pipeline):
    frames, _ = face_frame(0.15, 0.12)
    assert Reason.FACE_TOO_CLOSE in reasons(pipeline, frames)
    frames, _ = face_frame(0.22, 0.12)
    assert reasons(pipeline, frames) == {Reason.FACE_TOO_CLOSE}


def test_phone_sized_face_is_implausible(pipeline):
    frames, _ = face_frame(0.5, 0.05)  # a 5 cm face at 50 cm: a picture on a phone
    analysis = pipeline.analyze(frames)
    assert analysis.box is None and analysis.quality.reasons == (Reason.IMPLAUSIBLE_FACE_SIZE,)


def test_two_faces_side_by_side_fail_but_one_far_behind_is_a_note(pipeline):
    frames, _ = face_frame(0.5, 0.15, center=(200, 240), extra=((140, (440, 240), 0.55),))
    report = pipeline.analyze(frames).quality
    assert report.reasons == (Reason.MULTIPLE_FACES,) and report.measurements["faces"] == 2
    frames, _ = face_frame(0.5, 0.15, center=(200, 240), extra=((100, (460, 200), 1.0),))
    analysis = pipeline.analyze(frames)
    assert analysis.quality.passed and analysis.quality.notes == (Reason.MULTIPLE_FACES,)
    assert analysis.box.center[0] < 320  # the nearer face was chosen
    ignore = assess(frames, analysis.detections, None, QualityConfig(multiple_faces="ignore"))
    strict = assess(frames, analysis.detections, None, QualityConfig(multiple_faces="any"))
    assert ignore.passed and ignore.notes == (Reason.MULTIPLE_FACES,)  # still reported, never fails
    assert strict.reasons == (Reason.MULTIPLE_FACES,)


def test_face_at_the_frame_edge(pipeline):
    for center in ((40, 240), (600, 240), (320, 50)):
        frames, _ = face_frame(0.5, 0.15, center=center)
        found = reasons(pipeline, frames)
        # Cut by the border; the centre of such a face is usually off-centre as well.
        assert Reason.FACE_PARTLY_OUT_OF_FRAME in found, center
        assert found <= {Reason.FACE_PARTLY_OUT_OF_FRAME, Reason.FACE_OFF_CENTER}, center


def test_face_off_centre(pipeline):
    frames, _ = face_frame(0.9, 0.15, center=(70, 240))
    assert reasons(pipeline, frames) == {Reason.FACE_OFF_CENTER}


@pytest.mark.parametrize("blur", ["gaussian", "motion"])
def test_blurred_face(pipeline, good, blur):
    if blur == "gaussian":
        colour = cv2.GaussianBlur(good.color, (0, 0), 4)
    else:
        kernel = np.zeros((21, 21), np.float32)
        kernel[10, :] = 1 / 21
        colour = cv2.filter2D(good.color, -1, kernel)
    assert reasons(pipeline, dataclasses.replace(good, color=colour)) == {Reason.MOTION_BLUR}


def test_sharpness_is_contrast_normalised():
    g = np.tile((np.arange(112) % 8 < 4).astype(np.uint8) * 100, (112, 1))
    assert sharpness(g) == pytest.approx(sharpness((g // 2).astype(np.uint8)), rel=1e-3)
    assert sharpness(np.full((112, 112), 50, np.uint8)) == 0.0


# -- assess without the detector ----------------------------------------------------------------
def test_assess_accepts_detections_or_a_selection_and_makes_its_own_crops(good):
    box = FaceBox(247, 160, 400, 313, 0.95)
    from sdk.detect import measure_face_depth

    det = Detection(box, measure_face_depth(good, box))
    a = assess(good, Detections((det,)))
    b = assess(good, FaceSelection(det))
    assert a.passed and b.passed and a.measurements == b.measurements


def test_an_unconfirmed_box_is_still_checked_for_depth_and_size():
    frames = make_frameset(np.full((480, 640, 3), 120, np.uint8), np.full((480, 640), 90, np.uint8),
                           np.full((480, 640), metres_to_raw(0.5), np.uint16))
    tiny = Detections((Detection(FaceBox(300, 220, 340, 260, 0.9)),))  # 4 cm at 0.5 m
    assert Reason.IMPLAUSIBLE_FACE_SIZE in assess(frames, tiny).reasons
    holes = dataclasses.replace(frames, depth=np.zeros((480, 640), np.uint16))
    assert Reason.NO_DEPTH in assess(holes, tiny).reasons


def test_low_score_rejections_are_noise_but_confident_ones_are_reported():
    frames = make_frameset()
    far = Detection(FaceBox(300, 220, 350, 270, 0.9), FaceDepth(1.5, 1.0, 50 * 1.5 / 475), Reason.FACE_TOO_FAR)
    weak = dataclasses.replace(far, box=dataclasses.replace(far.box, score=0.55))
    assert assess(frames, Detections((), (far,))).reasons[0] is Reason.FACE_TOO_FAR
    assert assess(frames, Detections((), (weak,))).reasons[0] is Reason.NO_FACE
    # Out of range *and* not person-sized: a texture far away, not a person to move closer.
    wall = Detection(FaceBox(0, 0, 300, 300, 0.9), FaceDepth(2.0, 1.0, 300 * 2.0 / 475), Reason.FACE_TOO_FAR)
    assert assess(frames, Detections((), (wall,))).reasons[0] is Reason.NO_FACE
    small = Detection(FaceBox(300, 220, 340, 260, 0.7), FaceDepth(0.5, 1.0, 0.04), Reason.IMPLAUSIBLE_FACE_SIZE)
    assert assess(frames, Detections((), (small,))).reasons[0] is Reason.NO_FACE  # below size_cue_min_score
    assert assess(frames, Detections((), (small,)), config=QualityConfig(size_cue_min_score=0.6)).reasons[0] \
        is Reason.IMPLAUSIBLE_FACE_SIZE


def test_config_and_report_contracts():
    with pytest.raises(InputValidationError):
        QualityConfig(multiple_faces="sometimes")
    with pytest.raises(InputValidationError):
        QualityConfig(min_distance_m=1.0, max_distance_m=0.5)
    with pytest.raises(InputValidationError):
        QualityConfig(min_brightness=float("nan"))
    with pytest.raises(InputValidationError):
        QualityReport(True, (Reason.TOO_DARK,), {})
    with pytest.raises(InputValidationError):
        QualityReport(False, (), {})
    report = QualityReport(False, (Reason.TOO_DARK, Reason.NO_FACE, Reason.TOO_DARK), {"x": 1.0})
    assert report.reasons == (Reason.NO_FACE, Reason.TOO_DARK)  # de-duplicated, in Reason order
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.passed = True  # type: ignore[misc]
