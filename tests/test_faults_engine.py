"""Faults of the inference engine, injected through a FaultyEngine around the real ONNX Runtime
engine (the session builds it by name, as it builds any engine). The model says LIVE to anything,
so a LIVE answer here could only come from a fault that went unnoticed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdk import Decision, Reason
from sdk.capture import SimulatorSource
from sdk.engine import create_engine
from sdk.engine.bundle import write_bundle
from sdk.errors import EngineError, InvalidScoreError
from sdk.faults import ENGINE_FAULTS, FaultPlan, FaultyEngine
from sdk.session import LivenessSession, SessionConfig
from tests.conftest import tiny_onnx_model

LIVE_SEED = 1
GOOD_CALLS = 2


@pytest.fixture(scope="module")
def always_live(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("always_live_engine")
    model = tiny_onnx_model(folder / "m.onnx", weights=(0.0, 0.0, 0.0), bias=5.0)
    return write_bundle(folder / "bundle", model, name="always-live", version="0.0.1",
                        operating_points={"default": {"threshold": 0.5}}, default_operating_point="default").path


def check_with(bundle: Path, plan: FaultPlan, timeout_s: float = 30.0):
    config = SessionConfig(max_frames=12, timeout_s=timeout_s, engine="faulty", engine_options={"plan": plan})
    with LivenessSession(SimulatorSource("live", LIVE_SEED), bundle, config) as session:
        return session.check()


@pytest.mark.parametrize(
    "fault, reason",
    [
        ("raise", Reason.MODEL_ERROR),
        ("nan", Reason.INVALID_SCORE),
        ("inf", Reason.INVALID_SCORE),
        ("negative", Reason.INVALID_SCORE),
        ("above_one", Reason.INVALID_SCORE),
        ("wrong_shape", Reason.MODEL_ERROR),
        ("empty", Reason.MODEL_ERROR),
        ("closed", Reason.MODEL_ERROR),
    ],
)
def test_engine_fault_mid_check_fails_closed(always_live, fault, reason):
    plan = FaultPlan(fault, after=GOOD_CALLS)
    result = check_with(always_live, plan)
    assert result.decision is Decision.UNCERTAIN and result.reasons == (reason,)
    assert plan.injected == 1 and plan.calls == GOOD_CALLS + 1  # the check ended at the faulty call


def test_control_without_a_fault_is_live(always_live):
    plan = FaultPlan("nan", after=10_000)
    assert check_with(always_live, plan).decision is Decision.LIVE and plan.injected == 0


def test_slow_engine_runs_into_the_timeout(always_live):
    plan = FaultPlan("slow", after=GOOD_CALLS, options={"seconds": 2.0})
    result = check_with(always_live, plan, timeout_s=1.5)
    assert result.decision is Decision.UNCERTAIN and result.reasons[0] is Reason.TIMEOUT
    assert plan.injected >= 1


@pytest.mark.parametrize("fault", [f for f in ENGINE_FAULTS if f not in ("slow", "closed")])
def test_engine_predict_raises_typed_errors(always_live, fault):
    engine = FaultyEngine(create_engine("onnxruntime", always_live / "model.onnx"), fault)
    inputs = {m: np.zeros((2, 3, 112, 112), np.float32) for m in ("rgb", "ir", "depth")}
    expected = InvalidScoreError if fault in ("nan", "inf", "negative", "above_one") else EngineError
    with pytest.raises(expected):
        engine.predict(inputs)
    engine.close()
