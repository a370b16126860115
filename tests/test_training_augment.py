"""Physics-friendly augmentation: IR response, depth noise, background fill, outline randomisation."""
from __future__ import annotations

import numpy as np
import pytest

from training.data.augment import PairedAugment, ir_response

GEOMETRY_OFF = dict(rotation_deg=0.0, scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=0.0,
                    brightness=0.0, contrast=0.0, saturation=0.0)


def head_crops(side: int = 125) -> dict[str, np.ndarray]:
    """A live-like crop: a face ellipse with depth relief, empty (0) depth around it."""
    yy, xx = np.mgrid[0:side, 0:side]
    inside = ((xx - side / 2) / (side * 0.33)) ** 2 + ((yy - side / 2) / (side * 0.42)) ** 2 <= 1
    depth = np.where(inside, 128, 0).astype(np.uint8)
    ir = np.where(inside, 120, 30).astype(np.uint8)
    rgb = np.dstack([np.where(inside, 180, 60)] * 3).astype(np.uint8)
    return {"rgb": rgb, "ir": ir, "depth": depth}


def test_ir_response_gain_and_gamma():
    ir = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(ir_response(ir, 1.0, 1.0), ir)
    brighter = ir_response(ir, 1.3, 1.0)
    assert brighter.dtype == np.uint8 and (brighter >= ir).all() and brighter[8, 0] > ir[8, 0]
    assert (ir_response(ir, 0.7, 1.0) <= ir).all()
    # gamma > 1 darkens mid-tones and keeps the ends
    dark = ir_response(ir, 1.0, 1.5)
    assert dark[8, 0] < ir[8, 0] and dark[0, 0] == 0 and dark[15, 15] == 255


def test_defaults_leave_physics_off_and_draws_unchanged():
    plain = PairedAugment()
    assert not plain.physics_enabled
    crops = head_crops()
    a = plain(crops, np.random.default_rng(7))
    b = PairedAugment()(crops, np.random.default_rng(7))
    assert all(np.array_equal(a[m], b[m]) for m in a)


def test_background_fill_removes_the_empty_border_but_not_the_face():
    augment = PairedAugment(**GEOMETRY_OFF, background_fill=1.0)
    crops = head_crops()
    out = augment(crops, np.random.default_rng(1))
    depth = out["depth"]
    assert (depth > 0).all()  # no empty depth left
    assert depth[0, 0] <= 110 and depth[0, 0] < depth[56, 56]  # background stays behind the face
    assert depth[56, 56] == 128  # the face itself is untouched (no noise configured)
    assert np.array_equal(out["rgb"], PairedAugment(**GEOMETRY_OFF)(crops, np.random.default_rng(1))["rgb"])


def test_outline_cut_empties_depth_outside_a_head_ellipse():
    augment = PairedAugment(**GEOMETRY_OFF, outline_cut=1.0)
    flat = {"rgb": np.full((125, 125, 3), 100, np.uint8), "ir": np.full((125, 125), 90, np.uint8),
            "depth": np.full((125, 125), 128, np.uint8)}  # a print sheet: depth everywhere
    depth = augment(flat, np.random.default_rng(3))["depth"]
    assert depth[0, 0] == 0 and depth[-1, -1] == 0 and depth[0, -1] == 0
    assert depth[56, 56] == 128
    assert 0.2 < (depth == 0).mean() < 0.8


def test_depth_noise_and_dropout_touch_valid_pixels_only():
    augment = PairedAugment(**GEOMETRY_OFF, depth_noise=6.0, depth_dropout=0.05)
    crops = head_crops()
    out = augment(crops, np.random.default_rng(11))["depth"]
    reference = PairedAugment(**GEOMETRY_OFF)(crops, np.random.default_rng(11))["depth"]
    empty = reference == 0
    assert (out[empty] == 0).all()
    face = ~empty
    assert (out[face] != reference[face]).any()
    kept = face & (out > 0)
    assert kept.mean() > 0.8 * face.mean()  # dropouts are a few per cent
    assert abs(float(out[kept].astype(float).mean() - reference[kept].astype(float).mean())) < 1.0  # zero-mean noise


def test_physics_draws_are_reproducible_and_vary_with_the_seed():
    augment = PairedAugment(ir_gain=0.3, ir_gamma=0.3, depth_noise=4.0, background_fill=0.5, outline_cut=0.5)
    crops = head_crops()
    a = augment(crops, np.random.default_rng([1, 2, 3]))
    b = augment(crops, np.random.default_rng([1, 2, 3]))
    c = augment(crops, np.random.default_rng([1, 2, 4]))
    assert all(np.array_equal(a[m], b[m]) for m in a)
    assert any(not np.array_equal(a[m], c[m]) for m in a)
    assert all(a[m].shape[:2] == (112, 112) and a[m].dtype == np.uint8 for m in a)


def test_config_passes_physics_settings_to_the_augmentation():
    pytest.importorskip("torch", reason="training config needs torch")
    from training.config import TrainConfig
    from training.train import make_augment

    config = TrainConfig().replace(**{"augment.ir_gain": 0.3, "augment.outline_cut": 0.25})
    augment = make_augment(config)
    assert augment.ir_gain == 0.3 and augment.outline_cut == 0.25 and augment.physics_enabled


def composite_tree(tmp_path, **composites):
    """A small CASIA tree; (augment, plain dataset, dataset with ``composites``, live and attack indices)."""
    from training.data.casia import CasiaDataset
    from training.data.fixtures import write_casia_tree

    write_casia_tree(tmp_path, live_subjects=4, attack_subjects=2, frames=2, val_samples=4)
    augment = PairedAugment(**GEOMETRY_OFF)
    plain = CasiaDataset(tmp_path, tmp_path / "train_list.txt", augment=augment, seed=5)
    composite = CasiaDataset(tmp_path, tmp_path / "train_list.txt", augment=augment, seed=5, **composites)
    live = [i for i, s in enumerate(plain.samples) if s.label == 1]
    attacks = [i for i, s in enumerate(plain.samples) if s.label == 0]
    return augment, plain, composite, live, attacks


def test_modality_swap_makes_cross_modal_negatives_labelled_attack(tmp_path):
    """A swapped live sample keeps its own depth with an attack's colour and NIR (or the reverse)
    and is labelled attack; attacks are never swapped; the draw repeats for (seed, epoch, index)."""
    from sdk.preprocess import to_chw3
    from training.data.casia import SWAPS, CasiaDataset, load_region_crops

    augment, plain, swapping, live, attacks = composite_tree(tmp_path, modality_swap=1.0)
    assert live and attacks
    assert all(swapping.swap_of(i) is None for i in attacks)
    seen = set()
    for i in live:
        partner, taken = swapping.swap_of(i)
        assert taken in SWAPS and plain.samples[partner].label == 0
        seen.add(taken)
        mine, composite = plain[i], swapping[i]
        # what the partner's crops look like under sample i's own augmentation draw
        theirs = augment(load_region_crops(tmp_path, plain.samples[partner]), np.random.default_rng([5, 0, i]))
        assert composite["label"] == 0 and mine["label"] == 1 and composite["swapped"] == "+".join(taken)
        for m in ("rgb", "ir", "depth"):
            # the same augmentation draw (index i) is applied to whichever crop the modality came from
            assert torch_equal(composite[m], mine[m]) == (m not in taken), (i, m, taken)
            if m in taken:
                assert np.array_equal(composite[m].numpy(), to_chw3(theirs[m]))
        assert swapping.swap_of(i) == (partner, taken)
    assert seen == set(SWAPS)  # both kinds of negative occur
    none = CasiaDataset(tmp_path, tmp_path / "train_list.txt", seed=5, modality_swap=1.0)  # no augment: test transform
    assert none.swap_of(live[0]) is None and none[live[0]]["label"] == 1
    with pytest.raises(Exception, match="modality_swap"):
        CasiaDataset(tmp_path, tmp_path / "train_list.txt", augment=augment, modality_swap=1.5)


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_modality_swap_is_refused_for_a_teacher_that_never_saw_it():
    pytest.importorskip("torch", reason="the config module imports the model registry")
    from sdk.errors import InputValidationError
    from training.config import load_config
    from training.distill import check_teacher_saw_composites
    from training.ensemble.plan import Member

    config = load_config("student_small").replace(**{"augment.modality_swap": 0.2, "distill.teacher": "/runs/e"})
    assert config.augment.modality_swap == 0.2
    member_config = load_config("cpu_tiny")
    with pytest.raises(InputValidationError, match="modality_swap"):
        check_teacher_saw_composites(config, [Member("m", "ir50-face", 1, 1, member_config)])
    trained_on_it = member_config.replace(**{"augment.modality_swap": 0.25})
    check_teacher_saw_composites(config, [Member("m", "ir50-face", 1, 1, trained_on_it)])
    # augmentation off: nothing is relabelled, so any teacher will do
    check_teacher_saw_composites(config.replace(**{"augment.enabled": False}), [Member("m", "ir50-face", 1, 1, member_config)])


def test_colour_swap_live_keeps_live_depth_and_nir_under_an_attack_colour(tmp_path):
    """A colour-swapped live sample has an attack's colour crop, its own depth and NIR, and stays
    live; attacks and modality-swapped samples are never colour-swapped; the draw repeats."""
    from sdk.preprocess import to_chw3
    from training.data.casia import CasiaDataset, load_region_crops

    augment, plain, colour, live, attacks = composite_tree(tmp_path, colour_swap_live=1.0)
    assert all(colour.colour_partner_of(i) is None for i in attacks)
    for i in live:
        partner = colour.colour_partner_of(i)
        assert plain.samples[partner].label == 0 and colour.colour_partner_of(i) == partner
        mine, composite = plain[i], colour[i]
        theirs = augment(load_region_crops(tmp_path, plain.samples[partner]), np.random.default_rng([5, 0, i]))
        assert composite["label"] == 1 and composite["swapped"] == "rgb_live"
        assert np.array_equal(composite["rgb"].numpy(), to_chw3(theirs["rgb"]))
        assert not torch_equal(composite["rgb"], mine["rgb"])
        assert torch_equal(composite["ir"], mine["ir"]) and torch_equal(composite["depth"], mine["depth"])
    # a live sample made a cross-modal negative is not also colour-swapped
    both = CasiaDataset(tmp_path, tmp_path / "train_list.txt", augment=augment, seed=5, modality_swap=1.0,
                        colour_swap_live=1.0)
    assert all(both[i]["label"] == 0 and both[i]["swapped"] != "rgb_live" for i in live)
    assert CasiaDataset(tmp_path, tmp_path / "train_list.txt", seed=5, colour_swap_live=1.0).colour_partner_of(live[0]) is None
    with pytest.raises(Exception, match="colour_swap_live"):
        CasiaDataset(tmp_path, tmp_path / "train_list.txt", augment=augment, colour_swap_live=-0.1)


def test_colour_swap_live_is_refused_for_a_teacher_that_never_saw_it():
    pytest.importorskip("torch", reason="the config module imports the model registry")
    from sdk.errors import InputValidationError
    from training.config import load_config
    from training.distill import check_teacher_saw_composites
    from training.ensemble.plan import Member

    config = load_config("student_small").replace(**{"augment.colour_swap_live": 0.25, "distill.teacher": "/runs/e"})
    member_config = load_config("cpu_tiny")
    with pytest.raises(InputValidationError, match="colour_swap_live"):
        check_teacher_saw_composites(config, [Member("m", "ir50-face", 1, 1, member_config)])
    check_teacher_saw_composites(config, [Member("m", "ir50-face", 1, 1,
                                                 member_config.replace(**{"augment.colour_swap_live": 0.25}))])
    with pytest.raises(InputValidationError, match="colour_swap_live"):
        load_config("cpu_tiny").replace(**{"augment.colour_swap_live": 2.0})
