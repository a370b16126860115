"""Relief-free depth (sdk.relief): the training's relief negatives and the counterfactual check."""
from __future__ import annotations

import numpy as np
import pytest

from sdk.errors import InputValidationError
from sdk.relief import MM_PER_LEVEL, bent_sheet, flatten_relief, random_sheet


def face_depth(side: int = 112) -> np.ndarray:
    """A head-shaped blob: brighter (nearer) towards a nose in the middle, holes around it."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    r2 = ((xx - side / 2) / (side * 0.33)) ** 2 + ((yy - side / 2) / (side * 0.42)) ** 2
    depth = np.where(r2 <= 1, 120 + 30 * (1 - r2), 0).astype(np.uint8)
    depth[60:63, 30:33] = 0  # a sensor dropout inside the face
    return depth


def test_flatten_keeps_outline_and_holes_and_removes_relief():
    depth = face_depth()
    flat = flatten_relief(depth)
    assert np.array_equal(flat > 0, depth > 0)
    assert len(np.unique(flat[flat > 0])) == 1
    assert flat[depth > 0][0] == int(np.median(depth[depth > 0]))


def test_bent_sheet_falls_away_across_and_is_flat_along_the_vertical():
    depth = np.full((112, 112), 128, np.uint8)
    sheet = bent_sheet(depth, 120.0).astype(np.float32)
    assert np.ptp(sheet[:, 56]) == 0  # no relief along the vertical axis
    drop_mm = (sheet[56, 56] - sheet[56, 5]) * MM_PER_LEVEL
    expected = 120.0 - np.sqrt(120.0 ** 2 - (51 * 1.7) ** 2)
    assert drop_mm == pytest.approx(expected, abs=1.5)
    with pytest.raises(InputValidationError):
        bent_sheet(depth, -5.0)
    with pytest.raises(InputValidationError):
        bent_sheet(depth.astype(np.float32), 100.0)


def test_random_sheets_are_reproducible_and_relief_free_vertically():
    depth = face_depth()
    a = random_sheet(depth, np.random.default_rng(4))
    b = random_sheet(depth, np.random.default_rng(4))
    assert np.array_equal(a, b) and np.array_equal(a > 0, depth > 0)
    for seed in range(10):
        sheet = random_sheet(depth, np.random.default_rng(seed)).astype(np.float32)
        column = sheet[20:92, 56]
        assert np.ptp(column) <= 0.16 * 72 + 1  # only the small tilt, never a nose


def test_relief_negatives_are_live_crops_with_a_sheet_for_depth(tmp_path):
    from training.data.augment import PairedAugment
    from training.data.casia import CasiaDataset
    from training.data.fixtures import write_casia_tree
    from tests.test_training_augment import GEOMETRY_OFF

    write_casia_tree(tmp_path, live_subjects=4, attack_subjects=2, frames=2, val_samples=4)
    augment = PairedAugment(**GEOMETRY_OFF)
    plain = CasiaDataset(tmp_path, tmp_path / "train_list.txt", augment=augment, seed=5)
    relief = CasiaDataset(tmp_path, tmp_path / "train_list.txt", augment=augment, seed=5, relief_negative=1.0)
    for i, sample in enumerate(plain.samples):
        mine, other = plain[i], relief[i]
        if sample.label == 0:
            assert other["label"] == 0 and other["swapped"] == ""
            continue
        assert other["label"] == 0 and other["swapped"] == "relief"
        assert np.array_equal(other["rgb"].numpy(), mine["rgb"].numpy())
        assert np.array_equal(other["ir"].numpy(), mine["ir"].numpy())
        assert not np.array_equal(other["depth"].numpy(), mine["depth"].numpy())  # only depth changed
    none = CasiaDataset(tmp_path, tmp_path / "train_list.txt", seed=5, relief_negative=1.0)  # test transform
    assert all(none[i]["label"] == s.label for i, s in enumerate(none.samples))
    with pytest.raises(InputValidationError):
        CasiaDataset(tmp_path, tmp_path / "train_list.txt", augment=augment, relief_negative=2.0)


def test_relief_negatives_need_a_teacher_that_trained_on_them():
    pytest.importorskip("torch", reason="training config needs torch")
    from training.config import TrainConfig, validate_config
    from training.distill import check_teacher_saw_composites
    from training.ensemble.plan import Member

    student = TrainConfig().replace(**{"augment.relief_negative": 0.2, "distill.teacher": "x"})
    validate_config(student)  # the config alone is fine: whether the teacher fits is known at distill()
    plain = Member("m0", "resnet34-face", 1, 1, TrainConfig())
    seen = Member("m1", "resnet34-face", 2, 1, TrainConfig().replace(**{"augment.relief_negative": 0.25}))
    with pytest.raises(InputValidationError, match="relief_negative .*1 of the 2"):
        check_teacher_saw_composites(student, [seen, plain])
    check_teacher_saw_composites(student, [seen])
    with pytest.raises(InputValidationError, match="relief_negative"):
        validate_config(TrainConfig().replace(**{"augment.relief_negative": -0.1}))
