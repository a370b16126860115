"""calibration.reproduce and tools/reproduce_evidence.py: reruns against committed reports."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from calibration.reproduce import (
    compare_acceptance,
    compare_calibration,
    compare_independent,
    load_report,
)
from sdk.errors import InputValidationError

REPO = Path(__file__).resolve().parent.parent
RUNS = REPO / "docs" / "eval_runs"


def _acceptance() -> dict:
    return {"recordings": [
        {"id": "live/live_1", "sha256": "a" * 64, "content_sha256": "e" * 64, "expected": "LIVE", "decision": "LIVE",
         "score": 0.5, "reasons": []},
        {"id": "print_flat/print_flat_2", "sha256": "b" * 64, "expected": "SPOOF", "decision": "SPOOF",
         "score": 0.001, "reasons": ["SPOOF_SCORE"]},
        {"id": "print_flat/print_flat_3", "sha256": "c" * 64, "expected": "SPOOF", "decision": "UNCERTAIN",
         "score": None, "reasons": ["NO_FACE"]},
    ]}


def test_identical_reports_are_reproduced() -> None:
    result = compare_acceptance(_acceptance(), _acceptance(), reference_name="ref.json")
    assert result.reproduced and result.compared == 3 and result.max_score_difference == 0.0
    assert result.to_dict()["reproduced"] is True


@pytest.mark.parametrize("field, value", [("content_sha256", "d" * 64), ("decision", "SPOOF"), ("reasons", ["NO_RELIEF"])])
def test_an_exact_field_that_changed_is_a_difference(field: str, value: object) -> None:
    rerun = _acceptance()
    rerun["recordings"][0][field] = value
    result = compare_acceptance(_acceptance(), rerun)
    assert not result.reproduced
    assert [(d.item, d.field, d.reproduced) for d in result.differences] == [("live/live_1", field, value)]


def test_file_bytes_only_on_request_and_digests_only_where_both_have_one() -> None:
    rerun = _acceptance()
    rerun["recordings"][0]["sha256"] = "d" * 64  # a rerender: another file
    assert compare_acceptance(_acceptance(), rerun).reproduced
    assert [d.field for d in compare_acceptance(_acceptance(), rerun, compare_file_bytes=True).differences] == ["sha256"]
    older = _acceptance()
    del older["recordings"][0]["content_sha256"]  # a report from before the digest existed
    assert compare_acceptance(older, rerun).reproduced


def test_scores_within_the_tolerance_only() -> None:
    rerun = _acceptance()
    rerun["recordings"][0]["score"] = 0.5 + 5e-7
    near = compare_acceptance(_acceptance(), rerun)
    assert near.reproduced and near.max_score_difference == pytest.approx(5e-7)
    rerun["recordings"][0]["score"] = 0.5 + 2e-6
    assert [d.field for d in compare_acceptance(_acceptance(), rerun).differences] == ["score"]
    rerun["recordings"][0]["score"] = math.nan
    assert not compare_acceptance(_acceptance(), rerun).reproduced
    both_nan = _acceptance()
    both_nan["recordings"][0]["score"] = math.nan
    assert compare_acceptance(both_nan, copy.deepcopy(both_nan)).reproduced
    rerun["recordings"][0]["score"] = None  # scored before, not now
    assert [d.field for d in compare_acceptance(_acceptance(), rerun).differences] == ["score"]


def test_missing_and_extra_items_are_differences() -> None:
    rerun = _acceptance()
    dropped = rerun["recordings"].pop(1)
    rerun["recordings"].append(dict(dropped, id="print_flat/print_flat_9"))
    result = compare_acceptance(_acceptance(), rerun)
    assert {(d.item, d.reference, d.reproduced) for d in result.differences} == {
        ("print_flat/print_flat_2", True, False), ("print_flat/print_flat_9", False, True)}


def test_a_report_without_its_list_or_with_duplicate_keys_is_refused() -> None:
    with pytest.raises(InputValidationError, match="recordings"):
        compare_acceptance({}, _acceptance())
    twice = _acceptance()
    twice["recordings"].append(dict(twice["recordings"][0]))
    with pytest.raises(InputValidationError, match="share the key"):
        compare_acceptance(_acceptance(), twice)
    presentation = {"seed": 1, "kind": "live", "operating_point": "balanced", "person": "x",
                    "decision": "LIVE", "reasons": [], "score": 0.9}
    with pytest.raises(InputValidationError, match="share the key"):
        compare_independent({"presentations": [presentation, presentation]}, {"presentations": [presentation]})


def test_calibration_thresholds_counts_and_metrics() -> None:
    reference = load_report(RUNS / "calibrate_2.38.0.json")
    assert compare_calibration(reference, copy.deepcopy(reference)).reproduced
    rerun = copy.deepcopy(reference)
    threshold = reference["operating_points"]["balanced"]["threshold"]
    rerun["operating_points"]["balanced"]["threshold"] = threshold * (1 + 1e-12)
    assert compare_calibration(reference, rerun).reproduced  # the last bits of a float
    rerun["operating_points"]["balanced"]["threshold"] = threshold * (1 + 1e-6)
    rerun["operating_points"]["apcer_1e-2"]["n_live_rejected"] += 1
    rerun["gate_coverage"]["scored_frames"] -= 1
    del rerun["metrics"]["auc"]
    found = {(d.item, d.field) for d in compare_calibration(reference, rerun).differences}
    assert found == {("point balanced", "threshold"), ("point apcer_1e-2", "n_live_rejected"),
                     ("run", "scored_frames"), ("metrics", "auc")}
    with pytest.raises(InputValidationError, match="operating points"):
        compare_calibration({}, reference)


def test_committed_reports_tell_two_releases_apart() -> None:
    """2.38.0 made prints end SPOOF (FLAT_FACE); the same bags gave 2.37.0 UNCERTAIN."""
    old, new = load_report(RUNS / "acceptance_2.37.0.json"), load_report(RUNS / "acceptance_2.38.0.json")
    assert compare_acceptance(new, copy.deepcopy(new)).reproduced
    result = compare_acceptance(old, new)
    assert compare_acceptance(old, new, compare_file_bytes=True).differences == result.differences  # the same files
    changed = {d.item.split("/")[0] for d in result.differences if d.field == "decision"}
    assert changed and changed <= {"print_flat", "print_curved"}
    independent = load_report(RUNS / "independent_2.38.0_seed12_people30.json")
    assert compare_independent(independent, copy.deepcopy(independent)).compared == 300
    assert not compare_independent(load_report(RUNS / "independent_2.37.0_seed12_people30.json"), independent).reproduced


def test_load_report_errors(tmp_path: Path) -> None:
    with pytest.raises(InputValidationError, match="does not exist"):
        load_report(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputValidationError, match="not JSON"):
        load_report(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text(json.dumps([1]))
    with pytest.raises(InputValidationError, match="not a JSON object"):
        load_report(tmp_path / "list.json")


def test_tool_rerenders_a_suite_and_finds_it_reproduced(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Two renders of the same suite seeds, in two folders, give the same bags and decisions."""
    pytest.importorskip("pyrealsense2", reason="suites are librealsense .bag recordings: needs the camera extra")
    from tools import reproduce_evidence as tool

    suite_flags = ["--suite-per-scenario", "1", "--suite-frames", "8", "--suite-scenarios", "live", "print_flat"]
    args = tool.build_parser().parse_args(["--version", "9.9.9", *suite_flags])
    args.model = args.model.resolve()
    first = tool.rerun_acceptance(args, tmp_path / "first")
    references = tmp_path / "references"
    references.mkdir()
    reference = json.loads(first.read_text())
    assert {r["id"].split("/")[0] for r in reference["recordings"]} == {"live", "print_flat"}
    (references / "acceptance_9.9.9.json").write_text(json.dumps(reference))
    common = ["--parts", "acceptance", "--version", "9.9.9", "--reference-dir", str(references), *suite_flags]
    out = tmp_path / "comparison.json"
    assert tool.main([*common, "--work", str(tmp_path / "second"), "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["results"][0]["reproduced"] is True and written["results"][0]["compared"] == 2
    rerun = json.loads((tmp_path / "second" / "acceptance_9.9.9.json").read_text())
    digests = {r["id"]: r["content_sha256"] for r in rerun["recordings"]}
    assert all(digests.values()) and digests == {r["id"]: r["content_sha256"] for r in reference["recordings"]}

    reference["recordings"][0]["decision"] = "SPOOF" if reference["recordings"][0]["decision"] != "SPOOF" else "LIVE"
    (references / "acceptance_9.9.9.json").write_text(json.dumps(reference))
    # The rerun report exists in --work, so this compares again without rendering.
    assert tool.main([*common, "--work", str(tmp_path / "second")]) == 1
    assert "1 difference(s)" in capsys.readouterr().out
    assert tool.main([*common, "--work", str(tmp_path / "third"), "--version", "0.0.1"]) == 3  # no such reference
    assert not (tmp_path / "third").exists()  # refused before anything was rendered


def test_tool_rerenders_independent_sessions_and_finds_them_reproduced(tmp_path: Path) -> None:
    """The independent renderer, rendered twice from one seed into two caches, ends every
    presentation the same way with the same score."""
    pytest.importorskip("pyrealsense2", reason="the independent renderer records librealsense .bag files")
    from tools import reproduce_evidence as tool

    args = tool.build_parser().parse_args(["--version", "9.9.9", "--people", "1", "--independent-frames", "4"])
    args.model = args.model.resolve()
    first = json.loads(tool.rerun_independent(args, tmp_path / "first", seed=5).read_text())
    assert len(first["presentations"]) == 10  # one person: live and four attacks, at two operating points
    references = tmp_path / "references"
    references.mkdir()
    (references / "independent_9.9.9_seed5_people1.json").write_text(json.dumps(first))
    out = tmp_path / "comparison.json"
    common = ["--parts", "independent", "--independent-seed", "5", "--people", "1", "--version", "9.9.9",
              "--reference-dir", str(references)]
    assert tool.main([*common, "--work", str(tmp_path / "third")]) == 3  # the reference has 4 frames, not 10
    assert tool.main([*common, "--independent-frames", "4", "--work", str(tmp_path / "second"), "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["reproduced"] and result["compared"] == 10 and result["max_score_difference"] == 0.0


def test_remade_ensemble_members_against_the_manifests_hashes(tmp_path: Path) -> None:
    import hashlib

    from calibration.reproduce import compare_ensemble_members
    from tools import reproduce_evidence as tool

    run = tmp_path / "ensembleH"
    recorded = []
    for name, content in (("a", b"weights a"), ("b", b"weights b"), ("c", b"weights c")):
        recorded.append({"name": name, "model_sha256": hashlib.sha256(content).hexdigest()})
        if name != "c":  # c not remade yet
            (run / "members" / name).mkdir(parents=True)
            (run / "members" / name / "model.pt").write_bytes(content if name == "a" else b"other weights")
    manifest = {"provenance": {"ensemble": {"members": recorded}}}
    result = compare_ensemble_members(manifest, run)
    assert result.compared == 3
    assert {(d.item, d.field) for d in result.differences} == {("b", "model_sha256"), ("c", "present")}
    with pytest.raises(InputValidationError, match="no ensemble members"):
        compare_ensemble_members({"provenance": {}}, run)
    # The shipped manifest lists the 24 members; the part needs the run to check.
    assert tool.main(["--parts", "ensemble", "--work", str(tmp_path / "w")]) == 3
    assert tool.main(["--parts", "ensemble", "--ensemble-run", str(run), "--work", str(tmp_path / "w")]) == 1


def test_counterfactual_counts_compared_exactly() -> None:
    from calibration.reproduce import compare_counterfactual

    reference = load_report(RUNS / "counterfactual_2.38.0.json")
    assert compare_counterfactual(reference, copy.deepcopy(reference)).reproduced
    rerun = copy.deepcopy(reference)
    rerun["transforms"][0]["flips"] += 1
    rerun["transforms"].pop()
    rerun["relief_check"]["still_accepted"] = 1
    found = {(d.item, d.field) for d in compare_counterfactual(reference, rerun).differences}
    first, last = reference["transforms"][0]["transform"], reference["transforms"][-1]["transform"]
    assert found == {(f"transform {first}", "flips"), (f"transform {last}", "present"), ("run", "relief_check")}
    with pytest.raises(InputValidationError, match="no transforms"):
        compare_counterfactual({}, rerun)


def test_heldout_gap_reports_are_compared_by_the_file_that_was_scored() -> None:
    from calibration.reproduce import compare_heldout_gap

    tta = load_report(RUNS / "heldout_gap_2.38.0_seed20.json")
    centre = load_report(RUNS / "heldout_gap_seed20_remade.json")
    assert compare_heldout_gap(tta, copy.deepcopy(tta)).reproduced
    # The same bundle scored on the centre crop: the setting and the figures that moved differ.
    found = {(d.item, d.field) for d in compare_heldout_gap(centre, tta).differences}
    assert {("run", "tta"), ("set nuisance_pooled", "verdict"), ("set sunlight", "tpr ensemble")} <= found
    assert ("set far_gt08", "gap") not in found  # the one family whose figures both quantities share
    # Labels are free text: the student is found by its file's SHA-256.
    (label, record), = tta["students"].items()
    relabelled = copy.deepcopy(tta)
    relabelled["students"] = {"shipped": record}
    for entry in relabelled["sets"].values():
        entry["gaps"]["shipped"] = entry["gaps"].pop(label)
    assert compare_heldout_gap(tta, relabelled).reproduced
    other_ensemble = copy.deepcopy(tta)
    other_ensemble["ensemble_members"][0]["model_sha256"] = "0" * 64
    assert [(d.item, d.field) for d in compare_heldout_gap(tta, other_ensemble).differences] == [("ensemble", "members")]
    other_student = copy.deepcopy(tta)
    other_student["students"][label]["model_sha256"] = "0" * 64
    with pytest.raises(InputValidationError, match="scored no model"):
        compare_heldout_gap(tta, other_student)
    two = copy.deepcopy(tta)
    two["students"]["again"] = record
    with pytest.raises(InputValidationError, match="exactly one student"):
        compare_heldout_gap(tta, two)


from tests.test_heldout_gap import tiny_run  # noqa: E402,F401  (a small finished-enough ensemble run)


def test_tool_rerenders_heldout_sets_and_finds_the_gap_reproduced(tiny_run, tmp_path: Path, monkeypatch,  # noqa: F811
                                                                  capsys: pytest.CaptureFixture) -> None:
    """Held-out sets rendered twice from one seed, scored by the bundle and a (two-member) ensemble,
    give the same gap report; a reference that differs is found."""
    from tests.conftest import load_tool
    from tools import reproduce_evidence as tool
    from training import heldout_gap

    _, run, _, _ = tiny_run
    gap_tool = load_tool("heldout_gap")
    real_measure, real_run = heldout_gap.measure, tool._run
    # The fixture's ensemble has 2 of its 24 members; the tool itself demands all of them.
    monkeypatch.setattr(heldout_gap, "measure", lambda *a, **k: real_measure(*a, **{**k, "require_all": False}))

    def run_step(command, log, **kwargs):
        if command[1].endswith("heldout_gap.py"):  # in process, so the patch above holds
            assert gap_tool.main(command[2:]) == 0
            return
        real_run(command, log, **kwargs)

    monkeypatch.setattr(tool, "_run", run_step)
    small = ["--heldout-live", "3", "--heldout-per-attack", "1", "--heldout-masks", "2", "--workers", "1"]
    args = tool.build_parser().parse_args(["--version", "9.9.9", "--ensemble-run", str(run), *small])
    args.model = args.model.resolve()
    template = {"sets": {"far_gt08": {}, "mask_3d": {}, "both": {}}, "pools": {"both": ["far_gt08", "mask_3d"]},
                "tta": True, "target_fpr": 0.1, "resamples": 100}
    reference = json.loads(tool.rerun_heldout(args, tmp_path / "first", template).read_text())
    assert set(reference["sets"]) == {"far_gt08", "mask_3d", "both"} and reference["tta"] is True
    assert reference["sets"]["mask_3d"]["attack_types"] == {"mask_3d": 2}
    references = tmp_path / "references"
    references.mkdir()
    (references / "heldout_gap_9.9.9_seed20.json").write_text(json.dumps(reference))
    common = ["--parts", "heldout", "--version", "9.9.9", "--reference-dir", str(references), *small]
    assert tool.main([*common, "--work", str(tmp_path / "w")]) == 3  # needs --ensemble-run
    # argparse keeps the last of a repeated option: 4 live crops a family, where the reference has 3
    assert tool.main([*common, "--heldout-live", "4", "--ensemble-run", str(run), "--work", str(tmp_path / "w")]) == 3
    assert not (tmp_path / "w").exists()  # refused before anything was rendered
    out = tmp_path / "comparison.json"
    assert tool.main([*common, "--ensemble-run", str(run), "--work", str(tmp_path / "second"), "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["reproduced"] and result["part"] == "heldout" and result["compared"] > 20

    reference["sets"]["both"]["n_live"] += 1
    (references / "heldout_gap_9.9.9_seed20.json").write_text(json.dumps(reference))
    # The rerun report exists in --work, so this compares again without rendering.
    assert tool.main([*common, "--ensemble-run", str(run), "--work", str(tmp_path / "second")]) == 1
    assert "set both  n_live" in capsys.readouterr().out
