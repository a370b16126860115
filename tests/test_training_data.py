"""CASIA list reader, dataset, paired augmentation, folds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch (the train extra)")

from sdk.errors import InputValidationError  # noqa: E402
from sdk.preprocess import center_crop, resize_square  # noqa: E402
from training.data import CasiaDataset, PairedAugment, read_list, write_list  # noqa: E402
from training.data.fixtures import write_casia_tree  # noqa: E402
from training.data.folds import attack_folds, read_fold, subject_folds, write_folds  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("casia")
    train, val = write_casia_tree(root, live_subjects=6, attack_subjects=3, frames=2, val_samples=6)
    return root, train, val


def test_list_reader_space_separated(tree):
    root, train, _ = tree
    samples = read_list(train)
    assert len(samples) == 6 * 2 + 3 * 3 * 2
    first = samples[0]
    assert first.rgb.startswith("Training/real_part/") and first.rgb.endswith("/color/1.jpg")
    assert first.label == 1 and first.subject == "LIVE_0000" and first.attack_type is None
    assert {s.attack_type for s in samples if s.label == 0} == {4, 5, 6}
    assert all((root / s.depth).is_file() for s in samples)


def test_label_polarity_setting(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("a/color.jpg a/depth.jpg a/ir.jpg 1\nb/color.jpg b/depth.jpg b/ir.jpg 0\n")
    assert [s.label for s in read_list(path)] == [1, 0]
    assert [s.label for s in read_list(path, live_label=0)] == [0, 1]
    # write_list restores the file's polarity
    write_list(tmp_path / "again.txt", read_list(path, live_label=0), live_label=0)
    assert (tmp_path / "again.txt").read_text() == path.read_text()


def test_csv_list_and_unlabelled_lines(tmp_path):
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("rgb,depth,ir,label\nVal/0000/000000-color.jpg,Val/0000/000000-depth.jpg,Val/0000/000000-ir.jpg,0\n")
    (sample,) = read_list(csv_path)
    assert sample.ir == "Val/0000/000000-ir.jpg" and sample.label == 0 and sample.subject is None
    plain = tmp_path / "test.txt"
    plain.write_text("x/c.jpg x/d.jpg x/i.jpg\n")
    assert read_list(plain)[0].label == -1
    bad = tmp_path / "bad.txt"
    bad.write_text("x/c.jpg x/d.jpg\n")
    with pytest.raises(InputValidationError):
        read_list(bad)
    bad.write_text("x/c.jpg x/d.jpg x/i.jpg 7\n")
    with pytest.raises(InputValidationError):
        read_list(bad)


def test_reads_the_shared_fixture_label_list():
    from tests.conftest import shared_dir

    path = shared_dir() / "fixtures" / "casia_surf_val_scores" / "labels" / "phase1_list.txt"
    if not path.is_file():
        pytest.skip(reason=f"{path} is not present")
    samples = read_list(path)
    assert len(samples) == 9608
    assert sum(s.label for s in samples) == 2994


def test_dataset_items_test_transform(tree):
    root, train, _ = tree
    ds = CasiaDataset(root, train)
    item = ds[0]
    assert set(item) == {"rgb", "ir", "depth", "label", "index", "swapped"} and item["swapped"] == ""
    for m in ("rgb", "ir", "depth"):
        assert item[m].shape == (3, 112, 112) and item[m].dtype == torch.float32
        assert 0 <= float(item[m].min()) and float(item[m].max()) <= 255
    # depth / IR stored at other sizes than colour, grey repeated to 3 channels
    assert torch.equal(item["depth"][0], item["depth"][1])
    # exactly the shared preprocessing: resize to 125, centre crop 112
    import cv2

    raw = cv2.imread(str(root / ds.samples[0].depth), cv2.IMREAD_GRAYSCALE)
    assert raw.shape == (110, 110)
    expected = center_crop(resize_square(raw, 125), 112)
    assert np.array_equal(item["depth"][0].numpy().astype(np.uint8), expected)
    assert item["label"] == 1 and item["index"] == 0


def test_augmentation_shares_parameters_across_modalities():
    aug = PairedAugment(rotation_deg=15, hflip=0.5, brightness=0.0, contrast=0.0, saturation=0.0)
    base = np.random.default_rng(0).integers(0, 256, (125, 125), dtype=np.uint8)
    crops = {"rgb": np.repeat(base[..., None], 3, axis=2), "ir": base.copy(), "depth": base.copy()}
    flips = set()
    for seed in range(12):
        out = aug(crops, np.random.default_rng(seed))
        assert all(v.shape[:2] == (112, 112) for v in out.values())
        # identical inputs + identical geometry -> identical outputs in every modality
        assert np.array_equal(out["ir"], out["depth"])
        assert np.array_equal(out["rgb"][..., 0], out["ir"])
        flips.add(aug.sample(125, np.random.default_rng(seed)).flip)
    assert flips == {True, False}


def test_colour_jitter_touches_rgb_only():
    aug = PairedAugment(rotation_deg=0, scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=0.0, brightness=0.5)
    base = np.full((125, 125), 100, np.uint8)
    out = aug({"rgb": np.repeat(base[..., None], 3, axis=2), "ir": base, "depth": base}, np.random.default_rng(3))
    assert not np.array_equal(out["rgb"][..., 0], out["ir"])
    assert np.all(out["ir"] == 100) and np.all(out["depth"] == 100)


def test_augmentation_is_reproducible_per_seed_epoch_index(tree):
    root, train, _ = tree
    ds = CasiaDataset(root, train, augment=PairedAugment(), seed=3)
    a = ds[1]["rgb"]
    assert torch.equal(a, ds[1]["rgb"])
    ds.set_epoch(1)
    assert not torch.equal(a, ds[1]["rgb"])


def test_attack_folds_are_disjoint_and_hold_out_one_type(tree):
    _, train, _ = tree
    samples = read_list(train)
    folds = attack_folds(samples, seed=0)
    assert len(folds) == 3
    live_val_subjects = []
    for k, (tr, va) in enumerate(folds):
        held = (4, 5, 6)[k]
        assert {s.attack_type for s in va if s.label == 0} == {held}
        assert held not in {s.attack_type for s in tr if s.label == 0}
        tr_live = {s.subject for s in tr if s.label == 1}
        va_live = {s.subject for s in va if s.label == 1}
        assert tr_live and va_live and not (tr_live & va_live)
        assert not ({id(s) for s in tr} & {id(s) for s in va})
        assert len(tr) + len(va) == len(samples)
        live_val_subjects.append(va_live)
    # the three live groups partition the live subjects
    assert set().union(*live_val_subjects) == {s.subject for s in samples if s.label == 1}
    assert sum(len(g) for g in live_val_subjects) == 6


def test_subject_folds_written_and_read_back(tree, tmp_path):
    _, train, _ = tree
    samples = read_list(train)
    folds = subject_folds(samples, 5)
    assert len(folds) == 5
    seen = set()
    for tr, va in folds:
        assert not ({s.subject for s in tr} & {s.subject for s in va})
        seen |= {s.subject for s in va}
    assert seen == {s.subject for s in samples}
    paths = write_folds(train, tmp_path / "folds", "subject5")
    assert len(paths) == 5 and all(p.is_file() for pair in paths for p in pair)
    tr, va = read_fold(tmp_path / "folds", "subject5", 2)
    assert [s.rgb for s in va] == [s.rgb for s in folds[1][1]]
    write_folds(train, tmp_path / "folds", "attack3")
    tr, va = read_fold(tmp_path / "folds", "attack3", 3)
    assert {s.attack_type for s in va if s.label == 0} == {6}


def test_folds_command_line(tree, tmp_path):
    from training.data.folds import main

    _, train, _ = tree
    assert main([str(train), str(tmp_path / "f"), "--scheme", "all"]) == 0
    assert (tmp_path / "f" / "attack3" / "fold3" / "val_list.txt").is_file()
    assert (tmp_path / "f" / "subject5" / "fold5" / "train_list.txt").is_file()
