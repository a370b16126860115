"""`sr300-liveness calibrate` end to end on small labelled recordings with the shipped weights:
support refusal, the new bundle (same weights, new version, provenance, bounded points), the
per-frame report, resuming, label files, and that a calibrated threshold means what check() does."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calibration.threshold import (
    check_support,
    required_attacks,
    threshold_for_apcer,
    threshold_with_margin,
)
from sdk.errors import InputValidationError, UnsupportedOperatingPointError
from sdk.fusion import FusionConfig
from tests.sim_recordings import longest_scored_run, sim_recordings  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdk.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)}, timeout=600)


# -- the support rule (no recordings needed) -------------------------------------------------------
def test_required_attacks_is_the_rule_of_three():
    assert required_attacks(0.01) == 300 and required_attacks(1e-3) == 3000 and required_attacks(0.5) == 6
    check_support("ok", 0.01, 300)
    with pytest.raises(UnsupportedOperatingPointError, match="needs at least 3000 attack") as info:
        check_support("apcer_1e-3", 1e-3, 180)
    assert info.value.needed == 3000 and info.value.n_attack == 180
    assert isinstance(info.value, InputValidationError)


def test_upper_bound_targets_accept_no_attack_at_three_over_t():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.uniform(0, 0.5, 300), rng.uniform(0.4, 1.0, 100)])
    labels = np.array([0] * 300 + [1] * 100)
    empirical = threshold_for_apcer(scores, labels, 0.01)
    bounded = threshold_for_apcer(scores, labels, 0.01, bound="upper_95", require_support=True)
    assert empirical.n_attack_accepted == 3 and bounded.n_attack_accepted == 0
    assert bounded.apcer_upper_95 <= 0.01 < empirical.apcer_upper_95
    assert bounded.bpcer_upper_95 >= bounded.bpcer and bounded.required_attacks == 300
    with pytest.raises(UnsupportedOperatingPointError):
        threshold_for_apcer(scores[50:], labels[50:], 0.01, require_support=True)
    with pytest.raises(UnsupportedOperatingPointError):  # the bound itself cannot be met with 250
        threshold_for_apcer(scores[50:], labels[50:], 0.01, bound="upper_95")
    margin = threshold_with_margin(scores, labels, 0.01, 0.05, bound="upper_95", require_support=True)
    assert margin.threshold >= bounded.threshold and margin.n_attack_accepted == 0


def test_export_refuses_an_unsupported_explicit_target(tmp_path):
    (tmp_path / "val_list.txt").write_text("".join(f"c{i}.jpg d{i}.jpg i{i}.jpg {i % 2}\n" for i in range(40)))
    result = _cli("export", "--model", str(tmp_path / "missing.pt"), "--data", str(tmp_path), "--out",
                  str(tmp_path / "b"), "--target", "apcer_1e-3=0.001")
    assert result.returncode == 3 and "needs at least 3000 attack" in result.stderr and "has 20" in result.stderr


# -- calibrate on recordings --------------------------------------------------------------------
def test_calibrate_refuses_unsupported_targets_before_replaying(sim_recordings, tmp_path):
    result = _cli("calibrate", "--bags", str(sim_recordings), "--out", str(tmp_path / "b"),
                  "--target", "apcer_1e-2=0.01")
    assert result.returncode == 3
    assert "needs at least 300 attack presentations" in result.stderr and "has 6" in result.stderr
    assert not (tmp_path / "b").exists() and not (tmp_path / "b_calibration").exists()


@pytest.fixture(scope="module")
def calibrated(sim_recordings, tmp_path_factory):
    out = tmp_path_factory.mktemp("calibrated") / "bundle"
    result = _cli("calibrate", "--bags", str(sim_recordings), "--out", str(out), "--target", "half=0.5",
                  "--target", "balanced=0.5,0.5", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, json.loads(result.stdout)


def test_calibrated_bundle_keeps_the_weights_and_records_provenance(calibrated):
    from sdk.engine import ModelBundle

    out, summary = calibrated
    parent = ModelBundle.load(None)
    bundle = ModelBundle.load(out)
    assert bundle.model_sha256 == parent.model_sha256  # calibration never changes weights
    assert bundle.version != parent.version and summary["parent_version"] == parent.version
    cal = bundle.provenance["calibration"]
    assert cal["counts"]["live"] == 4 and cal["counts"]["attack"] == 6 and cal["counts"]["failed_replay"] == 0
    assert cal["counts"]["per_species"]["attack:print_flat"] == 2
    assert len(cal["recordings_sha256"]) == 10 and all(len(h) == 64 for h in cal["recordings_sha256"].values())
    assert cal["camera_serials"] and cal["parent"]["model_sha256"] == parent.model_sha256
    assert bundle.decision_rule["fusion"]["min_frames_live"] == 5
    # The parent's provenance is kept, whatever made it (a trained model's "training", a distilled
    # student's "ensemble" and "distillation"): only the calibration record is new.
    kept = {k for k in parent.provenance if k != "calibration"}
    assert kept and all(bundle.provenance[k] == parent.provenance[k] for k in kept)
    for name in ("half", "balanced"):
        point = bundle.manifest["operating_points"]["points"][name]
        for key in ("apcer", "bpcer", "apcer_upper_95", "bpcer_upper_95", "n_attack", "n_live",
                    "n_attack_accepted", "n_live_rejected", "required_attacks", "apcer_per_species"):
            assert point[key] is not None, key
        assert point["n_attack_accepted"] == 0 and point["bound"] == "upper_95"
    assert bundle.default_operating_point == "balanced"
    # every scored frame carried its gate measurements, so the coverage of each gate is known
    coverage = summary["gate_coverage"]
    assert coverage["scored_frames"] > 0 and coverage["scored_frames_without_measurements"] == 0
    holes = cal["gate_coverage"]["gates"]["max_depth_hole_fraction"]
    limit = bundle.decision_rule["quality"]["max_depth_hole_fraction"]  # the parent's gate, kept
    assert holes["limit"] == limit and 0.0 <= holes["live_reached"] <= limit
    reached = max(v for v in (holes["live_reached"], holes["attack_reached"]) if v is not None)
    assert holes["uncovered"] == ([reached, limit] if reached < limit else None)


def test_a_calibrated_bundle_recalibrates_under_other_gates(calibrated, sim_recordings, tmp_path):
    """Recalibrating is how a new decision rule gets points: the old rule must not block it, and
    the new bundle must carry (and demand) the new gates."""
    from calibration.calibrate import calibrate
    from sdk.engine import ModelBundle
    from sdk.errors import DecisionRuleMismatchError
    from sdk.quality import QualityConfig
    from sdk.session import LivenessSession, SessionConfig

    out, summary = calibrated
    loose = SessionConfig(quality=QualityConfig(max_depth_hole_fraction=0.5))
    bundle, new_summary = calibrate(str(out), [sim_recordings], tmp_path / "loose", targets={"half": (0.5, None)},
                                    config=loose, progress=False, log=lambda message: None)
    assert ModelBundle.load(bundle.path).decision_rule["quality"]["max_depth_hole_fraction"] == 0.5
    # a session that picks no gates runs the bundle's; one that picks others is refused
    session = LivenessSession(None, str(bundle.path), SessionConfig())
    assert session.config.quality.max_depth_hole_fraction == 0.5
    session.close()
    with pytest.raises(DecisionRuleMismatchError, match="quality"):
        LivenessSession(None, str(bundle.path), SessionConfig(quality=QualityConfig()))
    # recalibrating without gates of its own keeps the parent's
    again, _ = calibrate(str(bundle.path), [sim_recordings], tmp_path / "again", targets={"half": (0.5, None)},
                         progress=False, log=lambda message: None)
    assert again.decision_rule["quality"]["max_depth_hole_fraction"] == 0.5
    split = new_summary["breakdown"]["half"]["live_rejections"]
    assert split["n_live"] == 4 and split["score"] + split["never_live"] == split["n_rejected"]
    assert set(new_summary["breakdown"]["half"]["per_condition"]) >= {"nominal"}


def test_refusing_frames_beyond_the_calibration_leaves_its_own_checks_unchanged(calibrated, sim_recordings, tmp_path):
    """No scored calibration frame lies beyond the reach the calibration recorded, so a session
    that refuses such frames replays the calibration's checks to the same scores: the bundle's
    operating points hold under SessionConfig.outside_calibration="refuse" too."""
    from calibration.calibrate import calibrate
    from sdk.engine import ModelBundle
    from sdk.session import SessionConfig

    out, summary = calibrated
    assert ModelBundle.load(out).provenance["calibration"]["gate_coverage"]["gates"]
    _, again = calibrate(str(out), [sim_recordings], tmp_path / "refuse", targets={"half": (0.5, None)},
                         config=SessionConfig(outside_calibration="refuse"), progress=False, log=lambda message: None)
    def scores(report):
        rows = [json.loads(line) for line in (Path(report) / "checks.jsonl").read_text().splitlines()]
        return {r["recording"]: (r["check_score"], r["scored_frames"]) for r in rows}
    refused = [o for line in (Path(again["report"]) / "checks.jsonl").read_text().splitlines()
               for o in json.loads(line)["outcomes"] if "OUTSIDE_CALIBRATION" in o["reasons"]]
    assert refused == [] and scores(again["report"]) == scores(summary["report"])


def test_per_frame_report_and_direction_of_scores(calibrated):
    out, summary = calibrated
    rows = [json.loads(line) for line in (Path(summary["report"]) / "checks.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all(len(r["outcomes"]) == r["frames"] > 0 for r in rows)
    # Live checks with k frames in a row that passed the gates (one subject stands at 0.29 m:
    # IR_OVEREXPOSED keeps interrupting its frames, so UNCERTAIN, score 0) score high; attack checks low: the output is P(live).
    live = [r["check_score"] for r in rows if r["label"] == 1 and longest_scored_run(r) >= FusionConfig().min_frames_live]
    attack = [r["check_score"] for r in rows if r["label"] == 0]
    assert len(live) >= 3 and min(live) > 0.5 and max(attack) < 0.2, (live, attack)
    gated = [r for r in rows if r["scored_frames"] == 0]
    assert all(r["check_score"] == 0.0 and all(o["reasons"] for o in r["outcomes"]) for r in gated)


def test_a_calibrated_threshold_means_what_check_does(calibrated, sim_recordings):
    from sdk.session import LivenessSession, SessionConfig

    out, summary = calibrated
    rows = {json.loads(line)["recording"]: json.loads(line)
            for line in (Path(summary["report"]) / "checks.jsonl").read_text().splitlines()}
    threshold = summary["operating_points"]["balanced"]["threshold"]
    for name in ("live_0.bag", "print_flat_0.bag", "mask_3d_0.bag"):
        with LivenessSession(str(sim_recordings / name), str(out), SessionConfig(max_frames=10)) as session:
            result = session.check(timeout_s=120)
        assert result.threshold == threshold
        assert result.is_live == (rows[name]["check_score"] >= threshold), (name, result)


def test_rerun_reuses_the_report_and_labels_file_overrides(calibrated, sim_recordings, tmp_path):
    out, summary = calibrated
    # A label file naming one recording as an attack of species "photo" (as for real recordings).
    labels = tmp_path / "labels.txt"
    labels.write_text("# path label species\n" + "\n".join(
        f"{p} {'attack' if 'live' not in p.name else 'live'} {'photo' if 'print' in p.name else ''}".rstrip()
        for p in sorted(sim_recordings.glob("*.bag"))) + "\n")
    result = _cli("calibrate", "--bags", str(sim_recordings), "--out", str(tmp_path / "again"), "--target", "half=0.5",
                  "--default-point", "half", "--labels", str(labels), "--report", summary["report"], "--version", "9.0.0")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "reusing 10 check scores" in result.stdout and "photo" in result.stdout
    from sdk.engine import ModelBundle

    assert ModelBundle.load(tmp_path / "again").version == "9.0.0"


def test_bad_inputs_are_typed_errors(sim_recordings, tmp_path):
    from calibration.calibrate import calibrate, parse_targets
    from calibration.recordings import discover

    with pytest.raises(InputValidationError):
        parse_targets(["nope"])
    with pytest.raises(InputValidationError):
        parse_targets(["x=1.5"])
    unlabelled = tmp_path / "u"
    unlabelled.mkdir()
    (unlabelled / "a.bag").write_bytes(b"not really")
    with pytest.raises(InputValidationError, match="no label"):
        discover([unlabelled])
    from sdk.engine import ModelBundle

    shipped_version = ModelBundle.load(None).version  # a calibration must not reuse the source's version
    with pytest.raises(InputValidationError, match="new version"):
        calibrate(None, [sim_recordings], tmp_path / "x", targets={"half": (0.5, None)}, version=shipped_version)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputValidationError, match="no .bag"):
        discover([empty])


def test_calibrate_cli_sets_gates_by_name_and_keeps_the_others(calibrated, sim_recordings, tmp_path):
    from sdk.cli.cmd_calibrate import gate_config
    from sdk.engine import ModelBundle

    out, _ = calibrated
    parent_gates = ModelBundle.load(out).decision_rule["quality"]
    result = _cli("calibrate", "--bags", str(sim_recordings), "--model", str(out), "--out", str(tmp_path / "g"),
                  "--target", "half=0.5", "--gate", "max_saturated_fraction=0.4", "--detector", "auto+ir", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert ModelBundle.load(tmp_path / "g").decision_rule["detector"] == "auto+ir"  # recorded, and run by sessions
    gates = ModelBundle.load(tmp_path / "g").decision_rule["quality"]
    assert gates["max_saturated_fraction"] == 0.4
    assert {k: v for k, v in gates.items() if k != "max_saturated_fraction"} == \
        {k: v for k, v in parent_gates.items() if k != "max_saturated_fraction"}
    for bad, match in (("max_saturated_fraction", "NAME=VALUE"), ("depth_check=1", "NAME=VALUE"),
                       ("max_brightness=bright", "not a number"), ("multiple_faces=2", "NAME=VALUE")):
        with pytest.raises(InputValidationError, match=match):
            gate_config(str(out), [bad])


def test_record_writes_the_same_labelled_sidecar(tmp_path):
    from calibration.recordings import discover
    from sdk.cli.cmd_record import write_sidecar
    from sdk.types import DeviceInfo

    bag = tmp_path / "mine.bag"
    bag.write_bytes(b"\x00" * 10)
    write_sidecar(bag, "attack", "screen_replay", DeviceInfo("Intel RealSense SR300", "617203001234"), 90, 30)
    (recording,) = discover([tmp_path])
    assert recording.label == 0 and recording.species == "screen_replay" and recording.serial == "617203001234"
    with pytest.raises(ValueError):
        write_sidecar(bag, "live", "print", DeviceInfo("x", "y"), 1, 30)


class _ShortOnce:
    """A session double whose first replay ends short (as librealsense's playback can under CPU
    starvation) or, with ``always``, every replay (a damaged file)."""

    def __init__(self, always: bool = False) -> None:
        from sdk.session import SessionConfig

        self.config = SessionConfig()
        self.always = always
        self.replays = 0
        self._source = None

    def use_source(self, spec):
        self.spec = spec

    def open(self):
        from sdk.errors import ShortPlaybackError

        self.replays += 1
        if self.always or self.replays == 1:
            raise ShortPlaybackError(self.spec, "damaged: playback ended after 19 of the 20 recorded depth frames")

    def outcomes(self, max_frames=None):
        return []

    def release_source(self):
        self.spec = None


def test_a_replay_that_ends_short_is_tried_once_more(tmp_path):
    from calibration.recordings import Recording, score_one

    recording = Recording(tmp_path / "r.bag", 1, "live", "SIM1", "0" * 64)
    flaky = _ShortOnce()
    row = score_one(flaky, recording)
    assert flaky.replays == 2 and row["replays"] == 2 and row["error"] is None
    damaged = _ShortOnce(always=True)
    row = score_one(damaged, recording)
    assert damaged.replays == 2 and row["replays"] == 2
    assert row["error"].startswith("ShortPlaybackError") and row["check_score"] == 0.0 and "_short" not in row
