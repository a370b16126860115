"""Simulator: API, determinism, frame validity, truth, scenarios."""
from __future__ import annotations

import numpy as np
import pytest

from sdk.errors import UnknownScenarioError
from sdk.preprocess import make_region_crops
from sdk.sim import SCENARIOS, ScenarioSpec, Simulator, get_scenario, list_scenarios
from sdk.types import SR300_NAME, FrameSet, FrameTruth, Stream

EXPECTED = {
    "live": (1, None), "print_flat": (0, None), "print_curved": (0, None),
    "cut_eyes_flat": (0, 1), "cut_eyes_curved": (0, 2), "cut_eyes_nose_flat": (0, 3),
    "cut_eyes_nose_curved": (0, 4), "cut_eyes_nose_mouth_flat": (0, 5), "cut_eyes_nose_mouth_curved": (0, 6),
    "screen_replay": (0, None), "mask_3d": (0, None), "empty": (0, None),
}


def test_scenario_table():
    assert set(list_scenarios()) == set(EXPECTED)
    for name, (label, attack) in EXPECTED.items():
        spec = get_scenario(name)
        assert isinstance(spec, ScenarioSpec) and spec is SCENARIOS[name]
        assert (spec.label, spec.attack_type) == (label, attack)
        with pytest.raises(Exception):
            spec.label = 3  # frozen


def test_unknown_scenario_lists_valid_names():
    with pytest.raises(UnknownScenarioError) as info:
        get_scenario("photo_of_cat")
    assert "live" in str(info.value) and "mask_3d" in str(info.value)
    with pytest.raises(UnknownScenarioError):
        Simulator("nope", 0)


def test_device_and_optics():
    sim = Simulator("live", 3)
    info = sim.device_info
    assert info.name == SR300_NAME and info.product_line == "SR300" and info.origin == "simulator"
    assert sim.depth_scale == pytest.approx(0.000125)
    k = sim.intrinsics
    assert (k.depth.width, k.depth.height) == (640, 480)
    assert k.depth == k.ir and abs(k.depth.fx - 475) < 10 and abs(k.color.fx - 615) < 15
    baseline = np.linalg.norm(sim.depth_to_color.translation)
    assert 0.015 < baseline < 0.035


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_frames_valid_and_deterministic(scenario):
    sim = Simulator(scenario, 11)
    fs, truth = sim.render(2)
    assert isinstance(fs, FrameSet) and isinstance(truth, FrameTruth)
    assert fs.grid is Stream.DEPTH and fs.color.shape == (480, 640, 3) and fs.depth.dtype == np.uint16
    assert fs.frame_number == 3 and fs.timestamp_ms == pytest.approx(2 * 1000 / 30)
    assert truth.scenario == scenario and truth.label == EXPECTED[scenario][0]
    assert truth.attack_type == EXPECTED[scenario][1]
    again, truth2 = Simulator(scenario, 11).render(2)
    for name in ("color", "ir", "depth"):
        assert np.array_equal(getattr(fs, name), getattr(again, name)), name
    assert truth == truth2
    if scenario == "empty":
        assert truth.face_box is None
    else:
        b = truth.face_box
        assert b is not None and 0 <= b.x0 < b.x1 <= 640 and 0 <= b.y0 < b.y1 <= 480
        assert 0.2 < truth.distance_m < 1.2
        # The face box has depth in it (the presented face is in the SR300's range), except on a
        # screen: glass over an LCD returns almost none of the emitter's pattern. (Black toner,
        # dark hair and distance leave holes too: tests/test_sim_honest.py checks those.)
        x0, x1 = int(b.x0 + b.width / 4), int(b.x1 - b.width / 4)
        y0, y1 = int(b.y0 + b.height / 4), int(b.y1 - b.height / 4)
        valid = (fs.depth[y0:y1, x0:x1] > 0).mean()
        if scenario == "screen_replay":
            assert valid < 0.5
        else:
            assert valid > 0.25


def test_frames_iterator_and_seeds_differ():
    sim = Simulator("live", 1)
    items = list(sim.frames(3))
    assert [f.frame_number for f, _ in items] == [1, 2, 3]
    assert [f.timestamp_ms for f, _ in items] == pytest.approx([0.0, 1000 / 30, 2000 / 30])
    other, _ = Simulator("live", 2).render(0)
    assert not np.array_equal(items[0][0].color, other.color)
    # Frames move: consecutive frames differ.
    assert not np.array_equal(items[0][0].depth, items[2][0].depth)


@pytest.mark.parametrize("scenario", ["live", "cut_eyes_nose_mouth_curved", "screen_replay", "mask_3d", "print_flat"])
def test_region_crop_fast_path_is_bit_exact(scenario):
    sim = Simulator(scenario, 21)
    for index in (0, 5):
        fast, truth = sim.render_region_crops(index)
        full, truth_full = sim.render(index)
        assert truth == truth_full
        ref = make_region_crops(full, truth.face_box)
        for name in ("rgb", "ir", "depth"):
            assert np.array_equal(getattr(fast, name), getattr(ref, name)), (scenario, index, name)
        assert fast.face_depth_m == ref.face_depth_m or (np.isnan(fast.face_depth_m) and np.isnan(ref.face_depth_m))


def test_options_validated():
    with pytest.raises(ValueError):
        Simulator("live", 0, fps=0)
    with pytest.raises(ValueError):
        Simulator("live", 0, distance_range_m=(1.0, 0.5))
    with pytest.raises(ValueError):
        Simulator("live", 0).render(-1)


@pytest.mark.parametrize("scenario", ["live", "print_flat", "cut_eyes_nose_curved", "screen_replay", "mask_3d"])
def test_distance_range_and_yaw_respected(scenario):
    for seed in range(4):
        sim = Simulator(scenario, seed, distance_range_m=(0.5, 0.6), max_yaw_deg=10)
        for _, truth in sim.frames(2):
            assert 0.45 < truth.distance_m < 0.65, (seed, truth.distance_m)
            assert abs(truth.yaw_deg) <= 10.0 + 1e-6


def test_attack_content_shows_the_attackers_own_face_about_half_the_time():
    differs = [not Simulator("print_flat", s).scene.same_identity for s in range(24)]
    assert 6 <= sum(differs) <= 18
