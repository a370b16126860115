"""tools/remake_ensemble_h.py: its recipe plans exactly the configs the shipped manifest records for H."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="planning builds training configs")

from tests.conftest import load_tool  # noqa: E402
from training.data.fixtures import write_casia_tree  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
#: Keys today's TrainConfig has that H's did not; their values are the old behaviour.
ADDED_SINCE_H = {("augment", "colour_swap_live"): 0.0, ("init", "adapt_options"): [],
                 ("distill", "unseen_composites"): "refuse", ("distill", "live_rows"): "teacher",
                 ("data", "train_sha256"): None, ("distill", "live_floor"): None}


def _without_paths(config: dict) -> dict:
    config = json.loads(json.dumps(config))
    config["data"].pop("root"), config["data"].pop("folds_dir"), config["init"].pop("weights")
    for (section, key), value in ADDED_SINCE_H.items():
        assert config[section].pop(key, value) == value
    return config


def test_the_recipe_plans_the_recorded_configs_of_all_24_members(tmp_path):
    tool = load_tool("remake_ensemble_h")
    train_list, val_list = write_casia_tree(tmp_path / "members", live_subjects=6, attack_subjects=6)
    lists = tmp_path / "lists"
    lists.mkdir()
    for target, source in (("members_folds.txt", train_list), ("members_extra.txt", val_list)):
        lines = [f"members/{line}" if line.strip() else line for line in Path(source).read_text().splitlines()]
        (lists / target).write_text("\n".join(lines) + "\n")
    plans = tool.plan_stages(tmp_path)
    recorded = {m["name"]: m["config"] for m in json.loads(
        (REPO / "sdk" / "bundles" / "mlfa_student_sim" / "manifest.json").read_text())["provenance"]["ensemble"]["members"]}
    planned = {m.name: m.config.to_dict() for m in plans["ensembleH"]}
    assert sorted(planned) == sorted(recorded)
    for name, config in planned.items():
        assert _without_paths(config) == _without_paths(recorded[name]), name
        # each member continues its own namesake: F -> G -> H
        assert config["init"]["weights"] == str((tmp_path / "ensembleG" / "members" / name / "model.pt").resolve())
        assert recorded[name]["init"]["weights"].endswith(f"/ensembleG/members/{name}/model.pt")
    order = tool.member_order(list(planned))
    assert sorted(order) == sorted(planned) and order[0].startswith("ir50") and order[1].startswith("resnet34")
    # the warm start's own check is back in place afterwards
    from training.ensemble.plan import make_plan
    from sdk.errors import InputValidationError

    with pytest.raises(InputValidationError, match="not done"):
        make_plan("ci_medium", tmp_path, tmp_path / "again", train_list=str(lists / "members_folds.txt"),
                  warm_start=str(tmp_path / "ensemble"))


def test_refuses_another_code_root_and_a_work_folder_without_the_members_lists(tmp_path, capsys):
    tool = load_tool("remake_ensemble_h")
    # `training` is imported from this checkout, not from the folder named as the code root
    assert tool.main(["--work", str(tmp_path), "--code-root", str(tmp_path / "wt")]) == 3
    assert "not from" in capsys.readouterr().err
    assert tool.main(["--work", str(tmp_path), "--code-root", str(REPO)]) == 3
    assert "render the members' dataset first" in capsys.readouterr().err


def test_the_member_with_the_most_work_left_starts_next():
    """Stages are scheduled per member: an IR-50 stage costs about two ResNet-34 stages, so the
    longest chain goes first and a finished member's next stage never waits for another member."""
    tool = load_tool("remake_ensemble_h")
    order = ["ir50-face_fold1_seed1", "resnet34-face_fold1_seed1", "ir50-face_fold1_seed2", "resnet34-face_fold1_seed2"]
    assert tool.work_left("ir50-face_fold1_seed1", 0) == 6 and tool.work_left("resnet34-face_fold1_seed1", 1) == 2
    fresh = {n: 0 for n in order}
    assert tool.next_member(fresh, set(), order) == "ir50-face_fold1_seed1"
    assert tool.next_member(fresh, {"ir50-face_fold1_seed1"}, order) == "ir50-face_fold1_seed2"
    # a ResNet-34 with all three stages left (3) goes before an IR-50 with one (2)
    late = {**fresh, "ir50-face_fold1_seed1": 2, "ir50-face_fold1_seed2": 3}
    assert tool.next_member(late, set(), order) == "resnet34-face_fold1_seed1"
    assert tool.next_member(late, {"resnet34-face_fold1_seed1", "resnet34-face_fold1_seed2"}, order) == "ir50-face_fold1_seed1"
    # a running member is never started twice, and nothing is left once every member is through H
    assert tool.next_member({n: 3 for n in order}, set(), order) is None
    assert tool.next_member({**{n: 3 for n in order}, order[1]: 2}, {order[1]}, order) is None


def test_stages_run_in_order_per_member_and_resume(tmp_path, monkeypatch):
    """The scheduler on a tiny recipe: two members through F, G and H as Ray tasks, each stage
    warm-started from the member's own previous one; a second call finds nothing to do."""
    pytest.importorskip("ray", reason="members are Ray tasks (the train extra)")
    import hashlib

    from training.ensemble.plan import load_members
    from training.ensemble.runner import run_member

    tool = load_tool("remake_ensemble_h")
    tiny = {"optim.epochs": 1, "optim.batch_size": 4, "model.options.width": 0.0625, "data.max_train_samples": 8,
            "data.max_val_samples": 4, "runtime.progress": False}
    monkeypatch.setattr(tool, "PRESET", "cpu_tiny")
    monkeypatch.setattr(tool, "F_OVERRIDES", tiny)
    monkeypatch.setattr(tool, "STAGES", (("ensemble", None, {}), ("ensembleG", "ensemble", {"optim.lr": 0.002}),
                                         ("ensembleH", "ensembleG", {"optim.lr": 0.001})))
    # the tree at the work folder's root, so the preset's validation list is found there too
    train_list, val_list = write_casia_tree(tmp_path, live_subjects=4, attack_subjects=2, frames=1, val_samples=4)
    lists = tmp_path / "lists"
    lists.mkdir()
    for target, source in (("members_folds.txt", train_list), ("members_extra.txt", val_list)):
        (lists / target).write_text(Path(source).read_text())
    plans = tool.plan_stages(tmp_path)
    order = [m.name for m in plans["ensemble"]][:2]
    # one member has finished F already: the scheduler starts at its G
    assert run_member(str(tmp_path / "ensemble"), order[1], 1)["state"] == "done"
    before = (tmp_path / "ensemble" / "members" / order[1] / "model.pt").read_bytes()
    lines: list[str] = []
    assert tool.train_stages(tmp_path, order, 2, {n: "0" * 64 for n in order}, lines.append) == {}
    assert [tool.stage_reached(tmp_path, n) for n in order] == [3, 3]
    assert (tmp_path / "ensemble" / "members" / order[1] / "model.pt").read_bytes() == before  # not trained again
    started = [line.split(":")[0] for line in lines if line.endswith(" s")]
    assert sorted(started) == sorted([f"ensemble {order[0]}"] + [f"{r} {n}" for r in ("ensembleG", "ensembleH") for n in order])
    for name in order:  # stages in order per member
        assert [s for s in started if s.endswith(name)] == [f"{r} {name}" for r, _, _ in tool.STAGES
                                                              if f"{r} {name}" in started]
        h = next(m for m in load_members(tmp_path / "ensembleH") if m.name == name)
        assert h.config.init.weights == str((tmp_path / "ensembleG" / "members" / name / "model.pt").resolve())
        digest = hashlib.sha256((tmp_path / "ensembleH" / "members" / name / "model.pt").read_bytes()).hexdigest()
        assert any(line.startswith(f"{name}: DIFFERS ({digest[:12]}") for line in lines)
    assert tool.train_stages(tmp_path, order, 2, {}, lines.append) == {}  # nothing left: no Ray started
