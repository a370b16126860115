"""The bundle that ships inside the package, tested as shipped.

* its files match the manifest's hashes, and the weights' hash is the one docs/model_changelog.md
  records for this version (a change of weights without a new version fails here);
* the output means P(live): live recordings score high, attack recordings low;
* the README's decision table holds on recordings of unseen subjects: live checks LIVE, attack
  checks never LIVE, at every shipped operating point;
* every shipped operating point is supported by its calibration set (3/t attacks) and carries
  its bounds and counts.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from calibration.threshold import required_attacks
from sdk.engine import ModelBundle
from sdk.engine.bundle import parse_version, sha256_file
from sdk.fusion import FusionConfig
from tests.sim_recordings import longest_scored_run, sim_recordings  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parent.parent
CHANGELOG = REPO / "docs" / "model_changelog.md"
ROW = re.compile(r"^\|\s*(\d+\.\d+\.\d+)\s*\|\s*([0-9-]+)\s*\|\s*`?([0-9a-f]{64})`?\s*\|", re.M)


@pytest.fixture(scope="module")
def shipped() -> ModelBundle:
    return ModelBundle.load(None)  # verifies every file's SHA-256 against the manifest


def changelog() -> dict[str, str]:
    rows = ROW.findall(CHANGELOG.read_text(encoding="utf-8"))
    versions = [version for version, _, _ in rows]
    assert len(versions) == len(set(versions)), "a model version appears twice in the changelog"
    return {version: digest for version, _, digest in rows}


def versions_not_shipped() -> set[str]:
    """Rows whose description starts "not shipped": built (their number is taken), never shipped."""
    text = CHANGELOG.read_text(encoding="utf-8")
    return set(re.findall(r"^\|\s*(\d+\.\d+\.\d+)\s*\|[^|]*\|[^|]*\|[^|]*\|\s*not shipped", text, re.M))


def test_manifest_hashes_match_and_the_changelog_records_this_version(shipped):
    assert sha256_file(shipped.model_path) == shipped.model_sha256
    entries = changelog()
    assert shipped.version in entries, f"docs/model_changelog.md has no entry for {shipped.version}"
    assert entries[shipped.version] == shipped.model_sha256, (
        "the shipped weights differ from the changelog's hash for this version: new weights need a new version")
    not_shipped = versions_not_shipped()
    assert shipped.version not in not_shipped, f"the changelog marks {shipped.version} as not shipped"
    # The shipped model is the newest one shipped; only builds that were not shipped may be newer.
    assert max(set(entries) - not_shipped, key=parse_version) == shipped.version
    newer = [v for v in entries if parse_version(v) > parse_version(shipped.version)]
    assert set(newer) <= not_shipped, f"changelog versions newer than the shipped one: {newer}"


def test_every_shipped_point_is_supported_and_bounded(shipped):
    points = shipped.manifest["operating_points"]["points"]
    assert shipped.default_operating_point in points
    for name, point in points.items():
        assert point["n_attack"] >= required_attacks(point["target_apcer"]), name
        assert point["apcer_upper_95"] <= point["target_apcer"], name
        for key in ("bpcer", "bpcer_upper_95", "n_live", "n_attack_accepted", "n_live_rejected"):
            assert point.get(key) is not None, (name, key)
    rule = shipped.decision_rule
    from sdk.session import SessionConfig, decision_rule_matches, with_bundle_gates

    assert rule is not None, "the shipped points must be set on fused per-check scores (sr300-liveness calibrate)"
    # A default session runs the bundle's gates and detector; everything else must be the SDK's default rule.
    assert decision_rule_matches(rule, with_bundle_gates(SessionConfig(), shipped)), \
        "the session's decision rule differs from the calibrated one"
    from sdk.detect.blazeface import MODES

    assert rule.get("detector", "auto") in MODES
    carried = ("quality", "detector")
    default = {k: v for k, v in SessionConfig().decision_rule().items() if k not in carried}
    assert {k: v for k, v in rule.items() if k not in carried} == default


@pytest.fixture(scope="module")
def check_scores(shipped, sim_recordings):
    from calibration.recordings import discover, score_recordings

    rows = list(score_recordings(discover([sim_recordings]), shipped.path))
    assert not any(r["error"] for r in rows)
    return rows


def test_output_direction_live_high_attack_low(check_scores):
    live = [o["score"] for r in check_scores if r["label"] == 1 for o in r["outcomes"] if o["score"] is not None]
    attack = [o["score"] for r in check_scores if r["label"] == 0 for o in r["outcomes"] if o["score"] is not None]
    assert live and attack
    assert sorted(live)[len(live) // 2] > 0.8 and sorted(attack)[len(attack) // 2] < 0.2
    assert sum(live) / len(live) > sum(attack) / len(attack) + 0.5  # a P(spoof) model fails here


def test_readme_decision_table_holds(shipped, check_scores):
    """README: no attack check LIVE and live checks LIVE (those with k frames in a row that pass the
    quality gates: one of the four subjects stands so close that IR_OVEREXPOSED interrupts every
    run of frames), at every shipped point."""
    for name in shipped.manifest["operating_points"]["points"]:
        threshold = shipped.operating_point(name).threshold
        for row in check_scores:
            live = row["check_score"] >= threshold
            if row["label"] == 0:
                assert not live, (name, row["recording"], row["check_score"], threshold)
            elif longest_scored_run(row) >= FusionConfig().min_frames_live:
                assert live, (name, row["recording"], row["check_score"], threshold)
        assert sum(r["check_score"] >= threshold for r in check_scores if r["label"] == 1) >= 3


def test_a_real_check_on_the_shipped_bundle(shipped, sim_recordings):
    from sdk import Decision
    from sdk.session import LivenessSession

    with LivenessSession(str(sim_recordings / "live_0.bag"), shipped) as session:
        assert session.check(timeout_s=120).decision is Decision.LIVE
    with LivenessSession(str(sim_recordings / "cut_eyes_flat_0.bag"), shipped) as session:
        assert session.check(timeout_s=120).decision is not Decision.LIVE
