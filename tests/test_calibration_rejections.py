"""calibration.rejections: which live checks failed on the score and which never could, per condition."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from calibration.rejections import (NOMINAL, breakdown, conditions_from_sidecar, format_breakdown, live_rejections,
                                    per_condition, read_report_rows)

ROOT = Path(__file__).resolve().parents[1]


def _row(name: str, label: int, score: float, reasons: list[list[str]] = (), conditions: list[str] = ()) -> dict:
    return {"recording": name, "label": label, "check_score": score, "conditions": list(conditions),
            "outcomes": [{"reasons": list(r)} for r in reasons]}


ROWS = [
    _row("live_ok", 1, 0.9),
    _row("live_low", 1, 0.02, [[]] * 10),
    _row("live_gated", 1, 0.0, [["DEPTH_HOLES"]] * 7 + [["NO_FACE"]] * 3, ["far_gt08"]),
    _row("live_dark", 1, 0.0, [["TOO_DARK", "NO_FACE"]] * 4 + [["TOO_DARK"]], ["far_gt08", "sunlight"]),
    _row("attack_low", 0, 0.001, conditions=["far_gt08"]),
    _row("attack_high", 0, 0.5),
]


def test_live_rejections_split_score_from_never_live():
    result = live_rejections(ROWS, threshold=0.05)
    assert (result["n_live"], result["n_rejected"], result["score"], result["never_live"]) == (4, 3, 1, 2)
    assert result["score_recordings"] == ["live_low"]
    assert result["never_live_recordings"] == ["live_dark", "live_gated"]
    # each never-live check counts once, under the reason most of its frames carried
    assert result["never_live_by_reason"] == {"DEPTH_HOLES": 1, "TOO_DARK": 1}
    # a threshold under the low score leaves only the checks no threshold can accept
    assert live_rejections(ROWS, threshold=0.01)["score"] == 0


def test_per_condition_counts_a_session_in_each_condition_it_names():
    table = per_condition(ROWS, threshold=0.05)
    assert list(table)[0] == NOMINAL
    assert table[NOMINAL]["live_rejected"]["n"] == 2 and table[NOMINAL]["live_rejected"]["count"] == 1
    assert table[NOMINAL]["attack_accepted"]["count"] == 1  # attack_high at 0.5 >= 0.05
    assert table["far_gt08"]["live_rejected"]["count"] == 2 and table["far_gt08"]["attack_accepted"]["n"] == 1
    assert table["sunlight"]["attack_accepted"] == {"n": 0, "count": 0, "rate": None, "upper_95": None}
    upper = table["far_gt08"]["live_rejected"]["upper_95"]
    assert 0.0 < upper <= 1.0


def test_format_breakdown_names_the_split_and_skips_empty_rates():
    text = format_breakdown(breakdown(ROWS, threshold=0.05))
    assert "1 on the model's score, 2 never live" in text
    assert "sunlight" in text and "attacks accepted 0/0" not in text


def test_conditions_come_from_either_sidecar_key():
    data = {"holdout_families": ["yaw_gt20", "far_gt08"], "conditions": ["far_gt08", "rig_a", 3, ""]}
    assert conditions_from_sidecar(data) == ("far_gt08", "rig_a", "yaw_gt20")
    assert conditions_from_sidecar({"holdout_families": "sunlight"}) == ()  # not a list: ignored


def test_discover_reads_conditions_into_the_recording(tmp_path):
    from calibration.recordings import discover

    bag = tmp_path / "live_1.bag"
    bag.write_bytes(b"not replayed here")
    bag.with_suffix(".json").write_text(json.dumps({"label": 1, "holdout_families": ["sunlight"]}))
    (recording,) = discover([tmp_path])
    assert recording.conditions == ("sunlight",)
    assert recording.to_dict()["conditions"] == ["sunlight"]


def test_the_tool_reads_an_old_report_and_fills_conditions_from_sidecars(tmp_path):
    bags = tmp_path / "bags"
    bags.mkdir()
    rows = []
    for row in ROWS:
        path = bags / f"{row['recording']}.bag"
        path.with_suffix(".json").write_text(json.dumps({"label": row["label"], "holdout_families": row["conditions"]}))
        old = {k: v for k, v in row.items() if k != "conditions"}  # a report written before conditions
        rows.append({**old, "path": str(path)})
    report = tmp_path / "report"
    report.mkdir()
    (report / "checks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (report / "summary.json").write_text(json.dumps({"operating_points": {"balanced": {"threshold": 0.05}}}))
    assert [r["conditions"] for r in read_report_rows(report)] == [r["conditions"] for r in ROWS]
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "calibration_breakdown.py"), str(report), "--json"],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)["balanced"]
    assert result["live_rejections"]["never_live"] == 2
    assert result["per_condition"]["far_gt08"]["live_rejected"]["count"] == 2
    bad = subprocess.run([sys.executable, str(ROOT / "tools" / "calibration_breakdown.py"), str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no checks.jsonl" in bad.stderr


@pytest.mark.parametrize("threshold", [0.0, 1.5])
def test_the_tool_refuses_a_threshold_outside_the_unit_interval(tmp_path, threshold):
    (tmp_path / "checks.jsonl").write_text("")
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "calibration_breakdown.py"), str(tmp_path),
                          "--threshold", str(threshold)], capture_output=True, text=True)
    assert out.returncode == 2 and "--threshold" in out.stderr
