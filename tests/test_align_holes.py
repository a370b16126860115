"""Aligned holes (sdk.align_holes): depth holes with the black colour rs.align leaves there, used by
the training augmentation and the counterfactual check alike."""
from __future__ import annotations

import numpy as np
import pytest

from sdk.align_holes import low_return_hole_mask, punch_holes
from sdk.errors import InputValidationError
from training.data.augment import PairedAugment
from tests.test_training_augment import GEOMETRY_OFF, head_crops


def gradient_ir(side: int = 112) -> np.ndarray:
    return np.tile(np.linspace(0, 255, side).astype(np.uint8), (side, 1))


def test_mask_covers_about_the_asked_share_and_favours_weak_nir():
    ir = gradient_ir()
    masks = [low_return_hole_mask(ir, 0.1, np.random.default_rng(seed)) for seed in range(5)]
    share = np.mean([m.mean() for m in masks])
    assert 0.07 <= share <= 0.13
    dark = np.mean([m[:, :30].mean() for m in masks])
    bright = np.mean([m[:, -30:].mean() for m in masks])
    assert dark > 2 * bright  # little NIR comes back from dark skin and hair: more holes there


def test_mask_is_a_pure_function_of_the_generator_and_empty_at_zero():
    ir = gradient_ir()
    a = low_return_hole_mask(ir, 0.2, np.random.default_rng(3))
    b = low_return_hole_mask(ir, 0.2, np.random.default_rng(3))
    assert np.array_equal(a, b) and a.dtype == bool
    assert not low_return_hole_mask(ir, 0.0, np.random.default_rng(3)).any()
    with pytest.raises(InputValidationError):
        low_return_hole_mask(ir, 1.5, np.random.default_rng(3))


def test_punch_holes_blanks_depth_and_colour_together_and_copies():
    rgb = np.full((8, 8, 3), 200, np.uint8)
    depth = np.full((8, 8), 128, np.uint8)
    hole = np.zeros((8, 8), bool)
    hole[2, 3] = hole[5, 5] = True
    rgb_out, depth_out = punch_holes(rgb, depth, hole)
    assert (rgb_out[hole] == 0).all() and (depth_out[hole] == 0).all()
    assert (rgb_out[~hole] == 200).all() and (depth_out[~hole] == 128).all()
    assert rgb[2, 3, 0] == 200 and depth[2, 3] == 128  # inputs untouched
    with pytest.raises(InputValidationError):
        punch_holes(rgb, depth[:4], hole)


def test_augmentation_punches_the_same_holes_in_depth_and_colour_and_leaves_ir():
    augment = PairedAugment(**GEOMETRY_OFF, aligned_holes=1.0, aligned_hole_max=0.3)
    assert augment.physics_enabled
    crops = head_crops()
    plain = PairedAugment(**GEOMETRY_OFF)(crops, np.random.default_rng(0))
    holed = [augment(crops, np.random.default_rng(seed)) for seed in range(4)]
    for out in holed:
        new_colour_holes = (out["rgb"].sum(axis=2) == 0) & (plain["rgb"].sum(axis=2) > 0)
        new_depth_holes = (out["depth"] == 0) & (plain["depth"] > 0)
        assert np.array_equal(new_colour_holes & (plain["depth"] > 0), new_depth_holes)
        assert np.array_equal(out["ir"], plain["ir"])
    assert max(((o["rgb"].sum(axis=2) == 0) & (plain["rgb"].sum(axis=2) > 0)).mean() for o in holed) > 0.02


def test_augmentation_without_aligned_holes_keeps_its_old_draws():
    old = PairedAugment(depth_noise=4.0, outline_cut=0.3)
    new = PairedAugment(depth_noise=4.0, outline_cut=0.3, aligned_holes=0.0)
    for seed in range(5):
        assert old.sample(125, np.random.default_rng(seed)) == new.sample(125, np.random.default_rng(seed))


def test_config_passes_aligned_holes_to_the_augmentation():
    pytest.importorskip("torch", reason="training config needs torch")
    from training.config import TrainConfig
    from training.train import make_augment

    augment = make_augment(TrainConfig().replace(**{"augment.aligned_holes": 0.5, "augment.aligned_hole_max": 0.2}))
    assert augment.aligned_holes == 0.5 and augment.aligned_hole_max == 0.2
