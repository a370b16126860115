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
ADDED_SINCE_H = {("augment", "colour_swap_live"): 0.0, ("init", "adapt_options"): []}


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
