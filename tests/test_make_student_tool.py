"""tools/make_student.py refuses extra student data that could hold what the student is evaluated on."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdk.errors import InputValidationError
from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parents[1]
HOLDOUTS = {"yaw_gt20": {}, "mask_3d": {}}


def _load_script():
    return load_tool("make_student")


def _dataset(folder: Path, **manifest) -> Path:
    folder.mkdir(parents=True)
    base = {"seed": 1, "holdout": None, "excluded_holdouts": ["yaw_gt20", "mask_3d"],
            "splits": {"Training": {"triplets": 4, "live": 2, "attack": 2, "list": "train_list.txt"}}}
    (folder / "manifest.json").write_text(json.dumps({**base, **manifest}))
    return folder


def test_extra_data_that_excludes_every_holdout_is_taken(tmp_path):
    tool = _load_script()
    record = tool.check_extra_data(_dataset(tmp_path / "ok"), {"holdouts": HOLDOUTS})
    assert record["seed"] == 1 and record["splits"]["Training"] == {"triplets": 4, "live": 2, "attack": 2}


@pytest.mark.parametrize("manifest, message", [
    ({"excluded_holdouts": ["yaw_gt20"]}, "does not exclude the held-out families \\['mask_3d'\\]"),
    ({"holdout": "mask_3d", "excluded_holdouts": []}, "does not exclude"),
    ({"seed": 10}, "eval's subjects"),
])
def test_extra_data_that_could_leak_evaluation_subjects_is_refused(tmp_path, manifest, message):
    tool = _load_script()
    with pytest.raises(InputValidationError, match=message):
        tool.check_extra_data(_dataset(tmp_path / "bad", **manifest), {"holdouts": HOLDOUTS})
    with pytest.raises(InputValidationError, match="no manifest.json"):
        tool.check_extra_data(tmp_path, {"holdouts": HOLDOUTS})


def test_default_version_is_the_shipped_ones_next_minor(tmp_path):
    tool = _load_script()
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"version": "2.2.0"}))
    assert tool.next_minor_version(manifest) == "2.3.0"
    manifest.write_text(json.dumps({"version": "2.10.4"}))
    assert tool.next_minor_version(manifest) == "2.11.0"
    manifest.write_text(json.dumps({"version": "latest"}))
    with pytest.raises(InputValidationError, match="pass --version"):
        tool.next_minor_version(manifest)
    shipped = ROOT / "sdk" / "bundles" / "mlfa_student_sim" / "manifest.json"
    assert tool.next_minor_version(shipped) != json.loads(shipped.read_text())["version"]


def test_default_version_is_above_every_version_the_changelog_records(tmp_path):
    tool = _load_script()
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"version": "2.2.0"}))
    changelog = tmp_path / "changelog.md"
    changelog.write_text("| version | date |\n| --- | --- |\n| 2.2.0 | x |\n| 2.10.0 | x |\n| 2.4.0 | x |\n")
    assert tool.next_minor_version(manifest, changelog) == "2.11.0"
    real = ROOT / "docs" / "model_changelog.md"
    shipped = ROOT / "sdk" / "bundles" / "mlfa_student_sim" / "manifest.json"
    import re

    recorded = set(re.findall(r"^\|\s*(\d+\.\d+\.\d+)\s*\|", real.read_text(encoding="utf-8"), re.M))
    assert tool.next_minor_version(shipped, real) not in recorded


def test_a_students_stage_times_are_its_own_and_shared_stages_are_shared(tmp_path):
    pytest.importorskip("torch", reason="the tool's atomic writer lives in training.train")
    tool = _load_script()
    tool.record_stage(tmp_path, "student_a", "render_s", 100.0)
    tool.record_stage(tmp_path, "student_a", "distill_s", 50.0)
    times_a = tool.record_stage(tmp_path, "student_a", "distill_s", 25.0)  # a resumed run adds up
    assert times_a == {"render_s": 100.0, "distill_s": 75.0}
    times_b = tool.record_stage(tmp_path, "student_b", "distill_s", 10.0)
    assert times_b == {"render_s": 100.0, "distill_s": 10.0}  # not 85: another student's distillation
    assert tool.record_stage(tmp_path, "student_b", "render_s", 5.0)["render_s"] == 105.0


@pytest.mark.parametrize("warm", [None, "/runs/ship2/run/model.pt"])
def test_run_document_says_whether_the_student_was_warm_started(warm):
    pytest.importorskip("torch", reason="the comparison tables come from training.compare")
    module = _load_script()
    from training.config import load_config

    report = json.loads((ROOT / "docs" / "eval_runs" / "student_2.15.0_F_compare.json").read_text())
    config = load_config("student_kd").replace(**{"init.weights": warm}).to_dict()
    provenance = {
        "command": "python tools/make_student.py", "members": [{"model": "mlfa_ir50", "options": {"width": 0.125}}] * 24,
        "data": {"datasets": {"members": {"seed": 11, "splits": {"Training": {"triplets": 4, "live": 2, "attack": 2}}}},
                 "holdout_families_excluded_from_training": ["mask_3d"]},
        "ensemble": {"preset": "ci_medium"}, "distillation": {"preset": "student_kd", "config": config},
    }
    ship = {"operating_points": {"balanced": {"threshold": 0.16, "apcer": 0.0, "bpcer": 0.02, "n_attack": 9, "n_live": 9}},
            "metrics": {}}
    doc = module.render_doc(report, ship, {"distill_s": 1.0}, provenance, shipped=False, bundle="b")
    assert ("warm started from `/runs/ship2/run/model.pt`" in doc) == (warm is not None)
    assert "| student | 589,914 | 219.1 |" in doc  # the cost table of the report


def test_run_document_goes_where_asked_and_never_over_the_shipped_page_by_default(tmp_path):
    module = _load_script()
    assert module.run_document_path(None, shipped=True).name == "shipped_model.md"
    assert module.run_document_path(None, shipped=False).name == "student_run.md"
    asked = tmp_path / "student_run_M.md"
    assert module.run_document_path(str(asked), shipped=False) == asked
    assert module.run_document_path(str(asked), shipped=True) == asked
