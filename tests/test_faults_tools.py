"""Small runs of the reliability tools (the real runs take 30 minutes and are in docs/reliability.md)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import soak  # noqa: E402


def test_slope_per_hour():
    t = np.arange(0, 600, 5.0)
    assert soak.slope_per_hour(t, 100 + 0.001 * t) == pytest.approx(3.6)
    assert abs(soak.slope_per_hour(t, np.full_like(t, 7.0))) < 1e-9
    assert soak.slope_per_hour([1.0], [2.0]) is None
    rows = soak.slice_stats(np.array([0.5, 1.0, 61.0]), np.array([10.0, 20.0, 30.0]), 60.0)
    assert [r["frames"] for r in rows] == [2, 1] and rows[1]["p95_ms"] == 30.0


def test_soak_runs_and_reports(tmp_path):
    pytest.importorskip("pyrealsense2", reason="the soak loops a .bag recording: needs the camera extra")
    run = subprocess.run([sys.executable, "tools/soak.py", "--minutes", "0.08", "--out", str(tmp_path), "--bag-frames", "6",
                          "--sample-s", "1", "--slice-s", "2", "--warmup-s", "0", "--no-progress",
                          "--malloc-arena-max", "2"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["checks"] >= 1 and report["frames"] >= 5
    assert report["passes_over_recording"] >= 1
    assert report["rss_slope_mb_per_h"] is not None and report["open_fds"]["max"] >= report["open_fds"]["min"]
    assert report["slices"] and all(r["p95_ms"] >= r["p50_ms"] for r in report["slices"])
    assert (tmp_path / "samples.csv").read_text().count("\n") >= 3
    assert "soak:" in run.stdout and "RSS MB" in run.stdout
    # restarted under the recommended allocator setting; glibc's heap split into in use / kept free
    assert report["malloc_arena_max"] == "2" and "MALLOC_ARENA_MAX=2" in run.stdout
    if soak.heap_mb() is not None:
        assert report["heap_in_use_slope_mb_per_h"] is not None
        header = (tmp_path / "samples.csv").read_text().splitlines()[0]
        assert header.endswith("heap_in_use_mb,heap_free_mb")


def test_fault_table_small_run(tmp_path):
    out = tmp_path / "table.md"
    run = subprocess.run([sys.executable, "tools/fault_table.py", "--repeat", "1", "--only", "bundle", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    data = json.loads(out.with_suffix(".json").read_text())
    rows = {r["fault"]: r for r in data["rows"]}
    assert rows["model_file_outside"]["outcomes"] == {"ModelIntegrityError (load)": 1}
    assert rows["model_not_onnx"]["outcomes"] == {"UNCERTAIN MODEL_ERROR": 1}
    assert all(r["live"] == 0 for r in data["rows"])
    assert "| bundle | `symlink_outside` |" in out.read_text()


def test_memprobe_small_run(tmp_path):
    """The memory probe separates Python objects, glibc's heap and RSS (docs/reliability.md, soak)."""
    out = tmp_path / "probe.json"
    run = subprocess.run([sys.executable, "tools/memprobe.py", "--component", "engine", "--seconds", "2",
                          "--sample-s", "0.5", "--warmup-s", "0", "--frames", "3", "--trim", "--tracemalloc", "--gc",
                          "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["component"] == "engine" and report["iterations"] >= 1 and len(report["samples"]) >= 3
    assert {"rss_mb", "traced_mb"} <= set(report["slopes_per_h"])
    assert all(s["traced_mb"] >= 0 and s["rss_mb"] > 0 for s in report["samples"])
    if soak.heap_mb() is not None:  # glibc: trimmed RSS and heap figures are there too
        assert "rss_after_trim_mb" in report["samples"][-1] and "heap_in_use_mb" in report["samples"][-1]
    bad = subprocess.run([sys.executable, "tools/memprobe.py", "--component", "nothing", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
