"""synth-dataset: a tiny run writes consistent lists, files, manifest and disjoint subjects."""
from __future__ import annotations

import csv
import json

import cv2
import numpy as np

from sdk.cli import main
from sdk.sim.dataset import LIST_NAMES, iter_list, plan


def test_plan_partitions_subjects_by_split():
    jobs = plan(live=6, per_attack=3, frames_per_subject=2)
    by_split = {}
    for j in jobs:
        by_split.setdefault(j.split, set()).add(j.subject)
    splits = list(by_split)
    for i, a in enumerate(splits):
        for b in splits[i + 1 :]:
            assert not by_split[a] & by_split[b], (a, b)
    scen = {s: {j.scenario for j in jobs if j.split == s} for s in by_split}
    assert scen["Training"] == {"live", "cut_eyes_nose_curved", "cut_eyes_nose_mouth_flat", "cut_eyes_nose_mouth_curved"}
    assert scen["Val"] == scen["Test"] == {"live", "cut_eyes_flat", "cut_eyes_curved", "cut_eyes_nose_flat"}
    # mask_3d is a held-out attack family (sdk.sim.holdout): never in a default dataset.
    assert scen["TestExtra"] == {"screen_replay", "print_flat", "print_curved"}


def test_tiny_dataset_via_cli(tmp_path):
    out = tmp_path / "ds"
    rc = main(["synth-dataset", "--out", str(out), "--live", "1", "--per-attack", "1", "--frames-per-subject", "1",
               "--workers", "1", "--no-progress"])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["label_live"] == 1 and manifest["preprocess_version"]
    total = 0
    for split, name in LIST_NAMES.items():
        rows = list(iter_list(out / name))
        assert len(rows) == manifest["splits"][split]["triplets"]
        total += len(rows)
        for c, d, i, label in rows:
            assert label in (0, 1)
            rgb = cv2.imread(str(out / c), cv2.IMREAD_UNCHANGED)
            assert rgb.shape == (125, 125, 3)
            for p in (d, i):
                img = cv2.imread(str(out / p), cv2.IMREAD_UNCHANGED)
                assert img.shape == (125, 125) and img.dtype == np.uint8
    train = list(iter_list(out / "train_list.txt"))
    assert any(r[3] == 1 for r in train) and any(r[3] == 0 for r in train)
    assert train[0][0].startswith("Training/real_part/") and "/real.rssdk/color/" in train[0][0]
    assert any("/fake_part/" in r[0] and "_cut_eyes_nose" in r[0] for r in train)
    assert list(iter_list(out / "val_list.txt"))[0][0].startswith("Val/0000/")
    with open(out / "metadata.csv", newline="") as handle:
        meta = list(csv.DictReader(handle))
    assert len(meta) == total
    subjects = {}
    for row in meta:
        subjects.setdefault(row["split"], set()).add(row["subject"])
    assert not subjects["Training"] & subjects["Val"] and not subjects["Val"] & subjects["Test"]
    assert not list(out.glob(".*.tmp"))  # no half-written list left behind
