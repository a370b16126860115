"""Counterfactual tests of the shipped model: a change that should not matter may flip at most 2 %
of its decisions. The sample is small (CI-sized) but fixed: renders are pure functions of the seed."""
from __future__ import annotations

import sys
import subprocess

import numpy as np
import pytest

from calibration import counterfactual as cf
from sdk.sim.holdout import HOLDOUT_FAMILIES
from sdk.types import FaceCrops

# 50 live crops and 4 subjects of each of the 10 attack scenarios: 90 renders. 50 live crops is
# the fewest on which "at most 2 %" allows one flip: on 16 (the earlier sample) it meant none, so
# a single crop scored next to the threshold failed the test (2.2.0: one live crop at 0.172 moves
# to 0.165 around its threshold 0.169 when the background is flattened: a boundary case, not a cue).
LIVE_SUBJECTS, FRAMES_PER_LIVE, ATTACK_SUBJECTS = 50, 1, 4


@pytest.fixture(scope="module")
def samples():
    return cf.make_samples(LIVE_SUBJECTS, FRAMES_PER_LIVE, ATTACK_SUBJECTS, seed=0)


@pytest.fixture(scope="module")
def shipped():
    from sdk.engine import ModelBundle, create_engine

    bundle = ModelBundle.load(None)
    engine = create_engine("onnxruntime", bundle.model_path)
    yield engine, bundle.operating_point(None).threshold, bundle.version
    engine.close()


@pytest.fixture(scope="module")
def flips(samples, shipped):
    engine, threshold, _ = shipped
    _, results = cf.flip_rates(samples, lambda crops: engine.score_crops(crops, tta=True), threshold)
    return {r.transform: r for r in results}


def _crops(rgb=0, ir=0, depth=None) -> FaceCrops:
    size = 112
    d = np.zeros((size, size), np.uint8) if depth is None else depth
    return FaceCrops(rgb=np.full((size, size, 3), rgb, np.uint8), ir=np.full((size, size), ir, np.uint8), depth=d,
                     face_depth_m=0.5, depth_valid_fraction=1.0, preprocess_version="sr300-mlfa-crops/1")


def test_head_mask_fills_holes_and_keeps_the_largest_region():
    depth = np.zeros((112, 112), np.uint8)
    depth[20:100, 30:80] = 128
    depth[40:45, 40:45] = 0  # a dropout inside the face
    depth[2:5, 2:5] = 200  # a speck of background in range
    mask = cf.head_mask(_crops(depth=depth))
    assert mask[42, 42] and mask[60, 50]
    assert not mask[3, 3] and not mask[10, 100]


def test_outline_paste_keeps_the_attack_inside_and_the_live_crop_outside():
    depth = np.zeros((112, 112), np.uint8)
    depth[20:100, 30:80] = 128
    live = _crops(rgb=10, ir=20, depth=depth)
    attack = _crops(rgb=200, ir=220, depth=np.full((112, 112), 90, np.uint8))
    out = cf.paste_outline(attack, live)
    assert out.rgb[60, 50, 0] == 200 and out.ir[60, 50] == 220 and out.depth[60, 50] == 90
    assert out.rgb[5, 5, 0] == 10 and out.ir[5, 5] == 20 and out.depth[5, 5] == 0


def test_fill_background_flattens_only_outside_the_head():
    depth = np.zeros((112, 112), np.uint8)
    depth[20:100, 30:80] = 128
    rgb = np.random.default_rng(0).integers(0, 255, (112, 112, 3)).astype(np.uint8)
    live = FaceCrops(rgb=rgb, ir=rgb[..., 0].copy(), depth=depth, face_depth_m=0.5, depth_valid_fraction=1.0,
                     preprocess_version="sr300-mlfa-crops/1")
    out = cf.fill_background(live)
    assert np.array_equal(out.rgb[60, 50], rgb[60, 50])
    assert len(np.unique(out.rgb[:15, :15].reshape(-1, 3), axis=0)) == 1
    assert out.depth[:15].max() == 0 and out.depth[60, 50] == 128


def test_ir_gain_and_depth_noise_change_frames_as_specified(samples):
    sample = samples[0]
    brighter = cf.ir_gain(sample.frames, 1.3)
    face = sample.frames.ir > 20
    ratio = brighter.ir[face & (sample.frames.ir < 150)].astype(float) / sample.frames.ir[face & (sample.frames.ir < 150)]
    assert abs(float(np.median(ratio)) - 1.3) < 0.05
    noisy = cf.depth_noise(sample.frames, 2.0, np.random.default_rng(1))
    assert np.array_equal(noisy.depth == 0, sample.frames.depth == 0)  # holes stay holes
    from sdk.sim.sensor import depth_sigma_m

    valid = sample.frames.depth > 0
    z = sample.frames.depth[valid] * sample.frames.depth_scale
    extra = (noisy.depth[valid].astype(float) - sample.frames.depth[valid]) * sample.frames.depth_scale
    # the added noise has sqrt(3) sigma(z): total noise twice the sensor model's
    assert 1.5 < float(np.std(extra / depth_sigma_m(z))) < 2.0


def test_align_holes_blanks_depth_and_colour_on_the_asked_share(samples):
    sample = samples[0]
    holed = cf.align_holes(sample.crops, cf.ALIGN_HOLES_FRACTION, np.random.default_rng(2))
    new_depth_holes = (holed.depth == 0) & (sample.crops.depth > 0)
    assert (holed.rgb[new_depth_holes] == 0).all()  # every new depth hole is black in colour too
    assert np.array_equal(holed.ir, sample.crops.ir)
    blanked = (holed.rgb.sum(axis=2) == 0) & (sample.crops.rgb.sum(axis=2) > 0)
    assert 0.05 <= blanked.mean() <= 0.15


def test_sample_has_both_classes_from_every_scenario(samples):
    scenarios = {s.scenario for s in samples}
    assert scenarios == {cf.LIVE_SCENARIO, *cf.ATTACK_SCENARIOS}
    assert sum(s.live for s in samples) == LIVE_SUBJECTS * FRAMES_PER_LIVE
    assert all(s.crops.rgb.shape == (112, 112, 3) for s in samples)


#: Attack families held out of every training set (sdk.sim.holdout): reported apart, never trained on.
HELD_OUT_ATTACKS = {f.attack_family for f in HOLDOUT_FAMILIES.values() if f.attack_family}


def _scores(samples, shipped):
    engine, threshold, _ = shipped
    return engine.score_crops([s.crops for s in samples], tta=True), threshold


def test_shipped_model_gets_the_untouched_sample_right(samples, shipped):
    """The sample is sane before it is transformed. Single crops are held to the fused per-check
    threshold here, which is stricter than the device (LIVE needs k passing frames in a row), so a
    crop or two of the in-distribution attacks may pass it: at most the flip budget (5 %)."""
    scores, threshold = _scores(samples, shipped)
    live = np.array([s.live for s in samples])
    seen_attack = np.array([not s.live and s.scenario not in HELD_OUT_ATTACKS for s in samples])
    assert (scores[live] >= threshold).mean() >= 0.9
    assert (scores[seen_attack] >= threshold).mean() <= 0.05, scores[seen_attack]


@pytest.mark.xfail(strict=True, reason="mask_3d is held out of training whole (issue 9, item 8); shipped 2.43.0 (the stride-2 student half way to its 24-member teacher) "
                                       "accepts 4/4 mask crops of this sample (2.2.0 did too): a worn mask has a "
                                       "face's relief, and no training sample shows one (issue 11)")
def test_held_out_attack_family_is_rejected(samples, shipped):
    scores, threshold = _scores(samples, shipped)
    held_out = np.array([s.scenario in HELD_OUT_ATTACKS for s in samples])
    assert held_out.any()
    assert (scores[held_out] >= threshold).sum() == 0, scores[held_out]


def test_live_outline_pasted_into_attack_crops_does_not_let_attacks_through(flips):
    assert flips["outline"].n > 0
    assert flips["outline"].rate <= cf.MAX_FLIP_RATE, flips["outline"].to_dict()


def test_flat_background_behind_live_faces_does_not_reject_them(flips):
    assert flips["fill_background"].n == LIVE_SUBJECTS * FRAMES_PER_LIVE
    assert flips["fill_background"].rate <= cf.MAX_FLIP_RATE, flips["fill_background"].to_dict()


@pytest.mark.parametrize("name", ["ir_gain_0.7", "ir_gain_1.3"])
def test_ir_gain_does_not_change_decisions(flips, name):
    assert flips[name].n > 0
    assert flips[name].rate <= cf.MAX_FLIP_RATE, flips[name].to_dict()


def test_doubled_depth_noise_does_not_change_decisions(flips):
    assert flips["depth_noise_x2"].rate <= cf.MAX_FLIP_RATE, flips["depth_noise_x2"].to_dict()


def test_aligned_holes_do_not_change_decisions(flips):
    # On a real SR300 every depth hole is a black pixel of the aligned colour, live or attack.
    assert flips["align_holes_10"].n == flips["ir_gain_0.7"].n > 0  # every crop, live and attack
    assert flips["align_holes_10"].rate <= cf.MAX_FLIP_RATE, flips["align_holes_10"].to_dict()


@pytest.mark.parametrize("name", ["colour_sharpen", "colour_blur"])
def test_colour_sharpness_does_not_change_decisions(flips, name):
    # Focus, motion and the image processor's sharpening change a camera's picture, not the scene.
    assert flips[name].n == flips["ir_gain_0.7"].n > 0  # every crop, live and attack
    assert flips[name].rate <= cf.MAX_FLIP_RATE, flips[name].to_dict()


def test_colour_focus_transforms_change_the_colour_crop_only(samples):
    for name in ("colour_sharpen", "colour_blur"):
        indices, crops = cf.transformed_crops(name, samples[:3])
        for i, c in zip(indices, crops):
            assert not np.array_equal(c.rgb, samples[i].crops.rgb)
            assert np.array_equal(c.ir, samples[i].crops.ir) and np.array_equal(c.depth, samples[i].crops.depth)


def test_live_crops_without_relief_are_rejected(samples, shipped):
    engine, threshold, _ = shipped
    relief = cf.relief_check(samples, lambda crops: engine.score_crops(crops, tta=True), threshold)
    assert relief["accepted_live"] >= 40
    assert relief["rate"] <= cf.MAX_RELIEF_KEEP, relief


def test_relief_check_counts_accepted_live_crops_kept_without_relief(samples):
    # a scorer that reads depth relief only: the spread of the valid depth levels
    def by_relief(crops):
        return np.array([float(np.ptp(c.depth[c.depth > 0])) / 255.0 if (c.depth > 0).any() else 0.0 for c in crops])

    relief = cf.relief_check(samples, by_relief, 0.05)
    assert relief["accepted_live"] > 0 and relief["still_accepted"] == 0 and relief["rate"] == 0.0
    colour_only = cf.relief_check(samples, lambda crops: np.ones(len(crops)), 0.5)
    assert colour_only["still_accepted"] == colour_only["accepted_live"] == sum(s.live for s in samples)


def test_counterfactual_command_prints_every_transform():
    out = subprocess.run([sys.executable, "-m", "sdk.cli", "counterfactual", "--live", "2", "--attacks", "1", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    result = json.loads(out.stdout)
    assert [t["transform"] for t in result["transforms"]] == list(cf.TRANSFORMS)
    assert result["live_crops"] == 4 and result["attack_crops"] == 10
    assert set(result["relief_check"]) == {"accepted_live", "still_accepted", "rate", "max_rate"}
