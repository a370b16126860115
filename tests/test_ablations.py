"""Plumbing of tools/run_ablations.py on a tiny fixture tree (1 epoch, two cells)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the ablation script trains networks (train extra)")

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("run_ablations", ROOT / "tools" / "run_ablations.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_ablations"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_test_metrics_separates_and_orders():
    ab = _load_script()
    labels = np.array([1] * 10 + [0] * 30)
    perfect = ab.test_metrics(np.r_[np.linspace(0.8, 0.9, 10), np.linspace(0.1, 0.3, 30)], labels)
    assert perfect["tpr"] == {"1e-2": 1.0, "1e-3": 1.0, "1e-4": 1.0}
    assert perfect["acer"] == 0.0 and perfect["eer"] == 0.0
    assert perfect["gap"] == pytest.approx(0.8 - 0.3)
    # One attack above every live sample: TPR at FPR < 1/30 collapses to 0, the gap turns negative.
    scores = np.r_[np.linspace(0.8, 0.9, 10), [0.95], np.linspace(0.1, 0.3, 29)]
    worse = ab.test_metrics(scores, labels)
    assert worse["tpr"]["1e-2"] == 0.0
    assert worse["gap"] < 0 < worse["margin"] < perfect["margin"] + 1e-12
    assert worse["nll"] > perfect["nll"]


def test_one_cell_and_a_fold_cell_end_to_end(tmp_path):
    from training.data.fixtures import write_casia_tree

    ab = _load_script()
    data = tmp_path / "casia"
    write_casia_tree(data, live_subjects=6, attack_subjects=6, frames=2, val_samples=12)
    doc = tmp_path / "ablations.md"
    doc.write_text(f"# prose kept\n\n{ab.TABLE_START}\nold\n{ab.TABLE_END}\n\ntrailing prose\n")
    argv = ["--work", str(tmp_path / "work"), "--data", str(data), "--test-list", "val_list.txt",
            "--epochs", "1", "--train-samples", "40", "--cells", "base", "attack3_f1", "--doc", str(doc)]
    assert ab.main(argv) == 0

    results = tmp_path / "work" / "results"
    records = {p.stem: json.loads(p.read_text()) for p in results.glob("*.json")}
    assert set(records) == {"base_s1", "attack3_f1_s1"}
    for rec in records.values():
        t = rec["test"]
        assert t["n_live"] == 6 and t["n_attack"] == 6
        for value in [*t["tpr"].values(), t["acer"], t["eer"], t["auc"], t["mean_live"], t["mean_attack"]]:
            assert 0.0 <= value <= 1.0
        assert rec["epochs"] == 1 and rec["train_s"] > 0
        assert rec["config"]["model"]["options"]["width"] == 0.25
    # The fold cell really trained on fold 1 of the attack-specific split.
    fold_cfg = records["attack3_f1_s1"]["config"]["data"]
    assert (fold_cfg["fold_scheme"], fold_cfg["fold"]) == ("attack3", 1)
    assert (tmp_path / "work" / "folds" / "subject5" / "fold5" / "train_list.txt").is_file()

    text = doc.read_text()
    assert text.startswith("# prose kept") and text.rstrip().endswith("trailing prose") and "\nold\n" not in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    assert [r.split("`")[1] for r in rows] == ["base", "attack3_f1"]

    # A second invocation reuses the finished cells instead of training again.
    before = {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")}
    assert ab.main(argv) == 0
    assert {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")} == before
