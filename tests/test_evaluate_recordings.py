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
