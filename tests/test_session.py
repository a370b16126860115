"""LivenessSession end to end on the virtual SR300, with tiny real ONNX models (not the shipped one).

The tiny models make the score independent of the face (a constant bias dominates), so these
tests check the session's mechanics: gates, fusion, thresholds, timeouts and failing closed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sdk import Decision, Reason
from sdk.capture import SimulatorSource, Source
from sdk.engine.bundle import write_bundle
from sdk.errors import DeviceDisconnectedError, ModelIntegrityError
from sdk.session import LivenessSession, SessionConfig
from sdk.types import FrameSet
from tests.conftest import tiny_onnx_model

LIVE_SEED = 1  # a simulator subject whose face BlazeFace finds on every frame


def _bundle(tmp_path: Path, bias: float, name: str = "b"):
    model = tiny_onnx_model(tmp_path / f"{name}.onnx", weights=(0.0, 0.0, 0.0), bias=bias)
    return write_bundle(tmp_path / name, model, name=f"tiny-{name}", version="0.0.1",
                        operating_points={"default": {"threshold": 0.5}}, default_operating_point="default")


class _Faulty(Source):
    """A simulator source whose frames go wrong after `good` frames."""

    def __init__(self, good: int, fault: str) -> None:
        self.inner = SimulatorSource("live", LIVE_SEED)
        self.good, self.fault, self.count = good, fault, 0

    @property
    def device_info(self):
        return self.inner.device_info

    @property
    def profiles(self):
        return self.inner.profiles

    def _next_frameset(self) -> FrameSet:
        frames = next(self.inner)
        self.count += 1
        if self.count <= self.good:
            return frames
        if self.fault == "unplug":
            raise DeviceDisconnectedError("the SR300 went away")
        if self.fault == "dead_ir":
            return FrameSet(frames.color, np.zeros_like(frames.ir), frames.depth, frames.depth_scale,
                            frames.intrinsics, frames.timestamp_ms, frames.frame_number, frames.device)
        raise AssertionError(self.fault)

    def _release(self) -> None:
        self.inner.close()


def test_live_model_on_live_subject_says_live(tmp_path):
    with LivenessSession(SimulatorSource("live", LIVE_SEED), _bundle(tmp_path, bias=5.0)) as session:
        result = session.check(timeout_s=20)
    assert result.decision is Decision.LIVE, result
    assert result.score > 0.99 and result.threshold == 0.5 and result.operating_point == "default"
    assert result.frames_used >= 5 and result.face_box is not None
    assert result.model_name == "tiny-b" and result.model_version == "0.0.1"
    data = json.loads(result.to_json())
    assert data["decision"] == "LIVE" and set(data["timings_ms"]) >= {"capture", "detect", "crops", "engine", "total"}


def test_spoof_model_says_spoof_with_reason(tmp_path):
    with LivenessSession(SimulatorSource("live", LIVE_SEED), _bundle(tmp_path, bias=-5.0)) as session:
        result = session.check(timeout_s=20)
    assert result.decision is Decision.SPOOF and Reason.SPOOF_SCORE in result.reasons


def test_configured_threshold_is_the_one_used(tmp_path):
    bundle = _bundle(tmp_path, bias=0.0)  # P(live) = 0.5 exactly
    config = SessionConfig(threshold=0.7)
    with LivenessSession(SimulatorSource("live", LIVE_SEED), bundle, config) as session:
        result = session.check(timeout_s=20)
    assert result.threshold == 0.7 and result.operating_point == "custom"
    assert result.decision is not Decision.LIVE


def test_nan_scores_fail_closed(tmp_path):
    with LivenessSession(SimulatorSource("live", LIVE_SEED), _bundle(tmp_path, bias=float("nan"))) as session:
        result = session.check(timeout_s=20)
    assert result.decision is Decision.UNCERTAIN and result.reasons == (Reason.INVALID_SCORE,)


def test_unplugged_camera_fails_closed(tmp_path):
    with LivenessSession(_Faulty(good=2, fault="unplug"), _bundle(tmp_path, bias=5.0)) as session:
        result = session.check(timeout_s=20)
    assert result.decision is Decision.UNCERTAIN and result.reasons == (Reason.DEVICE_ERROR,)
    assert "went away" in result.message


def test_dead_ir_sensor_is_never_live(tmp_path):
    config = SessionConfig(max_frames=12)
    with LivenessSession(_Faulty(good=0, fault="dead_ir"), _bundle(tmp_path, bias=5.0), config) as session:
        result = session.check(timeout_s=20)
    assert result.decision is Decision.UNCERTAIN
    assert Reason.TIMEOUT in result.reasons and Reason.MISSING_MODALITY in result.reasons


def test_empty_scene_times_out_with_no_face(tmp_path):
    config = SessionConfig(max_frames=8)
    with LivenessSession(SimulatorSource("empty", 3), _bundle(tmp_path, bias=5.0), config) as session:
        result = session.check(timeout_s=20)
    assert result.decision is Decision.UNCERTAIN and result.reasons[0] is Reason.TIMEOUT
    assert Reason.NO_FACE in result.reasons and result.frames_used == 8


def test_broken_bundle_is_a_typed_error(tmp_path):
    bundle = _bundle(tmp_path, bias=5.0)
    (bundle.path / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(ModelIntegrityError):
        LivenessSession(SimulatorSource("live", LIVE_SEED), bundle.path)


def test_stream_yields_a_result_per_frame(tmp_path):
    source = SimulatorSource("live", LIVE_SEED, n_frames=7)
    with LivenessSession(source, _bundle(tmp_path, bias=5.0)) as session:
        results = list(session.stream())
    assert len(results) == 7
    assert all(r.decision is Decision.UNCERTAIN for r in results[:4])
    assert results[-1].decision is Decision.LIVE


def test_check_on_a_recorded_bag(tmp_path):
    pytest.importorskip("pyrealsense2", reason="bag replay needs the camera extra (pyrealsense2)")
    from sdk.capture import write_bag
    from sdk.sim import Simulator

    sim = Simulator("live", LIVE_SEED)
    bag = tmp_path / "live.bag"
    write_bag(bag, (f for f, _ in sim.frames(12)), sim.device_info, sim.intrinsics, sim.depth_scale, sim.depth_to_color)
    with LivenessSession(str(bag), _bundle(tmp_path, bias=5.0)) as session:
        result = session.check(timeout_s=20)
    assert result.decision is Decision.LIVE
