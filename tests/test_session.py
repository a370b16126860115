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
        if self.fault == "dead_ir_in_face":  # IR dark only where the face is (not constant overall)
            ir = frames.ir.copy()
            ir[100:400, 150:500] = 0
            return FrameSet(frames.color, ir, frames.depth, frames.depth_scale,
                            frames.intrinsics, frames.timestamp_ms, frames.frame_number, frames.device)
        if self.fault == "frozen":  # the same FrameSet again and again
            self.frozen = getattr(self, "frozen", None) or frames
            return self.frozen
        if self.fault == "stuck_numbers":  # new pixels, but frame number and timestamp stand still
            return FrameSet(frames.color, frames.ir, frames.depth, frames.depth_scale, frames.intrinsics,
                            1000.0, 7, frames.device)
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


def test_dead_ir_sensor_ends_the_check_as_missing_modality(tmp_path):
    config = SessionConfig(max_frames=12)
    with LivenessSession(_Faulty(good=0, fault="dead_ir"), _bundle(tmp_path, bias=5.0), config) as session:
        result = session.check(timeout_s=20)
    assert result.decision is Decision.UNCERTAIN and result.reasons == (Reason.MISSING_MODALITY,)
    assert result.frames_used == config.missing_modality_frames and "constant" in result.message


def test_ir_dead_in_the_face_box_also_ends_the_check(tmp_path):
    with LivenessSession(_Faulty(good=0, fault="dead_ir_in_face"), _bundle(tmp_path, bias=5.0),
                         SessionConfig(max_frames=12)) as session:
        result = session.check(timeout_s=20)
    assert result.decision is Decision.UNCERTAIN and result.reasons == (Reason.MISSING_MODALITY,)


@pytest.mark.parametrize("fault", ["frozen", "stuck_numbers"])
def test_stuck_streams_end_as_device_error_even_mid_check(tmp_path, fault):
    with LivenessSession(_Faulty(good=3, fault=fault), _bundle(tmp_path, bias=5.0), SessionConfig(max_frames=30)) as session:
        result = session.check(timeout_s=20)
    assert result.decision is Decision.UNCERTAIN and result.reasons == (Reason.DEVICE_ERROR,)
    assert "stuck" in result.message and result.frames_used <= 3 + 3


def test_spoof_lockout_answers_without_scoring_then_expires(tmp_path):
    from sdk.lockout import LockoutConfig, SpoofLockout

    now = [0.0]
    lockout = SpoofLockout(LockoutConfig(max_spoofs=3, window_s=60, duration_s=30), clock=lambda: now[0])
    with LivenessSession(SimulatorSource("live", LIVE_SEED), _bundle(tmp_path, bias=-5.0), lockout=lockout) as session:
        for i in range(3):
            now[0] += 5.0
            result = session.check(timeout_s=20)
            assert result.decision is Decision.SPOOF
        assert "locked out" in result.message and lockout.locked
        now[0] += 10.0
        locked = session.check(timeout_s=20)
        assert locked.decision is Decision.UNCERTAIN and locked.reasons == (Reason.LOCKED_OUT,)
        assert locked.frames_used == 0 and "20 s" in locked.message
        # A new session sharing the lock-out is locked too.
        with LivenessSession(SimulatorSource("live", LIVE_SEED), _bundle(tmp_path, bias=5.0, name="c"),
                             lockout=lockout) as other:
            assert other.check(timeout_s=20).reasons == (Reason.LOCKED_OUT,)
        now[0] += 21.0
        assert session.check(timeout_s=20).decision is Decision.SPOOF  # scoring again


def test_spoofs_spread_over_more_than_the_window_do_not_lock():
    from sdk.lockout import LockoutConfig, SpoofLockout

    now = [0.0]
    lockout = SpoofLockout(LockoutConfig(max_spoofs=3, window_s=60, duration_s=30), clock=lambda: now[0])
    for _ in range(6):
        now[0] += 31.0
        assert not lockout.record_spoof()
    assert not lockout.locked
    with pytest.raises(ValueError):
        LockoutConfig(window_s=0)
    assert not SpoofLockout(LockoutConfig(max_spoofs=0)).record_spoof()  # disabled


def test_outcomes_replayed_give_the_check_decision(tmp_path):
    """Calibration's path (session.outcomes + check_score) agrees with check() at any threshold."""
    from sdk.fusion import check_score

    bundle = _bundle(tmp_path, bias=0.3)  # P(live) = 0.574 on every frame
    with LivenessSession(SimulatorSource("live", LIVE_SEED, n_frames=12), bundle) as session:
        outcomes = session.outcomes()
    assert len(outcomes) == 12
    score = check_score(outcomes)
    assert score == pytest.approx(0.5744, abs=1e-3)
    for threshold in (0.5, score, 0.6):
        config = SessionConfig(threshold=threshold, max_frames=12)
        with LivenessSession(SimulatorSource("live", LIVE_SEED, n_frames=12), bundle, config) as session:
            result = session.check(timeout_s=60)
        assert (result.decision is Decision.LIVE) == (score >= threshold), (threshold, result)


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


def test_stream_counts_spoofs_towards_the_lockout(tmp_path):
    from sdk.lockout import LockoutConfig, SpoofLockout

    lockout = SpoofLockout(LockoutConfig(max_spoofs=1, window_s=60, duration_s=600))
    source = SimulatorSource("live", LIVE_SEED, n_frames=8)
    with LivenessSession(source, _bundle(tmp_path, bias=-5.0), lockout=lockout) as session:
        results = list(session.stream())
    spoof_at = next(i for i, r in enumerate(results) if r.decision is Decision.SPOOF)
    assert all(r.reasons == (Reason.LOCKED_OUT,) for r in results[spoof_at + 1:]) and len(results) == 8


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


def test_unlock_example_is_locked_out_by_the_session(tmp_path, capsys):
    """examples/unlock.py: repeated spoofs lock the session; the lock is enforced, not printed."""
    import importlib.util

    from sdk.lockout import LockoutConfig, SpoofLockout

    spec = importlib.util.spec_from_file_location("unlock_example", Path(__file__).resolve().parent.parent / "examples" / "unlock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lockout = SpoofLockout(LockoutConfig(max_spoofs=2, window_s=60, duration_s=60))
    spoof_model = _bundle(tmp_path, bias=-5.0)  # says SPOOF on every face: repeated attempts
    assert module.unlock(SimulatorSource("live", LIVE_SEED), lockout, timeout_s=120, model=spoof_model) is False
    out = capsys.readouterr().out
    assert "rejected as a presentation attack" in out and "locked out" in out
    assert lockout.locked
    # A second run, with a new session, is refused at once without scoring.
    live_model = _bundle(tmp_path, bias=5.0, name="c")
    assert module.unlock(SimulatorSource("live", LIVE_SEED), lockout, timeout_s=120, model=live_model) is False
    assert "attempt 1: locked out" in capsys.readouterr().out


def test_open_closes_what_it_opened_when_the_source_fails(tmp_path, monkeypatch):
    """A source that fails inside open() must not leak the engine and detector opened before it."""
    import sdk.pipeline
    from sdk.errors import LivenessError

    closed: list[str] = []
    original = sdk.pipeline.FacePipeline.close

    def recording_close(self):
        closed.append("pipeline")
        return original(self)

    monkeypatch.setattr(sdk.pipeline.FacePipeline, "close", recording_close)
    session = LivenessSession(tmp_path / "missing.bag", _bundle(tmp_path, bias=5.0))
    with pytest.raises(LivenessError):
        session.open()
    assert closed == ["pipeline"]
    assert session._engine is None and session._pipeline is None and session._source is None  # noqa: SLF001
    with pytest.raises(LivenessError):  # still usable: open() tries again and fails the same way
        session.open()


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0.0, -1.0, "x"])
def test_non_finite_or_non_positive_timeouts_are_refused(tmp_path, timeout):
    from sdk.errors import InputValidationError

    with pytest.raises(InputValidationError):
        SessionConfig(timeout_s=timeout)
    session = LivenessSession(SimulatorSource("live", LIVE_SEED), _bundle(tmp_path, bias=5.0))
    with pytest.raises(InputValidationError):
        session.check(timeout_s=timeout)


def _calibrated_bundle(tmp_path: Path) -> Path:
    """A bundle whose operating points say they were calibrated with the default decision rule."""
    model = tiny_onnx_model(tmp_path / "cal.onnx", weights=(0.0, 0.0, 0.0), bias=5.0)
    provenance = {"calibration": {"decision_rule": SessionConfig().decision_rule()}}
    return write_bundle(tmp_path / "cal", model, name="tiny-cal", version="0.0.1",
                        operating_points={"default": {"threshold": 0.5}}, default_operating_point="default",
                        provenance=provenance).path


def test_a_session_with_another_decision_rule_is_refused(tmp_path):
    from sdk.errors import DecisionRuleMismatchError
    from sdk.fusion import FusionConfig

    bundle = _calibrated_bundle(tmp_path)
    LivenessSession(None, str(bundle), SessionConfig()).close()  # the calibrated rule: accepted
    other = SessionConfig(fusion=FusionConfig(min_frames_live=2))
    with pytest.raises(DecisionRuleMismatchError, match="fusion"):
        LivenessSession(None, str(bundle), other)
    with pytest.raises(DecisionRuleMismatchError, match="tta"):
        LivenessSession(None, str(bundle), SessionConfig(tta=False))
    # Opting in works, and says so; an explicit threshold is the caller's own choice.
    with pytest.warns(UserWarning, match="calibrated with the decision rule"):
        LivenessSession(None, str(bundle), SessionConfig(fusion=FusionConfig(min_frames_live=2),
                                                         allow_uncalibrated_rule=True)).close()
    LivenessSession(None, str(bundle), SessionConfig(tta=False, threshold=0.5)).close()


def test_the_quality_gates_are_part_of_the_decision_rule(tmp_path):
    """Gates decide which frames are scored, so a looser gate must not borrow calibrated points."""
    from sdk.errors import DecisionRuleMismatchError
    from sdk.quality import QualityConfig
    from sdk.session import decision_rule_matches

    bundle = _calibrated_bundle(tmp_path)
    loose = SessionConfig(quality=QualityConfig(max_depth_hole_fraction=0.9))
    with pytest.raises(DecisionRuleMismatchError, match="quality"):
        LivenessSession(None, str(bundle), loose)
    # the default gates, spelled out, are the calibrated rule
    LivenessSession(None, str(bundle), SessionConfig(quality=QualityConfig())).close()
    # a rule stored before the gates were recorded stands for the default gates only
    legacy = {k: v for k, v in SessionConfig().decision_rule().items() if k != "quality"}
    assert decision_rule_matches(legacy, SessionConfig())
    assert not decision_rule_matches(legacy, loose)
    assert decision_rule_matches(None, loose)  # an uncalibrated bundle has no rule to break
    from sdk.errors import InputValidationError

    with pytest.raises(InputValidationError, match="QualityConfig"):
        SessionConfig(quality={"max_depth_hole_fraction": 0.9})


def test_a_session_runs_the_gates_its_bundle_was_calibrated_with(tmp_path):
    from sdk.errors import ModelError
    from sdk.quality import QualityConfig
    from sdk.session import quality_rule

    model = tiny_onnx_model(tmp_path / "g.onnx", weights=(0.0, 0.0, 0.0), bias=5.0)

    def bundle_with(quality, name):
        rule = {**SessionConfig().decision_rule(), "quality": quality}
        return write_bundle(tmp_path / name, model, name="tiny-gates", version="0.0.1",
                            operating_points={"default": {"threshold": 0.5}}, default_operating_point="default",
                            provenance={"calibration": {"decision_rule": rule}}).path

    loose = quality_rule(QualityConfig(max_depth_hole_fraction=0.6, depth_check=QualityConfig().depth_check))
    session = LivenessSession(None, str(bundle_with(loose, "loose")), SessionConfig())
    assert session.config.quality.max_depth_hole_fraction == 0.6 and session.decision_rule_matches
    session.close()
    # gates this SDK cannot read (a newer field, a bad value) fail closed, naming the bundle
    with pytest.raises(ModelError, match="tiny-gates 0.0.1: the calibrated quality gates"):
        LivenessSession(None, str(bundle_with({**loose, "max_glare": 0.2}, "newer")), SessionConfig())
    with pytest.raises(ModelError, match="quality gates"):
        LivenessSession(None, str(bundle_with({**loose, "min_distance_m": 2.0}, "bad")), SessionConfig())
