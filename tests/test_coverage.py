"""The calibration's reach at decision time (sdk.coverage): which gates a check's frames lay
beyond, reported on every result and, on request, refused."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from sdk import Decision, Reason
from sdk.capture import SimulatorSource
from sdk.coverage import CalibratedEdge, calibrated_edges, outside_calibration
from sdk.engine.bundle import write_bundle
from sdk.errors import InputValidationError, ModelError
from sdk.session import LivenessSession, SessionConfig
from tests.conftest import tiny_onnx_model

LIVE_SEED = 1  # a simulator subject whose face BlazeFace finds on every frame


def _coverage(**gates):
    return {"calibration": {"gate_coverage": {"scored_frames": 100, "gates": gates}}}


def _gate(limit, live, attack=None, uncovered=None):
    return {"limit": limit, "live_reached": live, "attack_reached": attack, "uncovered": uncovered}


def test_edges_are_the_scored_extreme_where_a_band_was_left_and_the_limit_elsewhere():
    edges = calibrated_edges(_coverage(
        max_saturated_fraction=_gate(0.25, 0.001, 0.10, [0.10, 0.25]),
        min_brightness=_gate(30.0, 45.0, 50.0, [30.0, 45.0]),
        max_depth_hole_fraction=_gate(0.5, 0.498, 0.48, None),
        min_sharpness=_gate(0.12, None, None, None),  # never measured: no edge
    ))
    by_gate = {e.gate: e for e in edges}
    assert set(by_gate) == {"max_saturated_fraction", "min_brightness", "max_depth_hole_fraction"}
    assert by_gate["max_saturated_fraction"] == CalibratedEdge("max_saturated_fraction", "saturated_fraction", 0.10, True)
    assert by_gate["min_brightness"].edge == 45.0 and not by_gate["min_brightness"].ceiling
    assert by_gate["max_depth_hole_fraction"].edge == 0.5  # covered up to the limit
    frame = {"saturated_fraction": 0.2, "brightness": 40.0, "depth_hole_fraction": 0.3}
    assert outside_calibration(edges, frame) == ("min_brightness", "max_saturated_fraction")
    assert outside_calibration(edges, {"saturated_fraction": 0.10, "brightness": 45.0}) == ()  # the edge itself was seen
    assert outside_calibration(edges, {"saturated_fraction": math.nan}) == ()


def test_no_recorded_coverage_means_nothing_is_known_and_garbage_is_a_model_error():
    assert calibrated_edges({}) == ()
    assert calibrated_edges({"calibration": "crop-level note"}) == ()
    assert calibrated_edges({"calibration": {"counts": {}}}) == ()
    with pytest.raises(ModelError, match="gate coverage"):
        calibrated_edges({"calibration": {"gate_coverage": {"gates": {"max_brightness": {"live_reached": 1.0,
                                                                                         "uncovered": "wide"}}}}})


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _bundle(tmp_path: Path, provenance: dict):
    model = tiny_onnx_model(tmp_path / "m.onnx", weights=(0.0, 0.0, 0.0), bias=5.0)  # always "live"
    return write_bundle(tmp_path / "b", model, name="tiny", version="0.0.1",
                        operating_points={"default": {"threshold": 0.5}}, default_operating_point="default",
                        provenance=provenance)


# Calibration frames never brighter than grey 10: every simulator face lies beyond.
DARK_CALIBRATION = _coverage(max_brightness=_gate(220.0, 10.0, 9.0, [10.0, 220.0]))


def test_a_check_names_the_gates_its_frames_lay_beyond(tmp_path):
    with LivenessSession(SimulatorSource("live", LIVE_SEED), _bundle(tmp_path, DARK_CALIBRATION)) as session:
        result = session.check()
    assert result.decision is Decision.LIVE  # "note" (the default) changes no decision
    assert result.outside_calibration == ("max_brightness",)
    assert result.to_dict()["outside_calibration"] == ["max_brightness"]


def test_refuse_does_not_score_frames_beyond_the_calibration(tmp_path):
    config = SessionConfig(outside_calibration="refuse", max_frames=12)
    with LivenessSession(SimulatorSource("live", LIVE_SEED), _bundle(tmp_path, DARK_CALIBRATION), config) as session:
        outcomes = session.outcomes(4)
        result = session.check()
    assert all(o.score is None and o.reasons == (Reason.OUTSIDE_CALIBRATION,) for o in outcomes)
    assert all(o.outside_calibration == ("max_brightness",) for o in outcomes)
    assert result.decision is not Decision.LIVE and Reason.OUTSIDE_CALIBRATION in result.reasons
    assert result.outside_calibration == ("max_brightness",)


def test_stream_results_carry_their_frame_and_bundles_without_coverage_report_nothing(tmp_path):
    with LivenessSession(SimulatorSource("live", LIVE_SEED), _bundle(tmp_path, DARK_CALIBRATION)) as session:
        stream = session.stream()
        first = [next(stream) for _ in range(3)]
    assert all(r.outside_calibration == ("max_brightness",) for r in first)
    with LivenessSession(SimulatorSource("live", LIVE_SEED), _bundle(_mkdir(tmp_path / "plain"), {})) as session:
        assert session.check().outside_calibration == ()


def test_the_policy_is_validated():
    with pytest.raises(InputValidationError, match="outside_calibration"):
        SessionConfig(outside_calibration="ignore")


def test_check_cli_names_the_gates_and_refuses_on_request(tmp_path, capsys):
    from sdk.cli import main

    bundle = _bundle(tmp_path, DARK_CALIBRATION)
    assert main(["check", "--source", "live", "--seed", str(LIVE_SEED), "--model", str(bundle.path)]) == 0
    assert "beyond the calibration's frames along: max_brightness" in capsys.readouterr().out
    code = main(["check", "--source", "live", "--seed", str(LIVE_SEED), "--model", str(bundle.path), "--timeout", "0.4",
                 "--outside-calibration", "refuse", "--json"])
    import json

    result = json.loads(capsys.readouterr().out)
    assert code == 2 and result["decision"] == "UNCERTAIN" and "OUTSIDE_CALIBRATION" in result["reasons"]
    assert result["outside_calibration"] == ["max_brightness"]


def test_calibration_reach_tool_counts_checks_beyond_under_both_policies(tmp_path, capsys):
    import json

    from sdk.cli.cmd_synth_bag import synth_bag
    from tests.conftest import load_tool

    bags = _mkdir(tmp_path / "bags")
    synth_bag("live", LIVE_SEED, 8, bags / f"9_live_{LIVE_SEED}.bag")
    bundle = _bundle(_mkdir(tmp_path / "model"), DARK_CALIBRATION)
    tool = load_tool("calibration_reach")
    assert tool.main([str(bags), "--model", str(bundle.path), "--frames", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["live"] == {"checks": 1, "beyond": 1, "gate:max_brightness": 1, "live_note": 1, "live_refuse": 0,
                              "live_and_beyond": 1}
    assert tool.main([str(tmp_path / "empty_dir_that_is_missing")]) == 2
