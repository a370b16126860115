"""The student-vs-ensemble gap at FPR 1e-3: the fast TPR, the paired bootstrap verdict, the tool."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from calibration.metrics import tpr_at_fpr
from calibration.paired import (VERDICT_MET, VERDICT_NOT_MET, VERDICT_UNRESOLVED, attacks_allowed, paired_tpr_gap,
                                tpr_at_fpr_rows)


@pytest.mark.parametrize("n_attack, target, allowed", [(1000, 1e-3, 1), (999, 1e-3, 0), (1080, 1e-3, 1),
                                                        (5400, 1e-3, 5), (144, 1e-2, 1), (10, 1.0, 10)])
def test_attacks_allowed_at_a_target(n_attack, target, allowed):
    assert attacks_allowed(n_attack, target) == allowed


@pytest.mark.parametrize("n_live, n_attack, target", [(40, 1000, 1e-3), (50, 144, 1e-2), (30, 20, 0.1), (25, 7, 1e-3)])
def test_fast_tpr_is_the_roc_rule_ties_included(n_live, n_attack, target):
    rng = np.random.default_rng(n_live + n_attack)
    for _ in range(20):
        # scores on a coarse grid, so live/attack ties happen at the threshold
        live = np.round(rng.beta(4, 2, n_live), 2)
        attack = np.round(rng.beta(2, 4, n_attack), 2)
        scores = np.r_[live, attack]
        labels = np.r_[np.ones(n_live, int), np.zeros(n_attack, int)]
        expected = tpr_at_fpr(scores, labels, target)["empirical"]
        assert tpr_at_fpr_rows(live, attack, target)[0] == pytest.approx(expected)


def _set(n_live=400, n_attack=1080, seed=0):
    rng = np.random.default_rng(seed)
    live = rng.uniform(0.3, 1.0, n_live)
    attack = rng.uniform(0.0, 0.5, n_attack)
    return np.r_[live, attack], np.r_[np.ones(n_live, int), np.zeros(n_attack, int)]


def test_the_same_scores_meet_the_goal_with_zero_gap():
    scores, labels = _set()
    gap = paired_tpr_gap(scores, scores, labels, 1e-3, tolerance=0.003, resamples=300)
    assert gap.gap == 0.0 and gap.lower_95 == 0.0 and gap.upper_95 == 0.0
    assert gap.verdict == VERDICT_MET and gap.attacks_allowed == 1
    assert gap.tpr_model == pytest.approx(tpr_at_fpr(scores, labels, 1e-3)["empirical"])


def test_a_clearly_worse_model_does_not_meet_it_and_a_better_one_does():
    scores, labels = _set()
    worse = scores.copy()
    worse[labels == 1] -= 0.1  # live scores pushed into the attacks' range
    gap = paired_tpr_gap(worse, scores, labels, 1e-3, tolerance=0.003, resamples=300)
    assert gap.gap < -0.05 and gap.upper_95 < -0.003 and gap.verdict == VERDICT_NOT_MET
    better = paired_tpr_gap(scores, worse, labels, 1e-3, tolerance=0.003, resamples=300)
    assert better.gap > 0.05 and better.verdict == VERDICT_MET


def test_a_one_crop_difference_on_a_small_set_is_unresolved():
    rng = np.random.default_rng(3)
    live = rng.uniform(0.6, 1.0, 80)
    attack = rng.uniform(0.0, 0.5, 144)
    labels = np.r_[np.ones(80, int), np.zeros(144, int)]
    reference = np.r_[live, attack]
    model = reference.copy()
    model[1] = 0.2  # one live crop under the highest attack: -1.25 points on 80 live crops
    gap = paired_tpr_gap(model, reference, labels, 1e-3, tolerance=0.003, resamples=500)
    assert gap.gap == pytest.approx(-1 / 80)
    assert gap.lower_95 < -0.003 <= gap.upper_95
    assert gap.verdict == VERDICT_UNRESOLVED


def test_bad_requests_are_refused():
    scores, labels = _set(20, 30)
    with pytest.raises(ValueError, match="differ in length"):
        paired_tpr_gap(scores[:-1], scores, labels, 1e-3, tolerance=0.003)
    with pytest.raises(ValueError, match="resamples"):
        paired_tpr_gap(scores, scores, labels, 1e-3, tolerance=0.003, resamples=10)
    with pytest.raises(ValueError, match="no attack"):
        paired_tpr_gap(scores[labels == 1], scores[labels == 1], labels[labels == 1], 1e-3, tolerance=0.003)
    with pytest.raises(ValueError, match="tolerance"):
        paired_tpr_gap(scores, scores, labels, 1e-3, tolerance=3.0)


# --- against a trained ensemble (torch and ONNX Runtime) ------------------------------------------



@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A data tree, an ensemble run with two members trained a few steps, and a student."""
    pytest.importorskip("torch", reason="scoring needs torch (the train extra)")
    pytest.importorskip("onnxruntime", reason="the ensemble is scored by ONNX Runtime")
    import torch

    from training.data.fixtures import write_casia_tree
    from training.ensemble.plan import make_plan, member_dir
    from training.train import train

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("heldout_gap")
    root = base / "data"
    write_casia_tree(root, live_subjects=6, attack_subjects=2, frames=2, val_samples=6)
    run = base / "run"
    tiny = {"optim.epochs": 1, "optim.batch_size": 4, "model.options.width": 0.0625, "data.max_train_samples": 12,
            "data.max_val_samples": 4, "runtime.progress": False}
    members = make_plan("cpu_tiny", root, run, overrides=tiny)
    for member in members[:2]:
        train(member.config.replace(**{"runtime.threads": 1}), member_dir(run, member), log=lambda s: None)
    # the student: another member's recipe, trained outside the run (so not a member)
    train(members[2].config.replace(**{"runtime.threads": 1}), base / "student", log=lambda s: None)
    student = base / "student" / "model.pt"
    return root, run, members[:2], student


def test_measure_scores_caches_and_judges(tiny_run, tmp_path, monkeypatch):
    import torch

    from training import heldout_gap
    from training.ensemble.plan import member_dir
    from training.train import load_trained_model

    root, run, members, student = tiny_run
    cache = tmp_path / "cache"
    evaluations = {"a": [(root, "train_list.txt")], "b": [(root, "val_list.txt")]}
    report = heldout_gap.measure(run, {"S": student}, evaluations, cache=cache, pools={"pooled": ["a", "b"]},
                                 target_fpr=0.1, resamples=200, require_all=False, log=lambda s: None)
    assert [m["name"] for m in report["ensemble_members"]] == [m.name for m in members]
    assert set(report["sets"]) == {"a", "b", "pooled"}
    pooled = report["sets"]["pooled"]
    assert pooled["n_live"] == report["sets"]["a"]["n_live"] + report["sets"]["b"]["n_live"]
    assert pooled["independent_sessions"] is None  # the fixture tree has no metadata.csv

    # The ensemble's figure is the mean of its members' P(live), each the mean over the crop and its
    # flip by default (the quantity `ensemble score` and a bundle's decision rule use), here by torch.
    from training.data.casia import CasiaDataset, read_list

    assert report["tta"] is True
    rows = read_list(root / "train_list.txt")
    dataset = CasiaDataset(root, rows)
    inputs = [torch.stack([dataset[i][m] for i in range(len(dataset))]) for m in ("rgb", "ir", "depth")]
    flipped = [torch.flip(x, dims=[-1]) for x in inputs]

    def p_live(net, views):
        return torch.softmax(net(*views), 1)[:, 1].numpy()

    with torch.no_grad():
        nets = [load_trained_model(member_dir(run, m) / "model.pt").eval() for m in members]
        probs = np.mean([(p_live(net, inputs) + p_live(net, flipped)) / 2 for net in nets], axis=0)
    labels = np.array([r.label for r in rows])
    entry = report["sets"]["a"]
    assert entry["tpr"]["ensemble"] == pytest.approx(tpr_at_fpr(probs, labels, 0.1)["empirical"])
    assert entry["gaps"]["S"]["gap"] == pytest.approx(entry["tpr"]["S"] - entry["tpr"]["ensemble"])
    assert entry["gaps"]["S"]["verdict"] in (VERDICT_MET, VERDICT_NOT_MET, VERDICT_UNRESOLVED)
    assert report["goal_met"]["S"] == all(s["gaps"]["S"]["verdict"] == VERDICT_MET for s in report["sets"].values())
    cached = sorted(p.name for p in cache.glob("*.npz"))
    assert len(cached) == 4 and not list(cache.glob("*.partial*"))  # 2 networks x 2 lists

    # A second run reads every score from the cache: no network is loaded at all.
    def refuse(*args, **kwargs):
        raise AssertionError("a cached run must not load a network")

    monkeypatch.setattr(heldout_gap, "model_scorer", refuse)
    monkeypatch.setattr(heldout_gap, "ensemble_scorer", refuse)
    again = heldout_gap.measure(run, {"S": student}, evaluations, cache=cache, pools={"pooled": ["a", "b"]},
                                target_fpr=0.1, resamples=200, require_all=False, log=lambda s: None)
    assert again["sets"] == report["sets"]
    assert "ensemble" in heldout_gap.render_markdown(again)

    # With the scores gone but the checked ONNX graph kept, the ensemble is not traced again.
    monkeypatch.undo()
    from training.ensemble.teacher import EnsembleTeacher

    monkeypatch.setattr(EnsembleTeacher, "from_run", refuse)
    for stale in cache.glob("ensemble_*.npz"):
        stale.unlink()
    assert len(list(cache.glob("ensemble_*.onnx"))) == 1 and not list(cache.glob("*.unchecked.onnx"))
    third = heldout_gap.measure(run, {"S": student}, evaluations, cache=cache, pools={"pooled": ["a", "b"]},
                                target_fpr=0.1, resamples=200, require_all=False, log=lambda s: None)
    assert third["sets"]["a"]["tpr"] == pytest.approx(report["sets"]["a"]["tpr"])


def test_a_bundle_or_onnx_student_is_scored_as_the_device_runs_it(tiny_run, tmp_path):
    """A shipped model has no checkpoint beside it: its bundle (verified) or ONNX graph is scored
    by the SDK's ONNX Runtime engine and agrees with the torch checkpoint it was exported from."""
    import shutil

    from sdk.errors import InputValidationError
    from training import heldout_gap
    from training.export import export_bundle
    from training.train import load_trained_model

    root, run, _, student = tiny_run
    bundle = export_bundle(load_trained_model(student).eval(), tmp_path / "bundle", name="tiny-student", version="0.0.1",
                           operating_points={"default": {"threshold": 0.5}}, default_operating_point="default").path
    evaluations = {"a": [(root, "train_list.txt")]}
    report = heldout_gap.measure(run, {"T": student, "B": bundle, "O": bundle / "model.onnx"}, evaluations,
                                 cache=tmp_path / "cache", target_fpr=0.1, resamples=100, require_all=False, log=lambda s: None)
    records = report["students"]
    assert [records[k]["kind"] for k in ("T", "B", "O")] == ["torch", "bundle", "onnx"]
    assert records["B"]["model_sha256"] == records["O"]["model_sha256"] != records["T"]["model_sha256"]
    assert (records["B"]["bundle_name"], records["B"]["bundle_version"]) == ("tiny-student", "0.0.1")
    scored = {label: heldout_gap.scored_list(key, None, root, "train_list.txt", tmp_path / "cache", tta=True,
                                                      batch_size=8, log=lambda s: None)["scores"]
              for label, key in (("T", "model_" + records["T"]["model_sha256"][:16]),
                                 ("B", "onnx_" + records["B"]["model_sha256"][:16]))}
    assert np.abs(scored["T"] - scored["B"]).max() < 1e-4  # the export's own tolerance
    assert report["sets"]["a"]["tpr"]["B"] == report["sets"]["a"]["tpr"]["O"]
    assert "decides_with_tta" not in records["B"]  # points set on crops: no decision rule

    # A calibrated bundle decides on its rule's quantity: a table scored otherwise says so.
    from sdk.engine.bundle import write_bundle

    calibrated = write_bundle(tmp_path / "calibrated", bundle / "model.onnx", name="tiny-student", version="0.0.2",
                              operating_points={"default": {"threshold": 0.5}}, default_operating_point="default",
                              provenance={"calibration": {"decision_rule": {"tta": True}}}).path
    for tta in (False, True):
        flagged = heldout_gap.measure(run, {"C": calibrated}, evaluations, cache=tmp_path / "cache", target_fpr=0.1,
                                      resamples=100, tta=tta, require_all=False, log=lambda s: None)
        assert flagged["students"]["C"]["decides_with_tta"] is True
        assert ("another quantity than the device decides on" in heldout_gap.render_markdown(flagged)) is (not tta)

    # A bundle whose graph no longer matches its manifest is refused before anything is scored.
    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    with open(tampered / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(InputValidationError, match="not a usable model bundle"):
        heldout_gap.measure(run, {"B": tampered}, evaluations, cache=tmp_path / "c2", require_all=False)
    with pytest.raises(InputValidationError, match="must be a model bundle"):
        heldout_gap.measure(run, {"B": tmp_path}, evaluations, cache=tmp_path / "c3", require_all=False)
    with pytest.raises(InputValidationError, match="not found"):
        heldout_gap.measure(run, {"B": tmp_path / "nope.onnx"}, evaluations, cache=tmp_path / "c4", require_all=False)


def test_measure_refuses_bad_requests(tiny_run, tmp_path):
    from sdk.errors import InputValidationError
    from training import heldout_gap

    root, run, _, student = tiny_run
    evaluations = {"a": [(root, "train_list.txt")]}
    with pytest.raises(InputValidationError, match="complete|finished|members"):
        heldout_gap.measure(run, {"S": student}, evaluations, cache=tmp_path, log=lambda s: None)
    for taken in ("ensemble", "best_member"):
        with pytest.raises(InputValidationError, match="another label"):
            heldout_gap.measure(run, {taken: student}, evaluations, cache=tmp_path, require_all=False)
    with pytest.raises(InputValidationError, match="pool"):
        heldout_gap.measure(run, {"S": student}, evaluations, cache=tmp_path, pools={"p": ["nope"]}, require_all=False)
    with pytest.raises(InputValidationError, match="no list file"):
        heldout_gap.measure(run, {"S": student}, {"a": [(root, "missing.txt")]}, cache=tmp_path, require_all=False,
                            log=lambda s: None)


def test_tool_refuses_an_unfinished_ensemble_and_bad_arguments(tiny_run, tmp_path, capsys):
    from tests.conftest import load_tool

    tool = load_tool("heldout_gap")
    root, run, _, student = tiny_run
    code = tool.main(["--ensemble", str(run), "--model", f"S={student}", "--eval", f"a={root}:train_list.txt",
                      "--cache", str(tmp_path / "c"), "--json", str(tmp_path / "r.json")])
    assert code == 3 and not (tmp_path / "r.json").exists()
    assert "error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(["--ensemble", str(run), "--model", "no_equals_sign", "--eval", f"a={root}:train_list.txt",
                   "--cache", str(tmp_path / "c")])


def test_tool_writes_its_report(tiny_run, tmp_path, monkeypatch, capsys):
    from tests.conftest import load_tool
    from training import heldout_gap

    tool = load_tool("heldout_gap")
    root, run, _, student = tiny_run
    real = heldout_gap.measure
    monkeypatch.setattr(heldout_gap, "measure", lambda *a, **k: real(*a, **{**k, "require_all": False}))
    code = tool.main(["--ensemble", str(run), "--model", f"S={student}", "--eval", f"a={root}:train_list.txt",
                      "--cache", str(tmp_path / "c"), "--target-fpr", "0.1", "--resamples", "100",
                      "--json", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")])
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["target_fpr"] == 0.1 and report["tolerance_points"] == 0.3 and "S" in report["sets"]["a"]["gaps"]
    assert report["tta"] is True  # the default: the quantity both models decide on
    assert (tmp_path / "r.md").read_text().strip() in capsys.readouterr().out
    code = tool.main(["--ensemble", str(run), "--model", f"S={student}", "--eval", f"a={root}:train_list.txt",
                      "--cache", str(tmp_path / "c"), "--target-fpr", "0.1", "--resamples", "100", "--no-tta",
                      "--json", str(tmp_path / "r2.json")])
    assert code == 0 and json.loads((tmp_path / "r2.json").read_text())["tta"] is False
    with pytest.raises(SystemExit):
        tool.main(["--ensemble", str(run), "--model", f"S={student}", "--eval", f"a={root}:train_list.txt",
                   "--cache", str(tmp_path / "c"), "--tta", "--no-tta"])


def test_the_best_member_is_chosen_on_the_calibration_list_and_reported_like_a_student(tiny_run, tmp_path):
    import torch

    from training import heldout_gap
    from training.data.casia import CasiaDataset, read_list
    from training.ensemble.plan import member_dir
    from training.train import load_trained_model

    root, run, members, student = tiny_run
    cache = tmp_path / "cache"
    report = heldout_gap.measure(run, {"S": student}, {"a": [(root, "train_list.txt")]}, cache=cache,
                                 target_fpr=0.1, resamples=200, require_all=False, best_member_on=(root, "val_list.txt"),
                                 tta=False, log=lambda s: None)
    assert report["tta"] is False and "centre crop" in report["notes"]
    best = report["best_member"]
    assert best["name"] in [m.name for m in members] and best["chosen_on"][1] == "val_list.txt"

    def member_probs(list_name: str, member) -> tuple[np.ndarray, np.ndarray]:
        rows = read_list(root / list_name)
        dataset = CasiaDataset(root, rows)
        inputs = [torch.stack([dataset[i][m] for i in range(len(dataset))]) for m in ("rgb", "ir", "depth")]
        with torch.no_grad():
            net = load_trained_model(member_dir(run, member) / "model.pt").eval()
            return torch.softmax(net(*inputs), 1)[:, 1].numpy(), np.array([r.label for r in rows])

    # The choice follows the calibration list's TPR (then EER), as training.compare chooses.
    from calibration.metrics import eer

    ranked = []
    for member in members:
        probs, labels = member_probs("val_list.txt", member)
        ranked.append((tpr_at_fpr(probs, labels, 0.1)["empirical"], -eer(probs, labels), member.name))
    assert best["name"] == max(ranked)[2]
    chosen = next(m for m in members if m.name == best["name"])
    probs, labels = member_probs("train_list.txt", chosen)
    gap = report["sets"]["a"]["gaps"]["best_member"]
    assert gap["tpr_model"] == pytest.approx(tpr_at_fpr(probs, labels, 0.1)["empirical"])
    assert "best_member" not in report["goal_met"]  # the goal is the students'
    assert best["name"] in heldout_gap.render_markdown(report)


def test_a_cached_ensemble_entry_without_member_scores_is_scored_again_when_they_are_needed(tiny_run, tmp_path):
    from training import heldout_gap

    root, run, _, student = tiny_run
    cache = tmp_path / "cache"
    args = (run, {"S": student}, {"a": [(root, "train_list.txt")]})
    first = heldout_gap.measure(*args, cache=cache, target_fpr=0.1, resamples=200, require_all=False, log=lambda s: None)
    entry = next(cache.glob("ensemble_*__*.npz"))
    with np.load(entry) as stored:
        assert stored["members"].shape == (stored["scores"].size, 2)
        np.testing.assert_allclose(stored["members"].mean(axis=1), stored["scores"])
        old = {k: stored[k] for k in ("scores", "labels", "types")}
    np.savez(entry, **old)  # as written before member scores were kept
    again = heldout_gap.measure(*args, cache=cache, target_fpr=0.1, resamples=200, require_all=False,
                                best_member_on=(root, "train_list.txt"), log=lambda s: None)
    with np.load(entry) as stored:
        assert "members" in stored.files
    assert again["sets"]["a"]["tpr"]["ensemble"] == pytest.approx(first["sets"]["a"]["tpr"]["ensemble"])
