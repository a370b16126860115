"""Faults of the frame source, injected through a FaultySource around the real virtual SR300.

The model in these tests says LIVE to anything (a bias of +5 on a real ONNX graph), so the
only thing between a fault and a LIVE answer is the SDK's handling of the fault.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdk import Decision, Reason
from sdk.capture import SimulatorSource
from sdk.engine.bundle import write_bundle
from sdk.errors import InputValidationError, StreamChangedError, StreamIntegrityError
from sdk.faults import FaultPlan, FaultySource
from sdk.session import LivenessSession, SessionConfig
from tests.conftest import tiny_onnx_model

LIVE_SEED = 1  # a simulator subject whose face BlazeFace finds on every frame
GOOD_FRAMES = 2  # the fault strikes in the middle of the check


@pytest.fixture(scope="module")
def always_live(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("always_live")
    model = tiny_onnx_model(folder / "m.onnx", weights=(0.0, 0.0, 0.0), bias=5.0)
    bundle = write_bundle(folder / "bundle", model, name="always-live", version="0.0.1",
                          operating_points={"default": {"threshold": 0.5}}, default_operating_point="default")
    return bundle.path


def run_check(bundle: Path, source, max_frames: int = 12):
    with LivenessSession(source, bundle, SessionConfig(max_frames=max_frames, timeout_s=30)) as session:
        return session.check()


def test_control_without_a_fault_is_live(always_live):
    """Without the fault the same set-up is LIVE: the faults below are what changes the answer."""
    result = run_check(always_live, FaultySource(SimulatorSource("live", LIVE_SEED), "crash", after=10_000))
    assert result.decision is Decision.LIVE


@pytest.mark.parametrize(
    "fault, reason",
    [
        ("disconnect", Reason.DEVICE_ERROR),
        ("timeout", Reason.DEVICE_ERROR),
        ("crash", Reason.INTERNAL_ERROR),
        ("depth_scale", Reason.DEVICE_ERROR),
        ("device_swap", Reason.DEVICE_ERROR),
        ("clock_back", Reason.DEVICE_ERROR),
        ("clock_forward", Reason.DEVICE_ERROR),
        ("freeze_ir", Reason.DEVICE_ERROR),
        ("freeze_depth", Reason.DEVICE_ERROR),
    ],
)
def test_source_fault_mid_check_is_a_device_error(always_live, fault, reason):
    source = FaultySource(SimulatorSource("live", LIVE_SEED), fault, after=GOOD_FRAMES)
    result = run_check(always_live, source)
    assert result.decision is Decision.UNCERTAIN
    assert result.reasons == (reason,)
    assert source.plan.injected == 1 and source.plan.calls == GOOD_FRAMES + 1  # ended at the fault
    assert result.message  # names the error


def test_frozen_colour_is_not_scored_and_ends_the_check(always_live):
    """Colour repeating while IR and depth advance: the repeats are not scored (2 good frames +
    repeats never make the k = 5 consecutive frames LIVE needs) and the 3rd repeat in a row at
    equal rates ends the check."""
    source = FaultySource(SimulatorSource("live", LIVE_SEED), "freeze_color", after=GOOD_FRAMES)
    seen = []
    with LivenessSession(source, always_live, SessionConfig(max_frames=12, timeout_s=30)) as session:
        result = session.check(on_frame=lambda frames, outcome: seen.append(outcome))
    assert result.decision is Decision.UNCERTAIN and result.reasons == (Reason.DEVICE_ERROR,)
    assert "colour image is frozen: 3 bit-identical repeats" in result.message
    assert source.plan.calls == GOOD_FRAMES + 3  # two repeats skipped, the third ends the check
    assert [o.score is not None for o in seen] == [True, True, False]  # the repeats were never scored


def test_clock_leap_is_named():
    source = FaultySource(SimulatorSource("live", LIVE_SEED), FaultPlan("clock_forward", after=1, times=1))
    next(source)
    with pytest.raises(StreamIntegrityError, match="clock leapt ahead by 100"):
        next(source)
    assert next(source).frame_number  # the frames after the leap advance normally again


def test_depth_scale_change_names_what_changed():
    source = FaultySource(SimulatorSource("live", LIVE_SEED), FaultPlan("depth_scale", after=1, options={"factor": 1.01}))
    next(source)
    with pytest.raises(StreamChangedError, match="depth scale changed"):
        next(source)  # even a 1 % change: depth units never change while a device streams


def test_stream_that_ends_early_times_out(always_live):
    result = run_check(always_live, FaultySource(SimulatorSource("live", LIVE_SEED), "end", after=GOOD_FRAMES))
    assert result.decision is Decision.UNCERTAIN and result.reasons[0] is Reason.TIMEOUT
    assert "ran out of frames" in result.message


@pytest.mark.parametrize(
    "fault, reasons",
    [
        ("zero_ir", {Reason.MISSING_MODALITY}),
        ("zero_depth", {Reason.NO_DEPTH, Reason.MISSING_MODALITY}),
        ("zero_color", {Reason.NO_FACE, Reason.MISSING_MODALITY}),
    ],
)
def test_dead_sensor_is_never_live(always_live, fault, reasons):
    result = run_check(always_live, FaultySource(SimulatorSource("live", LIVE_SEED), fault, after=0), max_frames=6)
    assert result.decision is not Decision.LIVE
    assert reasons & set(result.reasons), result.reasons


def test_fault_plan_counts_calls_and_injections():
    plan = FaultPlan("nan", after=2, times=3)
    fired = [plan.fire() for _ in range(8)]
    assert fired == [False, False, True, True, True, False, False, False]
    assert plan.calls == 8 and plan.injected == 3
    with pytest.raises(InputValidationError, match="unknown fault"):
        FaultySource(SimulatorSource("live", 0), "melt")


def test_freeze_repeats_the_same_frame():
    source = FaultySource(SimulatorSource("live", LIVE_SEED, n_frames=6), "freeze", after=2)
    frames = list(source)
    assert len(frames) == 6
    assert all(f is frames[1] for f in frames[2:])  # the last good frame, again and again
    numbers = [f.frame_number for f in frames]
    assert numbers[:2] != [numbers[1]] * 2


def test_modality_faults_change_only_that_modality():
    clean = list(SimulatorSource("live", LIVE_SEED, n_frames=4))
    for fault, name in (("freeze_color", "color"), ("constant_depth", "depth"), ("zero_ir", "ir")):
        spoilt = list(FaultySource(SimulatorSource("live", LIVE_SEED, n_frames=4), fault, after=1))
        others = {"color", "ir", "depth"} - {name}
        for a, b in zip(clean[1:], spoilt[1:]):
            assert all(np.array_equal(getattr(a, o), getattr(b, o)) for o in others)
        assert not np.array_equal(getattr(clean[3], name), getattr(spoilt[3], name))


def test_frozen_ir_and_backward_clock_are_named():
    source = FaultySource(SimulatorSource("live", LIVE_SEED), "freeze_ir", after=1)
    next(source)
    with pytest.raises(StreamIntegrityError, match="ir image is frozen"):
        next(source)
    source = FaultySource(SimulatorSource("live", LIVE_SEED), FaultPlan("clock_back", after=1, times=1))
    next(source)
    with pytest.raises(StreamIntegrityError, match="clock ran backwards"):
        next(source)


def test_a_restart_is_not_a_clock_fault():
    """A looping replay starts its numbering and clock again: that is no fault."""
    first = list(SimulatorSource("live", LIVE_SEED, n_frames=3))

    class Looping(SimulatorSource):
        def _next_frameset(self):
            self._index %= 3
            return super()._next_frameset()

    loop = Looping("live", LIVE_SEED)
    got = [next(loop) for _ in range(7)]
    assert [f.frame_number for f in got][:4] == [f.frame_number for f in first] + [first[0].frame_number]
