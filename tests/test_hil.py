"""Hardware-in-the-loop suites: suite.json, make-suite, run (exit rules, JSON, JUnit, baseline), live, pytest entry."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from sdk.errors import HilSuiteError, InputValidationError, RecordingIntegrityError
from sdk.hil.report import EXIT_ERROR, EXIT_FAILED, EXIT_OK, HilReport
from sdk.hil.runner import ERROR, FAIL, PASS, RecordingResult
from sdk.hil.suite import SUITE_FILE, load_suite, suite_from_dict
from tests.conftest import REPO

pytest.importorskip("pyrealsense2", reason="suites are librealsense .bag recordings: needs the camera extra")

FRAMES = 12


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory) -> Path:
    """Two simulator recordings (a live face and a flat print) made by `hil make-suite`'s function."""
    from sdk.hil.make import make_suite

    root = tmp_path_factory.mktemp("suite")
    made: list[str] = []
    make_suite(root, per_scenario=1, seed=3, frames=FRAMES, scenarios=["live", "print_flat"], progress=False,
               on_recording=lambda r: made.append(r.id))
    assert len(made) == 2
    return root


def _copy(suite: Path, tmp_path: Path) -> Path:
    target = tmp_path / "suite"
    shutil.copytree(suite, target)
    return target


# --- suite.json ------------------------------------------------------------------------------
def test_make_suite_lists_every_recording_with_label_species_and_hashes(tiny_suite):
    suite = load_suite(tiny_suite)
    by_scenario = {r.scenario: r for r in suite.recordings}
    assert set(by_scenario) == {"live", "print_flat"}
    live, attack = by_scenario["live"], by_scenario["print_flat"]
    assert (live.label, live.expected, live.species) == (1, "LIVE", "bona_fide")
    assert (attack.label, attack.expected, attack.species) == (0, "NOT_LIVE", "print_flat")
    for recording in suite.recordings:
        assert (tiny_suite / recording.bag).is_file() and (tiny_suite / recording.sidecar).is_file()
        suite.verify(recording)  # hashes match what was written
        sidecar = json.loads((tiny_suite / recording.sidecar).read_text())
        assert sidecar["label"] == recording.label and sidecar["scenario"] == recording.scenario
        assert len(sidecar["frames"]) == FRAMES == recording.frames
        assert recording.seed >= 800_000_000  # far from the training seed ranges


def test_make_suite_rerun_makes_nothing_new_and_remakes_a_changed_recording(tiny_suite, tmp_path):
    from sdk.hil.make import make_suite

    root = _copy(tiny_suite, tmp_path)
    made: list[str] = []
    kwargs = dict(per_scenario=1, seed=3, frames=FRAMES, scenarios=["live", "print_flat"], progress=False,
                  on_recording=lambda r: made.append(r.id))
    make_suite(root, **kwargs)
    assert made == []
    victim = load_suite(root).recordings[1]
    with open(root / victim.bag, "ab") as handle:
        handle.write(b"tampered")
    make_suite(root, **kwargs)
    assert made == [victim.id]
    load_suite(root).verify(load_suite(root).recordings[1])


def test_a_rerender_of_the_same_seeds_shows_the_same_frames(tiny_suite, tmp_path):
    """The suite records a digest of the frames: equal for two renders of one seed, whose files differ
    (librealsense's recorder stamps its wall clock into the bag)."""
    from sdk.capture.replay import content_sha256
    from sdk.hil.make import make_suite

    again = tmp_path / "again"
    make_suite(again, per_scenario=1, seed=3, frames=FRAMES, scenarios=["live"], progress=False)
    first = {r.id: r for r in load_suite(tiny_suite).recordings}
    (second,) = load_suite(again).recordings
    assert second.content_sha256 == first[second.id].content_sha256 == content_sha256(again / second.bag)
    attack = next(r for r in first.values() if r.scenario == "print_flat")
    assert attack.content_sha256 != second.content_sha256
    data = json.loads((tiny_suite / SUITE_FILE).read_text())
    for entry in data["recordings"]:
        del entry["content_sha256"]  # a suite written before the digest existed still loads
    assert all(r.content_sha256 is None for r in suite_from_dict(tiny_suite, data).recordings)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(format="something-else"), "format"),
        (lambda d: d.update(format_version=99), "format_version"),
        (lambda d: d.update(recordings={}), "must be a list"),
        (lambda d: d["recordings"][0].update(bag="../../etc/passwd.bag"), "leaves the suite folder"),
        (lambda d: d["recordings"][0].update(bag="/abs/x.bag"), "leaves the suite folder"),
        (lambda d: d["recordings"][0].update(sha256="abc"), "64 lower-case hex"),
        (lambda d: d["recordings"][0].update(content_sha256="ABC"), "content_sha256 must be 64 lower-case hex"),
        (lambda d: d["recordings"][0].update(expected="NOT_LIVE"), "needs expected"),
        (lambda d: d["recordings"][0].update(label=2), "label"),
        (lambda d: d["recordings"][0].pop("sha256"), "missing sha256"),
        (lambda d: d["recordings"].append(copy.deepcopy(d["recordings"][0])), "duplicate"),
        (lambda d: d.update(bpcer_budget=2), "bpcer_budget"),
        (lambda d: d.update(timeout_s=-1), "timeout_s"),
    ],
)
def test_malformed_suite_json_is_a_typed_error(tiny_suite, change, message):
    data = json.loads((tiny_suite / SUITE_FILE).read_text())
    change(data)
    with pytest.raises(HilSuiteError, match=message):
        suite_from_dict(tiny_suite, data)


def test_missing_suite_is_a_typed_error(tmp_path):
    with pytest.raises(HilSuiteError, match="no suite.json"):
        load_suite(tmp_path)
    with pytest.raises(HilSuiteError, match="does not exist"):
        load_suite(tmp_path / "absent")


def test_make_suite_rejects_bad_arguments(tmp_path):
    from sdk.hil.make import make_suite

    with pytest.raises(InputValidationError, match="unknown scenarios"):
        make_suite(tmp_path, per_scenario=1, scenarios=["no_such_scenario"], progress=False)
    with pytest.raises(InputValidationError, match="per-scenario"):
        make_suite(tmp_path, per_scenario=0, progress=False)


# --- run -----------------------------------------------------------------------------------
def test_hil_run_cli_passes_the_suite_and_writes_json_and_junit(tiny_suite, tmp_path, capsys):
    from sdk.cli import main

    report_path, junit_path = tmp_path / "hil.json", tmp_path / "hil.xml"
    code = main(["hil", "run", str(tiny_suite), "--json", str(report_path), "--junit", str(junit_path),
                 "--operating-point", "balanced"])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert "result: PASS" in out and "APCER per species" in out and "BPCER 0/1" in out
    report = json.loads(report_path.read_text())
    assert report["passed"] is True and report["exit_code"] == 0
    assert report["operating_point"] == "balanced"
    assert {r["status"] for r in report["recordings"]} == {"pass"}
    decisions = {r["scenario"]: r["decision"] for r in report["recordings"]}
    assert decisions["live"] == "LIVE" and decisions["print_flat"] != "LIVE"
    assert report["bpcer"]["k"] == 0 and report["bpcer"]["n"] == 1
    assert report["apcer"]["print_flat"] == {"k": 0, "n": 1, "rate": 0.0, "upper_95": pytest.approx(0.95)}
    assert report["timings"]["check_ms"]["median"] > 0
    cases = ET.parse(junit_path).getroot().findall(".//testcase")
    assert sorted(c.get("name") for c in cases) == sorted(r["id"] for r in report["recordings"])
    assert not ET.parse(junit_path).getroot().findall(".//failure")
    # The same run against itself as the baseline is no regression.
    assert main(["hil", "run", str(tiny_suite), "--baseline", str(report_path)]) == EXIT_OK


def test_a_recording_whose_hash_differs_is_an_error_not_a_pass(tiny_suite, tmp_path):
    from sdk.hil.runner import run_suite

    root = _copy(tiny_suite, tmp_path)
    suite = load_suite(root)
    attack = next(r for r in suite.recordings if r.is_attack)
    with open(root / attack.bag, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(RecordingIntegrityError, match="SHA-256"):
        suite.verify(attack)
    report = run_suite(suite, progress=False)
    result = next(r for r in report.results if r.id == attack.id)
    assert result.status == ERROR and result.decision is None and "SHA-256" in result.detail
    assert report.exit_code() == EXIT_ERROR
    junit = ET.fromstring(report.to_junit().split("\n", 1)[1])
    assert len(junit.findall(".//error")) == 1


# --- statistics and exit rules on constructed results ------------------------------------------
def _result(rid: str, label: int, decision: str | None, status: str | None = None, species: str = "print_flat") -> RecordingResult:
    if status is None:
        ok = (decision == "LIVE") if label == 1 else (decision != "LIVE")
        status = PASS if ok else FAIL
    return RecordingResult(id=rid, scenario="live" if label else species, species="bona_fide" if label else species,
                           label=label, attack_type=None, expected="LIVE" if label else "NOT_LIVE", sha256="0" * 64,
                           status=status, decision=decision, score=0.5, reasons=(), frames_used=5, seconds=0.1,
                           timings_ms={"engine": 5.0})


def _report(results, budget: float = 0.05) -> HilReport:
    return HilReport(suite_root="s", bpcer_budget=budget, model_name="m", model_version="1", operating_point="balanced",
                     threshold=0.5, results=tuple(results), seconds=1.0)


def test_exit_rules():
    from calibration.metrics import clopper_pearson_upper

    lives = [_result(f"l{i}", 1, "LIVE") for i in range(10)]
    attacks = [_result(f"a{i}", 0, "SPOOF") for i in range(10)]
    good = _report(lives + attacks)
    assert good.exit_code() == EXIT_OK
    assert good.apcer_per_species()["print_flat"]["upper_95"] == pytest.approx(clopper_pearson_upper(0, 10))
    accepted = _report(lives + attacks[:-1] + [_result("a9", 0, "LIVE")])
    assert accepted.exit_code() == EXIT_FAILED and accepted.gates()["attacks_live"] == ["a9"]
    assert accepted.apcer_per_species()["print_flat"]["k"] == 1
    assert accepted.worst_species() == "print_flat" and good.worst_species() is None
    rejected = _report(lives[:-1] + [_result("l9", 1, "UNCERTAIN")] + attacks, budget=0.05)
    assert rejected.bpcer()["rate"] == pytest.approx(0.1) and rejected.exit_code() == EXIT_FAILED
    assert _report(lives[:-1] + [_result("l9", 1, "UNCERTAIN")] + attacks, budget=0.2).exit_code() == EXIT_OK
    errored = _report(lives + attacks[:-1] + [_result("a9", 0, None, status=ERROR)])
    assert errored.exit_code() == EXIT_ERROR and errored.apcer_per_species()["print_flat"]["n"] == 9
    assert _report([]).exit_code() == EXIT_ERROR


def test_the_report_counts_checks_beyond_the_calibration_without_failing_on_them():
    from dataclasses import replace

    lives = [_result(f"l{i}", 1, "LIVE") for i in range(4)]
    lives[0] = replace(lives[0], outside_calibration=("max_brightness", "max_center_offset"))
    attacks = [_result("a0", 0, "SPOOF"), replace(_result("a1", 0, "SPOOF"), outside_calibration=("max_brightness",))]
    report = _report(lives + attacks)
    reach = report.calibration_reach()
    assert reach == {"checks": 6, "beyond": 2, "beyond_and_live": 1,
                     "per_gate": {"max_brightness": 2, "max_center_offset": 1}}
    assert report.exit_code() == EXIT_OK  # informational, not an exit rule
    assert report.to_dict()["outside_calibration"] == reach
    assert report.to_dict()["recordings"][0]["outside_calibration"] == ["max_brightness", "max_center_offset"]
    assert "2/6 checks had frames outside" in report.to_text()
    assert "beyond the bundle's calibration" not in _report(attacks[:1]).to_text()


def test_baseline_regression_is_detected_on_common_recordings():
    lives = [_result(f"l{i}", 1, "LIVE") for i in range(4)]
    attacks = [_result(f"a{i}", 0, "SPOOF") for i in range(4)]
    baseline = _report(lives + attacks).to_dict()
    same = _report(lives + attacks).compare(baseline)
    assert same.regressions == () and same.exit_code() == EXIT_OK
    worse = _report(lives[:-1] + [_result("l3", 1, "UNCERTAIN")] + attacks, budget=0.5).compare(baseline)
    assert worse.exit_code() == EXIT_FAILED and "BPCER 1/4" in worse.regressions[0]
    with pytest.raises(HilSuiteError, match="not a `hil run --json` report"):
        _report(lives).compare({"format": "other", "recordings": []})


# --- hil live (the camera is replaced by a simulator recording written the same way) -------------
def test_hil_live_prompts_records_adds_to_the_suite_and_checks(tmp_path):
    from sdk.capture import write_bag
    from sdk.hil.live import RecordedAttempt, run_live
    from sdk.sim import Simulator

    def fake_camera(path: Path, seconds: float) -> RecordedAttempt:
        sim = Simulator("live", 800_999_001)
        write_bag(path, (f for f, _ in sim.frames(FRAMES)), sim.device_info, sim.intrinsics, sim.depth_scale,
                  sim.depth_to_color)
        return RecordedAttempt(frames=FRAMES, fps=30.0, device_name="Intel RealSense SR300", device_serial="RIG0001")

    answers = iter(["", "s", "q"])
    prompts: list[str] = []
    lines: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    results = run_live(tmp_path / "rig", "live", count=3, seconds=0.5, record=fake_camera, ask=ask, say=lines.append)
    assert len(prompts) == 3 and "LIVE face" in prompts[0]
    assert len(results) == 1 and results[0].decision == "LIVE" and results[0].status == PASS
    suite = load_suite(tmp_path / "rig")
    (entry,) = suite.recordings
    assert entry.origin == "camera" and entry.label == 1 and entry.expected == "LIVE"
    suite.verify(entry)
    sidecar = json.loads((tmp_path / "rig" / entry.sidecar).read_text())
    assert sidecar["device"]["serial"] == "RIG0001" and sidecar["label"] == 1 and sidecar["origin"] == "camera"


def test_hil_live_species_of_attack_types():
    from sdk.hil.live import resolve_species

    assert resolve_species("attack", "1") == ("cut_eyes_flat", 1)
    assert resolve_species("attack", "screen_replay") == ("screen_replay", None)
    assert resolve_species("attack", "silicone_mask") == ("silicone_mask", None)
    assert resolve_species("live", None) == ("live", None)
    for expect, kind in (("attack", None), ("live", "print_flat"), ("attack", "../x"), ("attack", "9")):
        with pytest.raises(InputValidationError):
            resolve_species(expect, kind)


# --- the pytest entry point for rigs -----------------------------------------------------------
def test_pytest_hil_suite_runs_one_test_per_recording(tiny_suite):
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_hil_suite.py",
         "--hil-suite", str(tiny_suite)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "2 passed" in out.stdout


def test_hil_add_lists_recordings_labelled_by_record_or_synth_bag(tiny_suite, tmp_path, capsys):
    from sdk.cli import main

    source = load_suite(tiny_suite)
    live = next(r for r in source.recordings if not r.is_attack)
    attack = next(r for r in source.recordings if r.is_attack)
    # a recording labelled the way `record --label attack --attack-type print` labels it
    camera_bag = tmp_path / "cam" / "attempt1.bag"
    camera_bag.parent.mkdir()
    shutil.copyfile(tiny_suite / attack.bag, camera_bag)
    camera_bag.with_suffix(".json").write_text(json.dumps(
        {"scenario": None, "species": "print", "attack_type": "print", "label": 0, "fps": 30.0,
         "bag": camera_bag.name, "device": {"name": "Intel RealSense SR300", "serial": "X"}, "frame_count": 12}))
    assert main(["hil", "add", "--out", str(tmp_path / "grown"), str(tiny_suite / live.bag), str(camera_bag)]) == 0
    grown = load_suite(tmp_path / "grown")
    by_species = {r.species: r for r in grown.recordings}
    assert set(by_species) == {"bona_fide", "print"}
    assert by_species["print"].origin == "camera" and by_species["print"].attack_type is None
    assert by_species["bona_fide"].origin == "simulator" and by_species["bona_fide"].expected == "LIVE"
    for recording in grown.recordings:
        grown.verify(recording)
    unlabelled = tmp_path / "nolabel.bag"
    shutil.copyfile(camera_bag, unlabelled)
    assert main(["hil", "add", "--out", str(tmp_path / "grown"), str(unlabelled)]) == 3
    assert "no sidecar" in capsys.readouterr().err


def test_a_check_that_ended_on_an_error_is_retried_and_says_so(tiny_suite, monkeypatch):
    import dataclasses

    from sdk.hil import runner

    suite = load_suite(tiny_suite)
    recording = suite.recordings[0]
    outcomes = [
        _result(recording.id, recording.label, "UNCERTAIN", status=ERROR),  # e.g. DEVICE_ERROR in a replay
        _result(recording.id, recording.label, "LIVE" if recording.label else "SPOOF"),
    ]
    outcomes[0] = dataclasses.replace(outcomes[0], detail="the check ended on an error (DEVICE_ERROR)")
    calls: list[int] = []

    def fake_check_once(*args, **kwargs):
        calls.append(1)
        return outcomes[len(calls) - 1]

    monkeypatch.setattr(runner, "_check_once", fake_check_once)
    result = runner.check_recording(suite, recording, bundle=None, retries=1)
    assert len(calls) == 2 and result.status == PASS and result.attempts == 2
    assert "DEVICE_ERROR" in result.detail
    assert "note: 1 recordings were checked again" in _report([result]).to_text()
    calls.clear()
    assert runner.check_recording(suite, recording, bundle=None, retries=0).status == ERROR and len(calls) == 1
    # a hash mismatch (no decision) is never retried
    mismatch = dataclasses.replace(outcomes[0], decision=None, detail="SHA-256 differs")
    monkeypatch.setattr(runner, "_check_once", lambda *a, **k: calls.append(1) or mismatch)
    calls.clear()
    assert runner.check_recording(suite, recording, bundle=None, retries=3).status == ERROR and len(calls) == 1


def test_baseline_matches_a_rerendered_recording_by_its_frames_and_fails_when_nothing_is_shared():
    from dataclasses import replace

    def rendered(result: RecordingResult, file_hash: str, frames_hash: str | None) -> RecordingResult:
        return replace(result, sha256=file_hash, content_sha256=frames_hash)

    lives = [rendered(_result(f"l{i}", 1, "LIVE"), "1" * 64, f"{i}" * 64) for i in range(3)]
    baseline = _report(lives).to_dict()
    # The suite rendered again: other files, the same frames. One live face is now rejected.
    again = [rendered(r, "2" * 64, r.content_sha256) for r in lives]
    again[0] = replace(again[0], decision="UNCERTAIN", status=FAIL)
    worse = _report(again, budget=1.0).compare(baseline)
    assert worse.extra["baseline_common_recordings"] == 3
    assert worse.exit_code() == EXIT_FAILED and "BPCER 1/3" in worse.regressions[0]
    # Other frames under the same ids are other recordings, even with an equal file hash.
    other = [rendered(r, "1" * 64, "f" * 64) for r in lives]
    nothing = _report(other, budget=1.0).compare(baseline)
    assert nothing.extra["baseline_common_recordings"] == 0
    assert nothing.exit_code() == EXIT_FAILED and "nothing was compared" in nothing.regressions[0]
    # Reports from before the frames digest: matched by file hash, as before.
    older = _report([rendered(r, "1" * 64, None) for r in lives]).to_dict()
    assert _report(lives).compare(older).regressions == ()
