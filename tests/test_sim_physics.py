"""Simulator physics invariants: depth shapes, NIR behaviour, noise, glints, cut-outs.

Sessions are ``clean`` (a nominal camera, no sunlight, hands, hats or collars) so each test
measures one effect; tests/test_sim_honest.py covers the nuisances."""
from __future__ import annotations

import numpy as np
import pytest

from sdk.sim import Simulator
from sdk.sim.render import View


def _clean_sim(*args, **kwargs):
    return Simulator(*args, clean=True, **kwargs)


def _depth_m(fs):
    return fs.depth.astype(np.float64) * fs.depth_scale


def _patch(img, u, v, r=2):
    u, v = int(round(u)), int(round(v))
    return img[v - r : v + r + 1, u - r : u + r + 1]


def _valid_median(depth_m, u, v, r=2):
    p = _patch(depth_m, u, v, r)
    p = p[p > 0]
    return float(np.median(p)) if p.size else float("nan")


@pytest.mark.parametrize("seed", range(5))
def test_live_nose_stands_2_to_4_cm_in_front_of_cheeks(seed):
    sim = _clean_sim("live", seed, distance_range_m=(0.4, 0.6), max_yaw_deg=0)
    fs, truth = sim.render(0)
    lm = sim.landmarks(0)
    d = _depth_m(fs)
    nose = _valid_median(d, *lm["nose_tip"][:2], r=1)
    cheeks = np.nanmean([_valid_median(d, *lm["cheek_r"][:2]), _valid_median(d, *lm["cheek_l"][:2])])
    assert 0.02 <= cheeks - nose <= 0.04, (seed, cheeks - nose)


def _fit_residual(points, design):
    coef, *_ = np.linalg.lstsq(design, points[:, 2], rcond=None)
    return points[:, 2] - design @ coef


def _sheet_points(sim, fs, truth):
    """Camera-frame points inside the presented face box (the print itself)."""
    b = truth.face_box
    d = _depth_m(fs)
    k = sim.intrinsics.depth
    ys, xs = np.mgrid[int(b.y0) : int(b.y1), int(b.x0) : int(b.x1)]
    z = d[ys, xs]
    ok = z > 0
    # Prints may be smaller than the box or cut along the head: keep the sheet (near the median).
    ok &= np.abs(z - np.median(z[ok])) < 0.03
    xs, ys, z = xs[ok], ys[ok], z[ok]
    return np.stack([(xs - k.ppx) * z / k.fx, (ys - k.ppy) * z / k.fy, z], axis=1)


def test_flat_print_is_a_plane():
    for seed in range(3):
        sim = _clean_sim("print_flat", seed, distance_range_m=(0.4, 0.6))
        fs, truth = sim.render(0)
        p = _sheet_points(sim, fs, truth)
        res = _fit_residual(p, np.c_[p[:, 0], p[:, 1], np.ones(len(p))])
        assert np.percentile(np.abs(res), 95) < 0.004, seed


def test_curved_print_is_a_cylinder_not_a_plane():
    for seed in range(3):
        sim = _clean_sim("print_curved", seed, distance_range_m=(0.4, 0.6))
        fs, truth = sim.render(0)
        p = _sheet_points(sim, fs, truth)
        plane = _fit_residual(p, np.c_[p[:, 0], p[:, 1], np.ones(len(p))])
        # A cylinder about a (roughly vertical) axis: z is quadratic in x, linear in y.
        cyl = _fit_residual(p, np.c_[p[:, 0] ** 2, p[:, 0] * p[:, 1], p[:, 0], p[:, 1], np.ones(len(p))])
        assert np.percentile(np.abs(cyl), 95) < 0.004, seed
        assert np.std(plane) > 1.5 * np.std(cyl), seed


def test_screen_is_dark_in_ir_and_skin_is_bright():
    live_fs, live_t = _clean_sim("live", 4, distance_range_m=(0.4, 0.45)).render(0)
    scr_fs, scr_t = _clean_sim("screen_replay", 4, distance_range_m=(0.4, 0.45)).render(0)

    def centre_ir(fs, t):
        b = t.face_box
        cx, cy = b.center
        return float(np.median(fs.ir[int(cy) - 5 : int(cy) + 5, int(cx) - 5 : int(cx) + 5]))

    assert centre_ir(scr_fs, scr_t) * 4 < centre_ir(live_fs, live_t)


def test_ir_falls_with_distance_squared():
    ratios = []
    for seed in range(3):
        near = _clean_sim("live", seed, distance_range_m=(0.5, 0.5), max_yaw_deg=0)
        far = _clean_sim("live", seed, distance_range_m=(0.8, 0.8), max_yaw_deg=0)
        levels = []
        for sim in (near, far):
            fs, _ = sim.render(0)
            lm = sim.landmarks(0)
            levels.append(np.median([np.median(_patch(fs.ir, *lm[c][:2], 2)) for c in ("cheek_r", "cheek_l", "brow")]))
        ratios.append(levels[0] / levels[1])
    expected = (0.8 / 0.5) ** 2
    assert np.median(ratios) == pytest.approx(expected, rel=0.25)


def _eye_max_ir(sim, fs, i=0, r=4):
    lm = sim.landmarks(i)
    return max(int(_patch(fs.ir, *lm[e][:2], r).max()) for e in ("eye_r", "eye_l"))


def _open_eyes_frame(sim):
    """First frame index where the (real) person's eyes are open."""
    motion = sim.scene.rig.motion
    return next(i for i in range(60) if motion.blink(i / sim.fps) == 0.0)


def test_live_eyes_have_a_glint_prints_do_not():
    live_hits = 0
    for seed in range(6):
        sim = _clean_sim("live", seed, distance_range_m=(0.35, 0.6), max_yaw_deg=15)
        index = _open_eyes_frame(sim)
        fs, _ = sim.render(index)
        lm = sim.landmarks(index)
        skin = np.median(_patch(fs.ir, *lm["cheek_r"][:2], 3))
        live_hits += _eye_max_ir(sim, fs, index) > min(250, skin * 1.4)
    assert live_hits >= 5
    for seed in range(4):
        sim = _clean_sim("print_flat", seed, distance_range_m=(0.35, 0.6))
        fs, truth = sim.render(0)
        b = truth.face_box
        sheet = fs.ir[int(b.y0) : int(b.y1), int(b.x0) : int(b.x1)]
        # No small spot stands out of the paper's own brightness (a glint would saturate).
        assert _eye_max_ir(sim, fs) <= np.percentile(sheet, 99.5) + 10, seed
        assert _eye_max_ir(sim, fs) < 250, seed


def test_depth_noise_grows_with_distance():
    stds = []
    for d in (0.4, 0.9):
        sim = _clean_sim("print_flat", 2, distance_range_m=(d, d))
        fs, truth = sim.render(0)
        p = _sheet_points(sim, fs, truth)
        res = _fit_residual(p, np.c_[p[:, 0], p[:, 1], np.ones(len(p))])
        stds.append(np.std(res))
    assert stds[1] > 2.0 * stds[0]


@pytest.mark.parametrize("scenario", ["cut_eyes_flat", "cut_eyes_nose_curved", "cut_eyes_nose_mouth_flat"])
def test_cutouts_show_real_depth_behind_the_sheet(scenario):
    # Near-frontal: the sheet sits ~4 cm in front of the eyes, so a turned head hides them behind
    # the hole's edge (parallax).
    sim = _clean_sim(scenario, 3, distance_range_m=(0.4, 0.6), max_yaw_deg=8)
    index = _open_eyes_frame(sim)
    fs, truth = sim.render(index)
    lm = sim.landmarks(index)
    d = _depth_m(fs)
    eye = np.nanmean([_valid_median(d, *lm[e][:2], 1) for e in ("eye_r", "eye_l")])
    # The printed cheek is on the sheet; the eye holes show the attacker's face behind it.
    sheet = np.nanmean([_valid_median(d, *lm[c][:2], 2) for c in ("cheek_r", "cheek_l")])
    assert eye - sheet > 0.006
    # Real eyes (with a corneal glint) look through the holes.
    assert _eye_max_ir(sim, fs, index, r=7) > 200


def test_mask_has_face_shaped_depth_without_glint():
    sim = _clean_sim("mask_3d", 5, distance_range_m=(0.4, 0.6), max_yaw_deg=0)
    fs, _ = sim.render(0)
    lm = sim.landmarks(0)
    d = _depth_m(fs)
    nose = _valid_median(d, *lm["nose_tip"][:2], 1)
    cheeks = np.nanmean([_valid_median(d, *lm[c][:2]) for c in ("cheek_r", "cheek_l")])
    assert cheeks - nose > 0.012
    paper = np.median(_patch(fs.ir, *lm["cheek_r"][:2], 3))
    assert _eye_max_ir(sim, fs) < paper * 1.3 + 10


def test_empty_has_no_face_and_no_near_depth():
    fs, truth = _clean_sim("empty", 1).render(0)
    assert truth.face_box is None and truth.label == 0
    d = _depth_m(fs)
    assert not ((d > 0) & (d < 1.2)).any()


def test_view_window_projection_consistent():
    v = View(475.0, 475.0, 313.5, 246.0, 640, 480)
    w = v.window(-5, 10, 700, 100)
    assert (w.x0, w.y0, w.x1, w.y1) == (0, 10, 640, 100)
    p = np.array([[0.1, -0.05, 0.5]], np.float32)
    u, vv = v.project(p)[0]
    assert u == pytest.approx(475 * 0.2 + 313.5) and vv == pytest.approx(-475 * 0.1 + 246.0)
