"""tools/evaluate_recordings.py at small N: incremental JSON lines, resume, table and summary."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "tools" / "evaluate_recordings.py"


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "--out", str(out), "--live", "1", "--attacks", "1",
                           "--frames", "8", "--scenarios", "live", "cut_eyes_flat", "screen_replay", *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_small_run_appends_lines_resumes_and_summarises(tmp_path):
    pytest.importorskip("pyrealsense2", reason="recordings are written and replayed with pyrealsense2")
    pytest.importorskip("mediapipe", reason="the session's detector needs mediapipe")
    first = _run(tmp_path)
    assert first.returncode in (0, 1), first.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sorted(r["scenario"] for r in rows) == ["cut_eyes_flat", "live", "screen_replay"]
    assert all(r["seed"] >= 900_000_000 and not r["error"] and r["frames"] == 8 for r in rows)
    assert not list(tmp_path.glob("**/*.bag"))  # rendered bags are removed
    summary = json.loads((tmp_path / "summary.json").read_text())
    from sdk.engine import ModelBundle

    points = ModelBundle.load(None).manifest["operating_points"]["points"]
    assert set(summary["points"]) == set(points)
    for name, point in summary["points"].items():
        assert point["threshold"] == points[name]["threshold"]
        assert set(point["apcer_per_species"]) == {"cut_eyes_flat", "screen_replay"}
        assert point["n_live"] == 1 and point["bpcer_upper_95"] is not None and point["worst_species"]
        for rate in point["apcer_per_species"].values():
            assert rate["n_attack"] == 1 and 0.0 <= rate["apcer"] <= rate["apcer_upper_95"] <= 1.0
    assert "worst" in first.stdout and "BPCER" in first.stdout
    # A re-run finds everything done and renders nothing.
    again = _run(tmp_path)
    assert "3 done, 0 to do" in again.stdout
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 3
    # Every row says which held-out generator families it falls into, and the summary splits
    # in-distribution from held-out recordings.
    assert all(isinstance(r["holdout_families"], list) for r in rows)
    in_distribution = [r for r in rows if not r["holdout_families"]]
    assert summary["in_distribution"]["recordings"] == len(in_distribution)
    for family, part in summary["held_out"].items():
        assert part["recordings"] == sum(family in r["holdout_families"] for r in rows) > 0
    assert "== in-distribution only" in first.stdout


def test_held_out_families_from_the_generator_truth_match_the_sidecar(tmp_path):
    pytest.importorskip("pyrealsense2", reason="the sidecar comes with a recording written with pyrealsense2")
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import evaluate_recordings
    finally:
        sys.path.remove(str(REPO / "tools"))
    from sdk.cli.cmd_synth_bag import synth_bag
    from sdk.sim.holdout import HOLDOUT_FAMILIES

    for scenario, seed in (("live", 900_000_001), ("mask_3d", 900_100_000)):
        sidecar = synth_bag(scenario, seed, 4, tmp_path / f"{scenario}.bag")
        assert evaluate_recordings.families_job((scenario, seed, 4)) == (scenario, seed, sidecar["holdout_families"])
        assert set(sidecar["holdout_families"]) <= set(HOLDOUT_FAMILIES) | {"near_lt03"}
    assert "mask_3d" in sidecar["holdout_families"]  # a held-out attack species is held out whole
