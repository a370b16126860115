"""The independent renderer of real people (calibration/independent) and its evaluation command."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calibration.independent import assets, people, raster, scene
from calibration.independent.evaluate import Report, plan, run, write_recording
from sdk.errors import InputValidationError

PACKAGE = Path(scene.__file__).parent


def test_shares_no_code_with_the_simulator():
    for path in PACKAGE.glob("*.py"):
        assert not re.search(r"sdk\.sim|from sdk import sim", path.read_text()), path
    code = "import sys; import calibration.independent.evaluate, calibration.independent.scene; " \
           "print(any(m.startswith('sdk.sim') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-1000:]


def test_rasterizer_puts_a_plane_at_its_depth():
    cam = raster.Camera(64, 48, 50.0, 50.0, 32.0, 24.0)
    verts = np.array([[-0.1, -0.1, 0.5], [0.1, -0.1, 0.5], [0.1, 0.1, 0.6], [-0.1, 0.1, 0.6]])
    tris = np.array([[0, 1, 2], [0, 2, 3]])
    r = raster.rasterize(cam, [(verts, tris)])
    hit = r.surface == 0
    assert 0.08 < hit.mean() < 0.15  # about 20 x 18 of 64 x 48 pixels
    # the plane rises from 0.5 m (top rows) to 0.6 m (bottom rows); depth is exact at the centre row
    assert abs(float(r.z[24, 32]) - 0.55) < 0.003
    assert r.z[hit].min() >= 0.5 - 1e-6 and r.z[hit].max() <= 0.6 + 1e-6
    # a nearer quad hides the first one where they overlap
    near = verts.copy()
    near[:, 2] = 0.3
    r2 = raster.rasterize(cam, [(verts, tris), (near * [0.3, 0.3, 1], tris)])
    assert r2.surface[24, 32] == 1 and abs(float(r2.z[24, 32]) - 0.3) < 1e-6


def test_real_face_scan_has_human_proportions():
    scan = assets.load_scan()
    eyes = np.linalg.norm(scan.keypoints[1] - scan.keypoints[0])
    assert 0.055 < eyes < 0.075  # interpupillary distance of adults, metres
    eye_to_chin = scan.keypoints[:2].mean(axis=0)[1] - scan.keypoints[4][1]
    assert 0.10 < eye_to_chin < 0.14
    assert scan.keypoints[2][2] > scan.keypoints[0][2] + 0.02  # the nose sticks out
    assert len(scan.triangles) > 10_000 and scan.texture.shape[2] == 3


@pytest.mark.parametrize("name", assets.PHOTOS)
def test_photo_people_fit_their_keypoints(name):
    photo = assets.load_photo(name)
    scan = assets.load_scan()
    params = people.fit_to_photo(scan.keypoints, photo.keypoints)
    fitted = people._photo_projection(params, scan.keypoints)
    eye_px = np.linalg.norm(photo.keypoints[1] - photo.keypoints[0])
    assert np.abs(fitted - photo.keypoints).max() < 0.2 * eye_px
    assert abs(params[0]) < 30 and 0.8 < params[6] < 1.25 and 0.8 < params[7] < 1.25


@pytest.fixture(scope="module")
def frames():
    return {kind: scene.Scene(kind, "astronaut", 5).render(0) for kind in ("live", "print_flat")}


def test_frames_are_sr300_shaped_with_depth_in_sr300_units(frames):
    f = frames["live"]
    assert f.color.shape == (480, 640, 3) and f.ir.shape == (480, 640) and f.depth.shape == (480, 640)
    assert f.depth.dtype == np.uint16 and f.depth_scale == pytest.approx(0.000125)
    s = scene.Scene("live", "astronaut", 5)
    centre = f.depth[200:290, 270:370]
    face = centre[centre > 0] * f.depth_scale
    assert face.size > 100
    assert abs(float(np.median(face)) - s.distance) < 0.08
    assert not f.color[f.depth == 0].any()  # colour blanked where depth is missing, as rs.align does


def test_frames_are_a_pure_function_of_scene_and_index():
    a = scene.Scene("print_curved", "takeo", 3).render(2)
    b = scene.Scene("print_curved", "takeo", 3).render(2)
    c = scene.Scene("print_curved", "takeo", 4).render(2)
    assert np.array_equal(a.depth, b.depth) and np.array_equal(a.ir, b.ir) and np.array_equal(a.color, b.color)
    assert not np.array_equal(a.depth, c.depth)


def test_a_flat_print_is_flat_and_a_live_face_is_not(frames):
    def relief(f):
        z = f.depth.astype(np.float64) * f.depth_scale
        near = (z > 0) & (z < np.median(z[z > 0]) + 0.05)
        ys, xs = np.nonzero(near)
        design = np.stack([xs, ys, np.ones_like(xs)], axis=1).astype(float)
        coef, *_ = np.linalg.lstsq(design, z[near], rcond=None)
        return float(np.std(z[near] - design @ coef))

    assert relief(frames["print_flat"]) < 0.003 < relief(frames["live"])


def test_print_ir_follows_the_ink_model():
    # pigment inks are transparent in NIR: the print's IR keeps far less contrast than its colour
    s = scene.Scene("print_flat", "takeo", 1)
    f = s.render(0)
    z = f.depth * f.depth_scale
    valid = (f.depth > 0) & (z < s.distance + 0.05)  # the sheet, not the wall
    grey = f.color.mean(axis=2)[valid]
    ir = f.ir[valid].astype(float)
    assert np.std(ir) / max(np.mean(ir), 1) < np.std(grey) / max(np.mean(grey), 1)


def test_plan_covers_every_kind_of_every_person():
    p = plan(4)
    assert len(p) == 4 * len(scene.KINDS)
    assert [x.person for x in p if x.kind == "live"] == ["james", "astronaut", "takeo", "james"]
    assert len({x.seed for x in p}) == 4
    with pytest.raises(InputValidationError):
        plan(0)
    with pytest.raises(InputValidationError):
        plan(1, kinds=("live", "hologram"))


def test_recordings_replay_bit_exact(tmp_path):
    from sdk.capture import BagReplay

    p = plan(1, kinds=("live",))[0]
    bag = tmp_path / "live.bag"
    assert write_recording(p, bag, 2) == 2
    s = scene.Scene(p.kind, p.person, p.seed)
    with BagReplay(bag) as replay:
        got = list(replay)
    assert len(got) == 2
    assert np.array_equal(got[1].depth, s.render(1).depth) and np.array_equal(got[1].ir, s.render(1).ir)
    assert got[0].depth_scale == pytest.approx(0.000125, rel=1e-6)


def test_evaluation_runs_the_session_at_every_operating_point():
    report = run(None, people=1, frames=5, kinds=("live", "print_flat"))
    assert isinstance(report, Report)
    points = set(report.operating_points)
    assert "balanced" in points
    assert len(report.outcomes) == 2 * len(points)
    assert {o.decision for o in report.outcomes} <= {"LIVE", "SPOOF", "UNCERTAIN"}
    summary = report.summary()["balanced"]
    assert summary["live_n"] == 1 and summary["attacks_n"] == 1
    assert summary["live_rejected"] == summary["live_spoof"] + summary["live_uncertain"]
    assert 0.0 <= summary["bpcer"] <= summary["bpcer_upper_95"] <= 1.0
    d = report.to_dict()
    assert d["seeds"] == [report.outcomes[0].presentation.seed] and len(d["presentations"]) == len(report.outcomes)


def test_eval_independent_command_json():
    out = subprocess.run([sys.executable, "-m", "sdk.cli", "eval-independent", "--people", "1", "--frames", "2", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    summary = result["summary"]
    assert set(summary) == set(result["operating_points"])
    point = next(iter(summary.values()))
    assert set(point["apcer_per_kind"]) == set(scene.ATTACK_KINDS)
    assert point["live_n"] == 1 and point["attacks_n"] == len(scene.ATTACK_KINDS)
    assert len(result["presentations"]) == len(scene.KINDS) * len(summary)
    assert result["seeds"] == [9_100_000]


def test_cached_recordings_are_rendered_once_and_give_the_same_checks(tmp_path, monkeypatch):
    from calibration.independent import evaluate

    first = run(None, people=1, frames=2, kinds=("live",), cache=tmp_path)
    bags = list(tmp_path.rglob("*.bag"))
    assert len(bags) == 1 and bags[0].parent.name == evaluate.renderer_digest()[:16]
    assert not list(tmp_path.rglob("*.part"))

    def no_render(*args, **kwargs):
        raise AssertionError("a cached recording was rendered again")

    monkeypatch.setattr(evaluate, "write_recording", no_render)
    second = run(None, people=1, frames=2, kinds=("live",), cache=tmp_path)
    assert [(o.decision, o.score, o.reasons) for o in second.outcomes] == \
           [(o.decision, o.score, o.reasons) for o in first.outcomes]
    with pytest.raises(AssertionError, match="rendered again"):  # another frame count is another recording
        run(None, people=1, frames=3, kinds=("live",), cache=tmp_path)


def test_renderer_digest_follows_the_package_files():
    from calibration.independent import evaluate

    assert evaluate.renderer_digest() == evaluate.renderer_digest()
    assert re.fullmatch(r"[0-9a-f]{64}", evaluate.renderer_digest())
