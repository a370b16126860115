"""More people and more nuisance (issue 9, item 5): expressions, age, make-up, fringes.

Physics checks render the same session twice with one look or expression changed (same camera,
same noise draws), so any difference comes from that change alone.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sdk.sim import Simulator
from sdk.sim import expression as ex
from sdk.sim import looks as lk
from sdk.sim.expression import Expression, draw_expression
from sdk.sim.identity import random_identity
from sdk.sim.live import identity_for
from sdk.sim.looks import draw_looks
from sdk.sim.person import PersonRig
from sdk.sim.rng import make_rng
from sdk.sim.scene import random_motion


def _near_sim(seed: int) -> Simulator:
    """A nominal camera, the face 0.35-0.45 m away, nearly frontal (physics, not nuisance)."""
    return Simulator("live", seed, distance_range_m=(0.35, 0.45), max_yaw_deg=4.0, clean=True)


def _patch(img: np.ndarray, u: float, v: float, du: int, dv: int) -> np.ndarray:
    u, v = int(round(u)), int(round(v))
    return img[v - dv : v + dv + 1, u - du : u + du + 1]


def test_looks_are_deterministic_and_from_their_own_stream():
    for seed in (3, 11, 40):
        idn = identity_for(seed)
        assert idn == identity_for(seed)
        # The looks are exactly the draw of their own stream, keyed by the identity's texture seed.
        male = idn.looks.male
        assert idn.looks == draw_looks(make_rng("looks", idn.blotch_seed), male, idn.bald, idn.long_hair)
    # A different texture seed gives other looks.
    assert identity_for(3).looks != identity_for(11).looks


def test_expression_draw_leaves_the_rigs_other_draws_unchanged():
    """The expression comes from its own stream: clothing and surroundings draws are the same."""
    view = Simulator("live", 1).view
    idn = identity_for(5)
    motion = random_motion(make_rng("m", 5), (0.4, 0.5), 10.0)
    a = PersonRig(idn, motion, view, make_rng("rig", 5), expression=Expression())
    b = PersonRig(idn, motion, view, make_rng("rig", 5), expression=Expression(smile=1.0, open_drop=0.015))
    c = PersonRig(idn, motion, view, make_rng("rig", 5))  # drawn
    for other in (b, c):
        assert (a.collar, a.hand, a.chair, a.cloth_rgb, a.cloth_ir, a.idn) == (other.collar, other.hand, other.chair,
                                                                              other.cloth_rgb, other.cloth_ir, other.idn)
    assert c.expression == PersonRig(idn, motion, view, make_rng("rig", 5)).expression


def test_feature_rates_match_the_documented_rates():
    n = 3000
    ids = [random_identity(make_rng("rates", i)) for i in range(n)]
    women = [i for i in ids if not i.looks.male]
    men = [i for i in ids if i.looks.male]
    assert abs(len(women) / n - 0.5) < 0.04
    share = lambda group, f: sum(bool(f(i)) for i in group) / len(group)  # noqa: E731
    assert share(women, lambda i: i.looks.makeup) == pytest.approx(lk.MAKEUP_RATE["female"], abs=0.04)
    assert share(men, lambda i: i.looks.makeup) == pytest.approx(lk.MAKEUP_RATE["male"], abs=0.02)
    assert share(women, lambda i: i.looks.fringe) == pytest.approx(lk.FRINGE_RATE["female"] * 0.99, abs=0.04)
    assert share([m for m in men if not m.bald], lambda i: i.looks.fringe) == pytest.approx(lk.FRINGE_RATE["male"], abs=0.03)
    long_haired = [i for i in ids if i.long_hair and not i.bald]
    assert share(long_haired, lambda i: i.looks.hair_over_cheeks > 0) == pytest.approx(lk.HAIR_OVER_CHEEKS_SHARE, abs=0.05)
    ages = np.array([i.looks.age for i in ids])
    assert ages.min() >= lk.AGE_RANGE[0] and ages.max() <= lk.AGE_RANGE[1]
    assert np.mean(ages) == pytest.approx(sum(lk.AGE_RANGE) / 2, abs=1.5)
    old = [i for i in ids if i.looks.age > 65]
    assert share(old, lambda i: i.looks.wrinkles > 0.4 and i.looks.grey > 0.1) > 0.9
    assert share([i for i in ids if i.looks.age < 28], lambda i: i.looks.wrinkles + i.looks.sag + i.looks.spots) == 0.0
    exprs = [draw_expression(make_rng("rates-expression", i)) for i in range(n)]
    assert share(exprs, lambda e: e.smile > 0) == pytest.approx(ex.SMILE_RATE, abs=0.03)
    assert share(exprs, lambda e: e.open_drop > 0) == pytest.approx(ex.OPEN_MOUTH_RATE, abs=0.02)
    assert share(exprs, lambda e: e.talking) == pytest.approx(ex.TALKING_RATE, abs=0.03)


def test_sessions_draw_expressions_for_live_people_and_attackers_alike():
    """Live people and attackers draw their expression with one function, keyed by the identity and
    the session's motion (its rates are checked above); sessions are deterministic."""
    for scenario in ("live", "cut_eyes_nose_mouth_flat"):
        for s in range(3):
            rig = Simulator(scenario, 300 + s).scene.rig
            assert rig.expression == draw_expression(make_rng("expression", rig.idn.blotch_seed, *rig.motion.phase))
    assert Simulator("live", 301).scene.rig.expression == Simulator("live", 301).scene.rig.expression
    # clean=True: no nuisance, a neutral face.
    assert Simulator("live", 301, clean=True).scene.rig.expression == ex.NEUTRAL


def test_talking_opens_the_mouth_a_few_frames_per_syllable():
    e = next(e for e in (draw_expression(make_rng("talk", i)) for i in range(200)) if e.talking)
    drops = np.array([e.mouth_open(i / 30.0) for i in range(300)])
    assert drops.max() > 0.006 and (drops < 1e-4).any()
    assert e.mouth_open(-5.0) == 0.0 or e.syllable_start[0] < -5.0
    # Each syllable is an opening of a few frames (0.1-0.4 s at 30 fps).
    lens = np.array(e.syllable_len) * 30.0
    assert 3.0 <= np.median(lens) <= 10.0
    assert np.all(np.array(e.syllable_drop) <= ex.SYLLABLE_DROP[1])


def test_open_mouth_is_deeper_and_darker_than_closed():
    """Colour, IR and depth agree: the gap between the lips is a recessed, dark cavity."""
    checked = 0
    for seed in (21, 22, 23):
        sim = _near_sim(seed)
        rig = sim.scene.rig
        rig.restyle(expression=Expression(open_drop=0.02))
        frame = 2
        open_fs, _ = sim.render(frame)
        u, v, _ = sim.landmarks(frame)["mouth"]  # the middle of the gap
        rig.restyle(expression=Expression())  # same head, mouth closed
        closed_fs, _ = sim.render(frame)
        ok = lambda d: d[d > 0].astype(np.float64) * sim.depth_scale  # noqa: E731
        d_open, d_closed = ok(_patch(open_fs.depth, u, v, 3, 2)), ok(_patch(closed_fs.depth, u, v, 3, 2))
        assert d_closed.size >= 10
        # Deeper, or no depth at all (a dark cavity may return too little of the pattern).
        assert d_open.size == 0 or np.median(d_open) > np.median(d_closed) + 0.006, (seed, np.median(d_open), np.median(d_closed))
        c_open = _patch(open_fs.color, u, v, 3, 2).astype(np.float64).mean()
        c_closed = _patch(closed_fs.color, u, v, 3, 2).astype(np.float64).mean()
        ir_open = _patch(open_fs.ir, u, v, 3, 2).astype(np.float64).mean()
        ir_closed = _patch(closed_fs.ir, u, v, 3, 2).astype(np.float64).mean()
        assert c_open < 0.7 * c_closed and ir_open < 0.7 * ir_closed, (seed, c_open, c_closed, ir_open, ir_closed)
        checked += 1
    assert checked == 3


def test_open_mouth_moves_the_chin_down():
    sim = _near_sim(24)
    rig = sim.scene.rig
    rig.restyle(expression=Expression())
    chin_closed = sim.landmarks(0)["chin"][1]
    rig.restyle(expression=Expression(open_drop=0.02))
    chin_open = sim.landmarks(0)["chin"][1]
    # 2 cm at ~0.4 m is ~20 px at fx = 475.
    assert chin_open - chin_closed > 12


def test_makeup_changes_colour_but_not_ir():
    seed = next(s for s in range(300) if identity_for(s).looks.lipstick > 0.6 and identity_for(s).looks.foundation > 0.4)
    sim = _near_sim(seed)
    rig = sim.scene.rig
    made_up = rig.idn
    made_fs, truth = sim.render(1)
    bare = replace(made_up, looks=replace(made_up.looks, foundation=0.0, lipstick=0.0, eye_makeup=0.0))
    rig.restyle(idn=bare)
    bare_fs, _ = sim.render(1)
    b = truth.face_box
    box = (slice(int(b.y0), int(b.y1)), slice(int(b.x0), int(b.x1)))
    d_ir = np.abs(made_fs.ir[box].astype(np.int32) - bare_fs.ir[box].astype(np.int32))
    assert d_ir.mean() < 0.2 and np.percentile(d_ir, 99.9) <= 2
    u, v, _ = sim.landmarks(1)["mouth"]
    lips = lambda fs: _patch(fs.color, u, v + 3, 6, 2).astype(np.float64)  # noqa: E731 - lower lip
    assert np.abs(lips(made_fs) - lips(bare_fs)).mean() > 8.0
    assert np.abs(made_fs.color[box].astype(np.int32) - bare_fs.color[box].astype(np.int32)).mean() > 0.5


def test_fringe_makes_depth_holes_on_the_forehead():
    """Black hair hardly returns the emitter's pattern: a fringe leaves depth holes where it covers
    the forehead (at arm's length, as the scalp does in test_sim_honest)."""
    pick = lambda i: i.looks.fringe and i.hair_ir < 0.12 and i.looks.fringe_bottom < 0.04  # noqa: E731
    seeds = [s for s in range(600) if pick(identity_for(s))][:2]
    assert len(seeds) == 2
    for seed in seeds:
        sim = Simulator("live", seed, distance_range_m=(0.7, 0.75), max_yaw_deg=3.0, clean=True)
        rig = sim.scene.rig
        fringe_fs, _ = sim.render(0)
        u, v, z = sim.landmarks(0)["brow"]
        inside = v - (rig.idn.looks.fringe_bottom + 0.008 - 0.025) * sim.view.fy / z  # 8 mm above its lower edge
        idn = rig.idn
        rig.restyle(idn=replace(idn, looks=replace(idn.looks, fringe=False)))
        bare_fs, _ = sim.render(0)
        holes = lambda fs: (_patch(fs.depth, u, inside, 8, 2) == 0).mean()  # noqa: E731
        assert holes(fringe_fs) > holes(bare_fs) + 0.3, (seed, holes(fringe_fs), holes(bare_fs))


def test_age_spots_and_wrinkles_darken_colour_more_than_ir():
    """Melanin spots and creases: strongly darker in colour, hardly in NIR (head albedo, point by point)."""
    from sdk.sim.face import build_head

    seed = next(s for s in range(400) if identity_for(s).looks.spots >= 4 and identity_for(s).looks.wrinkles > 0.6)
    old = identity_for(seed)
    young = replace(old, looks=replace(old.looks, spots=0, wrinkles=0.0))
    h_old, h_young = build_head(old, 0.0008), build_head(young, 0.0008)
    assert h_old.pos.shape == h_young.pos.shape
    lum = lambda rgb: rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)  # noqa: E731
    col_drop = 1.0 - lum(h_old.rgb) / np.maximum(lum(h_young.rgb), 1e-6)
    ir_drop = 1.0 - h_old.ir / np.maximum(h_young.ir, 1e-6)
    aged = col_drop > 0.03
    assert aged.sum() > 300
    assert col_drop[aged].mean() > 2.5 * max(ir_drop[aged].mean(), 1e-4), (col_drop[aged].mean(), ir_drop[aged].mean())
    # And it shows in the rendered colour.
    sim = _near_sim(seed)
    old_fs, truth = sim.render(0)
    sim.scene.rig.restyle(idn=young)
    young_fs, _ = sim.render(0)
    assert np.abs(old_fs.color.astype(np.int32) - young_fs.color.astype(np.int32)).max() > 20


def test_grey_hair_returns_more_nir():
    """Unpigmented hair scatters NIR: greying people have more NIR (and depth) on the scalp."""
    grey = [i for i in (identity_for(s) for s in range(400)) if i.looks.grey > 0.7]
    assert len(grey) >= 5
    assert all(i.hair_ir >= 0.7 * lk.GREY_HAIR_IR for i in grey)
    rgb, ir = lk.greyed_hair((0.01, 0.008, 0.006), 0.1, 0.8)
    assert ir == pytest.approx(0.1 * 0.2 + lk.GREY_HAIR_IR * 0.8) and min(rgb) > 0.2


def test_attack_content_carries_expressions_and_a_screen_video_can_talk():
    """The people shown by attacks draw expressions like everyone else: a print can show a smile,
    a screen can replay a talking person (its picture changes with the syllables)."""
    prints = [Simulator("print_flat", 500 + s).scene.photo.expression for s in range(2, 5)]
    assert any(e.smile > 0 for e in prints) and any(e.max_drop > 0 for e in prints)
    scene = Simulator("screen_replay", 504).scene  # a talking person's video (found by search)
    assert scene.photo.expression.talking and len(scene.video) == 4
    closed, widest = scene.video[0], scene.video[-1]
    assert closed[0] == 0.0 and widest[0] > 0.004
    assert np.abs(closed[1] - widest[1]).max() > 0.05  # the mouth region changed
    assert np.abs(closed[1] - widest[1]).mean() < 0.01  # and little else did
