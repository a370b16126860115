"""tools/package_fine_tune.py: a fine-tuned student keeps its base's history (members, distillation)."""
from __future__ import annotations

import json

import pytest

from sdk.errors import InputValidationError
from tests.conftest import load_tool


@pytest.fixture(scope="module")
def tool():
    return load_tool("package_fine_tune")


def _run(tmp_path, init):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"name": "candidate", "augment": {"colour_swap_live": 0.25}}))
    (run / "init_report.json").write_text(json.dumps(init))
    (run / "model.pt").write_bytes(b"weights")
    return run


BASE = {"name": "mlfa_student_sim", "version": "2.24.0",
        "provenance": {"members": [{"name": f"m{i}"} for i in range(24)], "distillation": {"run": "studentH"},
                       "calibration": {"threshold": 0.01}, "model_file": "x", "export": {}, "made_by": "make_student"}}


def test_keeps_members_and_distillation_and_drops_what_described_the_base_file(tool, tmp_path):
    run = _run(tmp_path, {"weights": "studentH/model.pt", "sha256": "abc"})
    provenance = tool.fine_tune_provenance(BASE, run, "colour swap", "cmd")
    assert len(provenance["members"]) == 24 and provenance["distillation"] == {"run": "studentH"}
    assert not {"calibration", "model_file", "export"} & set(provenance)
    tune = provenance["fine_tune"]
    assert tune["base"] == {"name": "mlfa_student_sim", "version": "2.24.0"}
    assert tune["config"]["augment"]["colour_swap_live"] == 0.25 and tune["init"]["weights"] == "studentH/model.pt"
    assert provenance["made_by"] == "tools/package_fine_tune.py" and tune["note"] == "colour swap"


def test_a_fine_tune_of_a_fine_tune_keeps_the_earlier_one(tool, tmp_path):
    run = _run(tmp_path, {"weights": "runQ/model.pt"})
    first = dict(BASE, provenance=dict(BASE["provenance"], fine_tune={"run": "runQ"}))
    provenance = tool.fine_tune_provenance(first, run, "two more epochs", "cmd")
    assert provenance["earlier_fine_tunes"] == [{"run": "runQ"}]
    assert provenance["fine_tune"]["run"] == str(run)


def test_a_run_taught_by_a_teacher_model_records_its_teacher(tool, tmp_path):
    run = _run(tmp_path, {"weights": "runQ2/model.pt"})
    teacher = {"teacher_model": "runN/model.pt", "n_members": 1, "members": [{"name": "runN", "model_sha256": "f" * 64}]}
    (run / "teacher.json").write_text(json.dumps(teacher))
    provenance = tool.fine_tune_provenance(BASE, run, "taught by N", "cmd")
    assert provenance["fine_tune"]["teacher"] == teacher and len(provenance["members"]) == 24


def test_refuses_a_run_that_is_not_a_finished_fine_tune(tool, tmp_path):
    run = _run(tmp_path, {"weights": None, "checkpoint": None})
    with pytest.raises(InputValidationError, match="did not warm-start"):
        tool.fine_tune_provenance(BASE, run, "", "cmd")
    (run / "model.pt").unlink()
    with pytest.raises(InputValidationError, match="missing model.pt"):
        tool.fine_tune_provenance(BASE, run, "", "cmd")
    with pytest.raises(InputValidationError, match="no provenance"):
        tool.fine_tune_provenance({"name": "x"}, run, "", "cmd")


def test_the_shipped_bundle_records_its_fine_tune_and_all_24_members():
    from sdk.engine import ModelBundle

    provenance = ModelBundle.load(None).provenance
    assert len(provenance["members"]) == 24 and "distillation" in provenance
    assert provenance["fine_tune"]["config"]["augment"]["colour_swap_live"] == 0.25
    assert provenance["calibration"]["decision_rule"]["quality"]["min_relief_mm"] == 2.5
