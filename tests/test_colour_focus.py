"""Colour refocus (sdk.colour_focus): blur and unsharp masking of the colour crop, used by the
training augmentation and the counterfactual check alike."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from sdk.colour_focus import refocus
from sdk.errors import InputValidationError
from training.data.augment import PairedAugment
from tests.test_training_augment import GEOMETRY_OFF, head_crops


def textured_rgb(side: int = 112, seed: int = 0) -> np.ndarray:
    """Skin-like mid-grey with fine texture (so sharpness can be measured), never exactly black."""
    rng = np.random.default_rng(seed)
    grain = cv2.GaussianBlur(rng.normal(0, 25, (side, side)).astype(np.float32), (0, 0), 0.8)
    base = np.clip(140 + grain, 1, 255).astype(np.uint8)
    return np.dstack([base, base, base])


def sharpness(rgb: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_blur_softens_and_unsharp_masking_sharpens():
    rgb = textured_rgb()
    assert sharpness(refocus(rgb, 1.0, -1.0)) < 0.5 * sharpness(rgb)
    assert sharpness(refocus(rgb, 1.5, 1.0)) > 1.5 * sharpness(rgb)
    blurred = refocus(rgb, 1.0, -1.0).astype(np.float32)
    plain_blur = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), 1.0)
    assert np.abs(blurred - plain_blur)[8:-8, 8:-8].max() <= 1.0  # amount -1 is a Gaussian blur


def test_holes_stay_black_and_do_not_darken_their_neighbours():
    rgb = np.full((32, 32, 3), 200, np.uint8)
    rgb[10:13, 10:13] = 0  # where rs.align found no depth
    for amount in (-1.0, 1.0):
        out = refocus(rgb, 2.0, amount)
        assert (out[10:13, 10:13] == 0).all()
        assert (out[9, 9:14] == 200).all() and (out[13, 9:14] == 200).all()  # no dark rim, no halo


def test_refocus_copies_and_checks_its_arguments():
    rgb = textured_rgb(16)
    same = refocus(rgb, 1.0, 0.0)
    assert np.array_equal(same, rgb) and same is not rgb
    for sigma, amount in ((0.0, 1.0), (-1.0, 1.0), (float("nan"), 1.0), (1.0, -1.5), (1.0, float("inf"))):
        with pytest.raises(InputValidationError):
            refocus(rgb, sigma, amount)
    with pytest.raises(InputValidationError):
        refocus(rgb[..., 0], 1.0, 1.0)
    with pytest.raises(InputValidationError):
        refocus(rgb.astype(np.float32), 1.0, 1.0)


def test_augmentation_refocuses_colour_only_and_keeps_holes():
    crops = head_crops()
    crops["rgb"] = np.dstack([textured_rgb(125, 1)[..., 0]] * 3)
    crops["rgb"][crops["depth"] == 0] = 0  # holes of the alignment around the head
    augment = PairedAugment(**GEOMETRY_OFF, colour_refocus=1.0)
    assert augment.physics_enabled
    plain = PairedAugment(**GEOMETRY_OFF)(crops, np.random.default_rng(0))
    changed = 0
    for seed in range(6):
        out = augment(crops, np.random.default_rng(seed))
        assert np.array_equal(out["ir"], plain["ir"]) and np.array_equal(out["depth"], plain["depth"])
        holes = plain["rgb"].sum(axis=2) == 0
        assert holes.any() and (out["rgb"][holes] == 0).all()  # the alignment's holes stay black
        changed += int(not np.array_equal(out["rgb"], plain["rgb"]))
    assert changed >= 5


def test_augmentation_draws_blur_and_sharpening_in_the_configured_range():
    augment = PairedAugment(colour_refocus=1.0, colour_sharpen_max=1.5)
    draws = [augment.sample(125, np.random.default_rng(seed)) for seed in range(200)]
    amounts = np.array([d.focus_amount for d in draws])
    sigmas = np.array([d.focus_sigma for d in draws])
    assert amounts.min() >= -1.0 and amounts.max() <= 1.5 and (amounts < 0).any() and (amounts > 0).any()
    assert sigmas.min() >= 0.7 and sigmas.max() <= 2.0


def test_augmentation_without_refocus_keeps_its_old_draws():
    old = PairedAugment(depth_noise=4.0, outline_cut=0.3, aligned_holes=0.5)
    new = PairedAugment(depth_noise=4.0, outline_cut=0.3, aligned_holes=0.5, colour_refocus=0.0)
    for seed in range(5):
        assert old.sample(125, np.random.default_rng(seed)) == new.sample(125, np.random.default_rng(seed))


def test_config_passes_colour_refocus_to_the_augmentation():
    pytest.importorskip("torch", reason="training config needs torch")
    from training.config import TrainConfig, validate_config
    from training.train import make_augment

    config = TrainConfig().replace(**{"augment.colour_refocus": 0.5, "augment.colour_sharpen_max": 1.0})
    augment = make_augment(config)
    assert augment.colour_refocus == 0.5 and augment.colour_sharpen_max == 1.0
    with pytest.raises(InputValidationError):
        validate_config(TrainConfig().replace(**{"augment.colour_refocus": 1.5}))
