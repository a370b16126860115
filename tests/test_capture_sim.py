"""Capture layer on real simulator output: SimulatorSource, synth-bag (CLI and sidecar), and
what librealsense sees in the recorded depth (a curved live face, a flat print)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyrealsense2", reason="pyrealsense2 (extra 'camera') is not installed")

from sdk.capture import BagReplay, SimulatorSource, open_source  # noqa: E402
from sdk.cli import main  # noqa: E402
from sdk.cli.cmd_synth_bag import synth_bag  # noqa: E402
from sdk.errors import UnknownScenarioError  # noqa: E402
from sdk.sim import Simulator, get_scenario, list_scenarios  # noqa: E402
from sdk.types import FrameSet  # noqa: E402


def _face_points(frameset: FrameSet, box: list[float]) -> np.ndarray:
    """Camera-space points (metres) of the valid depth pixels inside a face box."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    intr = frameset.intrinsics.depth
    z = frameset.depth_m()[y0:y1, x0:x1]
    ys, xs = np.mgrid[y0:y1, x0:x1]
    valid = z > 0
    z = z[valid].astype(np.float64)
    return np.c_[(xs[valid] - intr.ppx) * z / intr.fx, (ys[valid] - intr.ppy) * z / intr.fy, z]


def _plane_residual_mm(points: np.ndarray) -> float:
    a = np.c_[points[:, 0], points[:, 1], np.ones(len(points))]
    coef, *_ = np.linalg.lstsq(a, points[:, 2], rcond=None)
    return float(np.sqrt(np.mean((points[:, 2] - a @ coef) ** 2)) * 1000)


def _median_depth(frameset: FrameSet, u: float, v: float, r: int = 3) -> float:
    d = frameset.depth_m()[int(v) - r : int(v) + r + 1, int(u) - r : int(u) + r + 1]
    return float(np.median(d[d > 0]))


# -- SimulatorSource -------------------------------------------------------------------------
def test_simulator_source_matches_the_simulator():
    sim = Simulator("live", 4)
    with SimulatorSource("live", 4, n_frames=3) as source:
        assert source.device_info == sim.device_info and source.device_info.origin == "simulator"
        assert [p.stream.value for p in source.profiles] == ["depth", "ir", "color"]
        frames = list(source)
        assert source.last_truth is not None and source.last_truth.scenario == "live"
    assert len(frames) == 3
    for i, frame in enumerate(frames):
        want, _ = sim.render(i)
        assert np.array_equal(frame.depth, want.depth) and np.array_equal(frame.color, want.color)
        assert frame.frame_number == want.frame_number
    assert not np.shares_memory(frames[0].depth, frames[1].depth)


def test_simulator_source_real_time_paces_frames():
    with SimulatorSource("live", 0, n_frames=4, fps=20.0, real_time=True) as source:
        start = time.monotonic()
        list(source)
        assert time.monotonic() - start >= 3 / 20.0 - 0.01


def test_open_source_scenario_and_unknown():
    with open_source("live", seed=2, n_frames=1) as source:
        assert isinstance(source, SimulatorSource) and source.seed == 2
        assert len(list(source)) == 1
    with pytest.raises(UnknownScenarioError):
        SimulatorSource("no_such_scenario", 0)


# -- synth-bag -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live_bag(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "live.bag"
    assert main(["synth-bag", "--scenario", "live", "--seed", "5", "--frames", "4", "--out", str(out)]) == 0
    return out


def test_synth_bag_sidecar_shape(live_bag):
    sidecar = json.loads(live_bag.with_suffix(".json").read_text())
    assert sidecar["scenario"] == "live" and sidecar["label"] == 1 and sidecar["attack_type"] is None
    assert sidecar["seed"] == 5
    assert [f["frame_number"] for f in sidecar["frames"]] == [1, 2, 3, 4]
    for row in sidecar["frames"]:
        x0, y0, x1, y1 = row["face_box"]
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480


def test_synth_bag_replays_bit_exact(live_bag):
    sim = Simulator("live", 5)
    with BagReplay(live_bag) as replay:
        assert replay.device_info.serial == sim.device_info.serial and replay.device_info.origin == "bag"
        got = list(replay)
    assert len(got) == 4
    for i, have in enumerate(got):
        want, _ = sim.render(i)
        assert np.array_equal(have.depth, want.depth)
        assert np.array_equal(have.ir, want.ir)
        assert np.array_equal(have.color, want.color)
        assert have.frame_number == want.frame_number
        assert have.timestamp_ms == round(want.timestamp_ms, 6)
        assert have.depth_scale == sim.depth_scale
        assert have.intrinsics.depth == sim.intrinsics.depth and have.intrinsics.ir == sim.intrinsics.ir


def test_live_bag_depth_shows_a_curved_face(live_bag):
    """librealsense's view of a live face: the nose 2-4 cm nearer than the cheeks."""
    sidecar = json.loads(live_bag.with_suffix(".json").read_text())
    with BagReplay(live_bag) as replay:
        frame = next(replay)
    x0, y0, x1, y1 = sidecar["frames"][0]["face_box"]
    w, h = x1 - x0, y1 - y0
    centre = frame.depth_m()[int(y0 + 0.3 * h) : int(y0 + 0.75 * h), int(x0 + 0.3 * w) : int(x0 + 0.7 * w)]
    nose = float(np.percentile(centre[centre > 0], 2))
    cheeks = np.mean([_median_depth(frame, x0 + 0.18 * w, y0 + 0.6 * h), _median_depth(frame, x0 + 0.82 * w, y0 + 0.6 * h)])
    assert 0.02 <= cheeks - nose <= 0.04
    assert _plane_residual_mm(_face_points(frame, sidecar["frames"][0]["face_box"])) > 5.0


def test_flat_print_bag_depth_is_a_plane(tmp_path):
    # Seed 0 draws a whole sheet; contour-cut and small prints show the attacker's head beside them.
    from sdk.sim import Simulator

    assert Simulator("print_flat", 0).scene.shape == "sheet"
    out = tmp_path / "flat.bag"
    sidecar = synth_bag("print_flat", 0, 2, out)
    assert sidecar["label"] == 0
    with BagReplay(out) as replay:
        frame = next(replay)
    points = _face_points(frame, sidecar["frames"][0]["face_box"])
    assert len(points) > 500
    assert _plane_residual_mm(points) < 4.0


def test_synth_bag_empty_scenario_has_no_boxes(tmp_path):
    out = tmp_path / "empty.bag"
    assert main(["synth-bag", "--scenario", "empty", "--seed", "1", "--frames", "2", "--out", str(out)]) == 0
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["label"] == 0 and [f["face_box"] for f in sidecar["frames"]] == [None, None]


def test_synth_bag_list(capsys):
    assert main(["synth-bag", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list_scenarios()
    cut = next(line for line in lines if line.startswith("cut_eyes_flat "))
    assert "attack" in cut and f"attack_type={get_scenario('cut_eyes_flat').attack_type}" in cut


def test_synth_bag_errors(tmp_path, capsys):
    assert main(["synth-bag", "--scenario", "nope", "--out", str(tmp_path / "x.bag")]) == 3
    assert "unknown scenario" in capsys.readouterr().err
    assert main(["synth-bag", "--scenario", "live", "--out", str(tmp_path / "x.avi")]) == 2
    assert list(tmp_path.iterdir()) == []


def test_exposure_scale_brightens_colour_only_and_is_recorded(tmp_path):
    """Calibration recordings that cover brighter faces (tools/make_recordings.py --exposure-scale):
    the colour exposure scales, IR and depth do not, and the sidecar says so."""
    from sdk.sim import Simulator
    from sdk.errors import InputValidationError

    plain, _ = Simulator("live", 3).render(0)
    bright, _ = Simulator("live", 3, exposure_scale=4.0).render(0)
    assert bright.color.mean() > plain.color.mean() + 20
    assert np.array_equal(bright.ir, plain.ir) and np.array_equal(bright.depth, plain.depth)
    with pytest.raises(InputValidationError, match="exposure_scale"):
        Simulator("live", 3, exposure_scale=0.0)
    sidecar = synth_bag("live", 3, 2, tmp_path / "bright.bag", exposure_scale=4.0)
    assert sidecar["exposure_scale"] == 4.0 and "exposure_scaled" in sidecar["holdout_families"]
    assert "exposure_scale" not in synth_bag("live", 3, 2, tmp_path / "plain.bag")


def test_make_recordings_draws_the_exposure_scale_from_the_seed():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_recordings", Path(__file__).resolve().parents[1] / "tools" / "make_recordings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    draws = [module.exposure_scale_for(600005000 + i, 1.5, 8.0) for i in range(100)]
    assert all(1.5 <= d <= 8.0 for d in draws) and max(draws) / min(draws) > 3
    assert draws == [module.exposure_scale_for(600005000 + i, 1.5, 8.0) for i in range(100)]  # fixed by the seed
    assert module.exposure_scale_for(7, 1.0, 1.0) == 1.0
