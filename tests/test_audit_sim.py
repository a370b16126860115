"""audit-sim: single-scalar shortcut audit of the simulator (issue 9 item 7).

The CI gate renders the issue's minimum set (40 live sessions and 40 per attack scenario, fixed
seeds, crops cut with BlazeFace's boxes) and fails when a non-physics scalar separates live
from any attack with AUC > 0.9.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from sdk.sim import Simulator
from sdk.sim.audit import (AUDIT_ATTACKS, MAX_NON_PHYSICS_AUC, SCALARS, AuditResult, audit_jobs, auc,
                           crop_scalars, run_audit)


def test_auc_matches_the_definition():
    assert auc([3, 4, 5], [0, 1, 2]) == 1.0
    assert auc([0, 1, 2], [3, 4, 5]) == 0.0
    assert auc([1, 1], [1, 1]) == 0.5  # ties count half
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 60), rng.normal(0.5, 1, 70)
    brute = np.mean([(x > y) + 0.5 * (x == y) for x in a for y in b])
    assert auc(a, b) == pytest.approx(brute)
    assert np.isnan(auc([], [1.0]))
    assert auc([1.0, float("nan")], [0.0]) == 1.0


def test_scalars_are_marked_and_measured():
    assert len(SCALARS) >= 15
    assert len({s.name for s in SCALARS}) == len(SCALARS)
    physics = {s.name for s in SCALARS if s.physics}
    assert {"depth_relief", "ir_centre_mean"} <= physics
    assert {"zero_depth_share", "far_share", "black_colour_share", "yaw_deg", "distance_m"}.isdisjoint(physics)
    assert sum(not s.physics for s in SCALARS) >= 12
    fs, truth = Simulator("live", 7).render(0)
    row = crop_scalars(fs, truth.face_box, truth)
    assert set(row) == {s.name for s in SCALARS}
    assert 0.0 <= row["zero_depth_share"] <= 1.0 and 0.2 < row["distance_m"] < 1.2
    assert row["depth_relief"] > 10.0  # a live face has centimetres of relief
    assert len(audit_jobs(3)) == 3 * (1 + len(AUDIT_ATTACKS))
    assert audit_jobs(3, seed=1) != audit_jobs(3, seed=0)


def test_failures_flag_only_non_physics_scalars():
    result = AuditResult(per_scenario=3, seed=0)
    base = {s.name: 0.0 for s in SCALARS}
    result.samples["live"] = [dict(base, yaw_deg=10.0 + i, depth_relief=30.0 + i) for i in range(3)]
    result.samples["print_flat"] = [dict(base, yaw_deg=1.0 + i, depth_relief=1.0 + i) for i in range(3)]
    bad = result.failures()
    assert ("yaw_deg", "print_flat", 1.0) in bad
    assert not any(s == "depth_relief" for s, _, _ in bad)  # physics may separate
    assert result.to_dict()["passed"] is False and "| yaw_deg | no |" in result.markdown()


def test_cli_runs_and_reports_json():
    out = subprocess.run([sys.executable, "-m", "sdk.cli", "audit-sim", "--json", "--per-scenario", "2", "--seed", "3",
                          "--workers", "1"], capture_output=True, text=True, timeout=900)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["per_scenario"] == 2 and report["seed"] == 3
    assert len(report["scalars"]) == len(SCALARS) and report["passed"] == (out.returncode == 0)
    assert set(report["scalars"][0]["auc"]) == set(AUDIT_ATTACKS)


def test_no_non_physics_shortcut_at_the_issue_minimum():
    """CI gate: 40 live + 40 per attack scenario, fixed seeds, detector boxes."""
    result = run_audit(per_scenario=40, seed=0, workers=2)
    assert result.detected.get("live", 0) >= 36, result.detected
    report = result.to_dict()
    assert report["failures"] == [], result.markdown()
    for scalar in report["scalars"]:
        if not scalar["physics"]:
            assert all(v is None or v <= MAX_NON_PHYSICS_AUC for v in scalar["auc"].values()), scalar
