"""Gate coverage: which part of each gate's range a calibration's scored frames covered."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from calibration.envelope import GATES, format_coverage, gate_coverage, measurement_envelope
from sdk.quality import QualityConfig
from sdk.session import quality_rule
from sdk.types import FrameOutcome, Reason

REPO = Path(__file__).resolve().parent.parent


def _frame(score, **quality):
    reasons = [] if score is not None else ["OVEREXPOSED"]
    return {"score": score, "reasons": reasons, "quality": quality}


def _rows():
    live = [{"label": 1, "outcomes": [_frame(0.9, saturated_fraction=s, brightness=b, depth_hole_fraction=h)
                                      for s, b, h in ((0.0, 45.0, 0.298), (0.06, 120.0, 0.1), (0.01, 150.0, 0.2))]
             + [_frame(None, saturated_fraction=0.4, brightness=160.0)]}]  # refused by the gate: not evidence
    attack = [{"label": 0, "outcomes": [_frame(0.01, saturated_fraction=0.03, brightness=90.0, depth_hole_fraction=0.1)]},
              {"label": 0, "error": "RuntimeError: broken", "outcomes": [_frame(0.5, saturated_fraction=0.2)]}]
    return live + attack


def test_the_uncovered_band_lies_between_the_scored_extreme_and_the_limit():
    coverage = gate_coverage(_rows(), quality_rule(None))
    gates = coverage["gates"]
    assert coverage["scored_frames"] == 4 and coverage["scored_frames_without_measurements"] == 0
    sat = gates["max_saturated_fraction"]
    # the gated frame at 0.4 and the failed replay at 0.2 are not calibration evidence
    assert sat["live_reached"] == 0.06 and sat["attack_reached"] == 0.03 and sat["uncovered"] == [0.06, 0.25]
    floor = gates["min_brightness"]  # a floor: the band lies below the lowest scored value
    assert floor["fails"] == "below" and floor["live_reached"] == 45.0 and floor["uncovered"] == [30.0, 45.0]
    assert gates["max_brightness"]["uncovered"] == [150.0, 220.0]
    # 0.298 against a 0.3 limit: within 2 % of the scored range (0.1..0.298), so covered
    assert gates["max_depth_hole_fraction"]["live_reached"] == 0.298
    assert gates["max_depth_hole_fraction"]["uncovered"] is None
    assert gates["min_sharpness"]["live_reached"] is None and gates["min_sharpness"]["uncovered"] is None
    text = format_coverage(coverage)
    assert "max_saturated_fraction" in text and "uncovered 0.06..0.25" in text


def test_every_gate_names_a_real_config_field_and_a_measurement_the_gates_write():
    fields = quality_rule(QualityConfig())
    assert all(isinstance(fields[gate.field], float) for gate in GATES)
    # the measurement keys are the ones sdk.quality.assess writes on a face frame
    from sdk.detect import Detection, Detections, measure_face_depth
    from sdk.quality import assess
    from sdk.types import FaceBox
    from tests.test_detect_support import face_frame

    frames = face_frame(0.5, 0.15)[0]
    box = FaceBox(247, 160, 400, 313, 0.95)
    # min_relief_mm on: the relief gate measures only when it is on (off by default)
    measured = assess(frames, Detections((Detection(box, measure_face_depth(frames, box)),)),
                      config=QualityConfig(min_relief_mm=1.0)).measurements
    assert {gate.measurement for gate in GATES} <= set(measured)


def test_rows_without_measurements_say_so_and_the_envelope_counts_classes():
    old = [{"label": 1, "outcomes": [{"score": 0.9, "reasons": []}]}]
    coverage = gate_coverage(old, quality_rule(None))
    assert coverage["scored_frames_without_measurements"] == 1
    assert all(g["uncovered"] is None for g in coverage["gates"].values())
    assert "not measured" in format_coverage(coverage)
    assert format_coverage(gate_coverage([], quality_rule(None))) == "gate coverage: no scored frames"
    envelope = measurement_envelope(_rows())
    assert envelope["live"]["saturated_fraction"]["n"] == 3 and envelope["attack"]["saturated_fraction"]["n"] == 1


def test_frame_outcomes_carry_their_measurements_into_json():
    outcome = FrameOutcome(3, None, (Reason.OVEREXPOSED,), None, quality={"saturated_fraction": 0.3,
                                                                          "face_depth_m": math.nan})
    data = outcome.to_dict()
    assert data["quality"] == {"saturated_fraction": 0.3}  # nan cannot be JSON: left out
    json.dumps(data)
    assert FrameOutcome(1, 0.5, (), None).to_dict()["quality"] == {}


def test_the_breakdown_tool_prints_gate_coverage(tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    rows = [dict(row, recording=f"r{i}.bag", species="live" if row["label"] == 1 else "print_flat",
                 check_score=0.9 if row["label"] == 1 else 0.01, conditions=[]) for i, row in enumerate(_rows())]
    (report / "checks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = subprocess.run([sys.executable, "tools/calibration_breakdown.py", str(report), "--threshold", "0.5",
                             "--json"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["gate_coverage"]["gates"]["max_saturated_fraction"]["uncovered"] == [0.06, 0.25]
    assert "default gates" in data["gate_coverage"]["gates_from"]
