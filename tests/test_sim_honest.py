"""The honest simulator (issue 9): cut-outs rest on the face, coded-light depth failures keyed
to NIR and material, one set of nuisance ranges and camera responses for every class."""
from __future__ import annotations

import numpy as np
import pytest

from sdk.sim import Simulator
from sdk.sim.face import MAT_GLASS
from sdk.sim.profile import draw_profile
from sdk.sim.render import concat_points, splat


def _box_patch(a, box, frac=0.25):
    x0, x1 = int(box.x0 + box.width * frac), int(box.x1 - box.width * frac)
    y0, y1 = int(box.y0 + box.height * frac), int(box.y1 - box.height * frac)
    return a[y0:y1, x0:x1]


@pytest.mark.parametrize("scenario", ["cut_eyes_flat", "cut_eyes_curved", "cut_eyes_nose_flat",
                                      "cut_eyes_nose_curved", "cut_eyes_nose_mouth_flat", "cut_eyes_nose_mouth_curved"])
def test_no_attacker_skin_in_front_of_the_uncut_paper(scenario):
    """Splat the attacker's head and the sheet separately with the frame's own transforms: where
    both cover a pixel, the paper is nearer (holes are not paper, so the face may show there)."""
    for seed in range(3):
        sim = Simulator(scenario, 40 + seed)
        scene = sim.scene
        for index in (0, 13):
            content = sim.scene.content(index)
            sheet_pts, head_pts = content.points[0], content.points[1]
            sheet, head = splat(sheet_pts, sim.view, fill_passes=0), splat(head_pts, sim.view, fill_passes=0)
            assert sheet is not None and head is not None
            zs = np.full((480, 640), np.inf, np.float32)
            zh = np.full((480, 640), np.inf, np.float32)
            r0, r1, c0, c1 = sheet.box
            zs[r0:r1, c0:c1] = sheet.z
            r0, r1, c0, c1 = head.box
            zh[r0:r1, c0:c1] = head.z
            both = np.isfinite(zs) & np.isfinite(zh)
            assert both.sum() > 500
            # Splat sampling puts a point up to half a pixel off: allow 1.5 mm at most.
            assert (zh[both] >= zs[both] - 0.0015).all(), (scenario, seed, index, float((zs - zh)[both].max()))
        # And the sheet really rests on the face: nearly touching (clearance of 2-8 mm).
        assert scene.gap == pytest.approx(scene.min_gap) and scene.gap - scene._resting_gap() <= 0.0081


def _head_beside_paper_share(sim: Simulator, index: int = 0) -> float:
    """Share of the crop region (1.3 x the truth box) where the attacker's head shows and no paper."""
    from sdk.preprocess import square_region

    content = sim.scene.content(index)
    sheet, head = splat(content.points[0], sim.view), splat(content.points[1], sim.view)
    covered = {}
    for name, layer in (("sheet", sheet), ("head", head)):
        full = np.zeros((480, 640), bool)
        r0, r1, c0, c1 = layer.box
        full[r0:r1, c0:c1] = np.isfinite(layer.z)
        covered[name] = full
    x0, y0, side = square_region(sim._truth(index, content).face_box)
    region = (slice(max(0, y0), y0 + side), slice(max(0, x0), x0 + side))
    return float((covered["head"][region] & ~covered["sheet"][region]).mean())


def test_worn_cutouts_include_face_oval_masks_with_the_head_around_them():
    """A face-oval paper mask leaves the attacker's hair, ears and jaw line in view (as around a
    live face); a sheet cut-out hides them."""
    from sdk.sim.attacks import CUT_SHAPE_P, CUT_SHAPES, PRINT_SHAPES

    assert "oval" in CUT_SHAPES and "oval" not in PRINT_SHAPES  # whole prints are held, not worn
    assert dict(zip(CUT_SHAPES, CUT_SHAPE_P))["oval"] >= 0.3
    ovals, sheets = [Simulator("cut_eyes_nose_flat", s, max_yaw_deg=10.0) for s in (3, 6)], \
        [Simulator("cut_eyes_nose_flat", s, max_yaw_deg=10.0) for s in (0, 9)]
    assert [sim.scene.shape for sim in ovals] == ["oval"] * 2 and [sim.scene.shape for sim in sheets] == ["sheet"] * 2
    oval_share = [_head_beside_paper_share(sim) for sim in ovals]
    sheet_share = [_head_beside_paper_share(sim) for sim in sheets]
    assert min(oval_share) > 0.08, oval_share
    assert max(sheet_share) < min(oval_share), (sheet_share, oval_share)


def test_screens_return_almost_no_depth_but_skin_does():
    screen_valid, live_valid = [], []
    for seed in range(4):
        fs, truth = Simulator("screen_replay", 50 + seed, distance_range_m=(0.3, 0.6)).render(0)
        screen_valid.append((_box_patch(fs.depth, truth.face_box) > 0).mean())
        fs, truth = Simulator("live", 50 + seed, distance_range_m=(0.3, 0.6)).render(0)
        live_valid.append((_box_patch(fs.depth, truth.face_box) > 0).mean())
    assert max(screen_valid) < 0.3 and min(live_valid) > 0.6


def test_dark_hair_returns_less_depth_than_skin():
    """Black hair hardly reflects the emitter's pattern: holes on the hair, depth on the skin."""
    from sdk.sim.live import identity_for

    seeds = [s for s in range(200) if identity_for(s).hair_ir < 0.12 and not identity_for(s).bald][:3]
    assert len(seeds) == 3
    for seed in seeds:
        sim = Simulator("live", seed, distance_range_m=(0.7, 0.75), max_yaw_deg=0, sunlight=False)
        fs, _ = sim.render(0)
        lm = sim.landmarks(0)
        u, v, z = lm["brow"]
        up = int(round(0.085 * 475.0 / z))  # ~8.5 cm above the brow: hair on the crown
        hair = fs.depth[int(v) - up - 3 : int(v) - up + 4, int(u) - 6 : int(u) + 7]
        cu, cv, _ = lm["cheek_r"]
        skin = fs.depth[int(cv) - 3 : int(cv) + 4, int(cu) - 3 : int(cu) + 4]
        assert (hair > 0).mean() < (skin > 0).mean() - 0.3, seed


def test_sunlight_floods_ir_and_kills_depth():
    lost = []
    for seed in range(4):
        dark, t0 = Simulator("live", 70 + seed, distance_range_m=(0.6, 0.7), sunlight=False).render(0)
        sun, t1 = Simulator("live", 70 + seed, distance_range_m=(0.6, 0.7), sunlight=True).render(0)
        assert np.median(_box_patch(sun.ir, t1.face_box)) > np.median(_box_patch(dark.ir, t0.face_box)) + 30
        lost.append((_box_patch(dark.depth, t0.face_box, 0.0) > 0).mean() - (_box_patch(sun.depth, t1.face_box, 0.0) > 0).mean())
    assert np.mean(lost) > 0.2, lost


def test_glasses_lenses_glare_in_ir():
    from sdk.sim.live import identity_for

    seeds = [s for s in range(300) if identity_for(s, "glasses_or_beard").glasses][:4]
    glare = 0
    for seed in seeds:
        sim = Simulator("live", seed, distance_range_m=(0.4, 0.5), max_yaw_deg=0, appearance="glasses_or_beard")
        assert (sim.scene.rig.head.mat == MAT_GLASS).any()
        fs, _ = sim.render(0)
        lm = sim.landmarks(0)
        for eye in ("eye_r", "eye_l"):
            u, v, _ = lm[eye]
            patch = fs.ir[int(v) - 12 : int(v) + 13, int(u) - 14 : int(u) + 15]
            glare += int(patch.max() >= 250)
    assert glare >= 4


def test_sensor_profiles_vary_per_session_and_share_ranges_across_classes():
    live = [draw_profile("live", s) for s in range(300)]
    attack = [draw_profile("cut_eyes_nose_flat", s) for s in range(300)]
    assert draw_profile("live", 3) == draw_profile("live", 3)
    for field in ("ir_gain", "ir_gamma", "rgb_blur", "depth_noise", "hole_threshold", "exposure_bias"):
        a = np.array([getattr(p, field) for p in live])
        b = np.array([getattr(p, field) for p in attack])
        assert a.std() > 0.05 * a.mean(), field
        # Same distribution: medians within a few percent of the spread.
        assert abs(np.median(a) - np.median(b)) < 0.25 * a.std(), field
    assert 0.03 < np.mean([p.is_sunlit for p in live]) < 0.15
    assert 0.03 < np.mean([p.backlight for p in live]) < 0.2


def test_every_class_draws_pose_and_distance_from_the_same_ranges():
    for scenario in ("print_flat", "screen_replay", "mask_3d", "cut_eyes_nose_mouth_curved"):
        yaws, dists = [], []
        for seed in range(14):
            _, truth = Simulator(scenario, 90 + seed).render(0)
            yaws.append(abs(truth.yaw_deg))
            dists.append(truth.distance_m)
        assert max(yaws) > 18.0, (scenario, max(yaws))
        assert max(dists) > 0.85, (scenario, max(dists))


def test_whole_prints_have_varied_shapes_and_gloss():
    shapes = {Simulator("print_flat", s).scene.shape for s in range(30)}
    assert shapes == {"sheet", "contour", "small"}
    gloss = [Simulator("print_curved", s).scene.paper_gloss > 0 for s in range(30)]
    assert 3 <= sum(gloss) <= 18
