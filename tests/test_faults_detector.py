"""Faults of the face detector, injected through a FaultyDetector around the real BlazeFace
detector; depth confirmation, gates and the session are the real ones."""
from __future__ import annotations

from pathlib import Path

import pytest

from sdk import Decision, Reason
from sdk.capture import SimulatorSource
from sdk.detect.blazeface import BlazeFaceDetector
from sdk.engine.bundle import write_bundle
from sdk.faults import FaultyDetector
from sdk.session import LivenessSession, SessionConfig
from tests.conftest import tiny_onnx_model

LIVE_SEED = 1


@pytest.fixture(scope="module")
def always_live(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("always_live_detector")
    model = tiny_onnx_model(folder / "m.onnx", weights=(0.0, 0.0, 0.0), bias=5.0)
    return write_bundle(folder / "bundle", model, name="always-live", version="0.0.1",
                        operating_points={"default": {"threshold": 0.5}}, default_operating_point="default").path


def check_with(bundle: Path, fault: str, after: int = 0, max_frames: int = 8):
    detector = FaultyDetector(BlazeFaceDetector("auto"), fault, after=after)
    config = SessionConfig(max_frames=max_frames, timeout_s=30, detector=detector)
    with LivenessSession(SimulatorSource("live", LIVE_SEED), bundle, config) as session:
        return session.check(), detector.plan


def test_detector_that_raises_mid_check(always_live):
    result, plan = check_with(always_live, "raise", after=2)
    assert result.decision is Decision.UNCERTAIN and result.reasons == (Reason.INTERNAL_ERROR,)
    assert plan.injected == 1 and "mediapipe" in result.message


@pytest.mark.parametrize(
    "fault, reason",
    [
        ("no_face", {Reason.NO_FACE}),
        ("box_outside", {Reason.NO_DEPTH}),  # a box off the image has no depth: depth refuses it
        # The whole image, or a box a face width off the face, lands mostly on the background: depth
        # refuses its size (NO_FACE), or finds too little of it in range to measure (NO_DEPTH: the
        # honest simulator's walls are often beyond the SR300's range, as real rooms are).
        # When enough of the frame has depth to measure the box (a subject whose hair returns NIR,
        # a wall in range), its width in metres is no face's: a spoof cue (SPOOF, never LIVE).
        ("box_whole_frame", {Reason.NO_FACE, Reason.NO_DEPTH, Reason.IMPLAUSIBLE_FACE_SIZE}),
        ("jitter", {Reason.NO_FACE, Reason.NO_DEPTH}),
    ],
)
def test_detector_garbage_is_refused_by_depth_and_gates(always_live, fault, reason):
    result, plan = check_with(always_live, fault)
    if result.decision is Decision.SPOOF:
        assert Reason.IMPLAUSIBLE_FACE_SIZE in reason and result.reasons == (Reason.IMPLAUSIBLE_FACE_SIZE,), result
    else:
        assert result.decision is Decision.UNCERTAIN
        assert result.reasons[0] is Reason.TIMEOUT and reason & set(result.reasons), result.reasons
    assert plan.injected == result.frames_used


def test_control_without_a_fault_is_live(always_live):
    result, plan = check_with(always_live, "raise", after=10_000)
    assert result.decision is Decision.LIVE and plan.injected == 0
