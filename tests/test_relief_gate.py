"""The relief gate (sdk.relief.face_relief_mm, QualityConfig.min_relief_mm): a sheet bent any way
has no relief left after the best developable fit; a face does."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from sdk import sim
from sdk.errors import InputValidationError
from sdk.pipeline import FacePipeline
from sdk.quality import GATES, QualityConfig, assess
from sdk.relief import face_relief_mm
from sdk.types import Reason
from tests.test_detect_support import face_frame

SCALE = 0.000125  # metres per raw depth unit (the SR300's 1/8 mm)
BOX = (0.0, 0.0, 120.0, 120.0)


def _sheet(angle_deg: float, radius_mm: float | None, tilt_mm_per_px: float = 0.0) -> np.ndarray:
    """A 120 px sheet at 500 mm (1.2 mm per pixel), curled round an axis across ``angle_deg``."""
    yy, xx = np.mgrid[0:120, 0:120].astype(np.float64) - 60.0
    a = np.deg2rad(angle_deg)
    u_mm = (xx * np.cos(a) + yy * np.sin(a)) * 1.2
    z = np.full(xx.shape, 500.0) + tilt_mm_per_px * yy
    if radius_mm is not None:
        z += radius_mm - np.sqrt(np.maximum(radius_mm ** 2 - u_mm ** 2, 0.0))
    return z


def _raw(z_mm: np.ndarray) -> np.ndarray:
    return np.round(z_mm / 1000.0 / SCALE).astype(np.uint16)


@pytest.mark.parametrize("angle", [0.0, 22.5, 45.0, 90.0, 135.0])
@pytest.mark.parametrize("radius", [None, 150.0, 250.0])
def test_flat_and_curled_sheets_have_no_relief(angle, radius):
    z = _sheet(angle, radius, tilt_mm_per_px=0.2)
    assert face_relief_mm(_raw(z), SCALE, BOX, 0.5) < 1.5


def test_a_nose_on_a_curled_sheet_is_relief_no_sheet_explains():
    yy, xx = np.mgrid[0:120, 0:120].astype(np.float64) - 60.0
    nose = 20.0 * np.exp(-((xx / 12.0) ** 2 + (yy / 18.0) ** 2))  # 20 mm toward the camera
    z = _sheet(0.0, 150.0) - nose
    assert face_relief_mm(_raw(z), SCALE, BOX, 0.5) > 3.0


def test_holes_and_background_are_left_out_and_too_few_cells_is_nan():
    z = _sheet(0.0, 150.0)
    raw = _raw(z)
    raw[:, :20] = 0  # holes
    raw[:, 100:] = _raw(np.full((120, 20), 1500.0))  # a wall a metre behind
    assert face_relief_mm(raw, SCALE, BOX, 0.5) < 1.5
    raw[:, :70] = 0
    assert np.isnan(face_relief_mm(raw, SCALE, BOX, 0.5))
    assert np.isnan(face_relief_mm(_raw(z), SCALE, BOX, float("nan")))
    assert np.isnan(face_relief_mm(_raw(z), SCALE, (0.0, 0.0, 10.0, 10.0), 0.5))  # box under a grid


def test_bad_input_is_a_typed_error():
    with pytest.raises(InputValidationError):
        face_relief_mm(np.zeros((120, 120), np.float32), SCALE, BOX, 0.5)
    with pytest.raises(InputValidationError):
        face_relief_mm(np.zeros((120, 120), np.uint16), 0.0, BOX, 0.5)
    with pytest.raises(InputValidationError):
        QualityConfig(min_relief_mm=-1.0)


def test_gate_is_off_by_default_and_a_flat_face_fails_it_when_on():
    frames, box = face_frame(0.5, 0.15)  # a photo pasted at one depth: no relief
    from sdk.detect import Detection, Detections, measure_face_depth

    detections = Detections((Detection(box, measure_face_depth(frames, box)),))
    off = assess(frames, detections)
    assert off.passed and "relief_mm" not in off.measurements
    on = assess(frames, detections, config=QualityConfig(min_relief_mm=4.0))
    assert not on.passed and on.reasons == (Reason.NO_RELIEF,)
    assert on.measurements["relief_mm"] < 1.0
    assert any(g.field == "min_relief_mm" and g.measurement == "relief_mm" and not g.ceiling for g in GATES)


def test_simulated_live_faces_pass_and_a_print_fails():
    """The simulator's physics, through the real pipeline: live heads keep their relief, a flat
    print has none (on the calibration sets: docs/decisions.md, candidate O)."""
    config = QualityConfig(min_relief_mm=4.0, max_depth_hole_fraction=0.5)
    live, prints = [], []
    with FacePipeline(quality=config) as pipeline:
        for k in range(4):
            frames, _ = sim.Simulator("live", 650_900 + k).render(0)
            live.append(pipeline.analyze(frames).quality)
        for k in range(8):  # BlazeFace finds no face on some simulated prints
            frames, truth = sim.Simulator("print_flat", 650_950 + k).render(0)
            analysis = pipeline.analyze(frames)
            # only where the chosen box is the print's face (seed 650950 picks the holder's own
            # head behind the print, which has relief, as it should)
            if analysis.box is not None and analysis.box.iou(truth.face_box) > 0.4:
                prints.append(analysis.quality)
    live_relief = [q.measurements["relief_mm"] for q in live if "relief_mm" in q.measurements]
    print_relief = [q.measurements["relief_mm"] for q in prints if "relief_mm" in q.measurements]
    assert len(live_relief) >= 3 and len(print_relief) >= 3
    assert min(live_relief) > 5.0 and max(print_relief) < 4.0
    assert all(Reason.NO_RELIEF in q.reasons for q in prints if "relief_mm" in q.measurements)
    assert not any(Reason.NO_RELIEF in q.reasons for q in live)


def test_bundles_calibrated_before_the_gate_run_as_calibrated_and_one_that_records_it_runs_it():
    """A rule recorded before the gate existed (2.19.0-2.24.0: no min_relief_mm) still matches a
    session that runs its gates (the gate off); a rule that records the gate makes the session run it."""
    from sdk.engine import ModelBundle
    from sdk.session import SessionConfig, decision_rule_matches, quality_from_rule, stored_rule, with_bundle_gates

    bundle = ModelBundle.load(None)
    shipped = bundle.decision_rule
    assert shipped is not None
    # a rule recorded before the gate had neither it nor the flat-face cue that builds on it
    before = dict(shipped, quality={k: v for k, v in shipped["quality"].items() if k not in ("min_relief_mm", "flat_face_mm")})
    config = with_bundle_gates(SessionConfig(), dataclasses.replace(bundle, manifest=_with_rule(bundle.manifest, before)))
    assert config.quality.min_relief_mm == 0.0 and decision_rule_matches(before, config)
    assert stored_rule(before)["quality"]["min_relief_mm"] == 0.0
    gated = dict(before, quality=dict(before["quality"], min_relief_mm=2.5))
    assert quality_from_rule(gated["quality"], "test").min_relief_mm == 2.5
    assert not decision_rule_matches(gated, config)


def _with_rule(manifest, rule):
    """``manifest`` with its calibration's decision rule replaced."""
    provenance = dict(manifest["provenance"])
    provenance["calibration"] = dict(provenance["calibration"], decision_rule=rule)
    return dict(manifest, provenance=provenance)


def test_a_session_runs_the_detector_its_bundle_was_calibrated_with():
    """Like the gates, the detector follows the bundle unless the session picks one: a bundle
    calibrated with "auto+ir" runs it, one that records "auto" (or nothing) runs "auto"."""
    from sdk.engine import ModelBundle
    from sdk.session import SessionConfig, decision_rule_matches, with_bundle_gates

    bundle = ModelBundle.load(None)
    shipped = bundle.decision_rule
    assert with_bundle_gates(SessionConfig(), bundle).detector == shipped["detector"]
    for recorded, other in (("auto+ir", "auto"), ("auto", "auto+ir")):
        rule = dict(shipped, detector=recorded)
        variant = dataclasses.replace(bundle, manifest=_with_rule(bundle.manifest, rule))
        config = with_bundle_gates(SessionConfig(), variant)
        assert config.detector == recorded and decision_rule_matches(rule, config)
        assert not decision_rule_matches(rule, with_bundle_gates(SessionConfig(detector=other), variant))
    rule_without = {k: v for k, v in shipped.items() if k != "detector"}  # recorded before the field
    old_bundle = dataclasses.replace(bundle, manifest=_with_rule(bundle.manifest, rule_without))
    assert with_bundle_gates(SessionConfig(), old_bundle).detector == "auto"
    assert SessionConfig().decision_rule()["detector"] == "auto"  # no bundle: the default


# --- a face measured flat as a spoof cue (QualityConfig.flat_face_mm) ------------------------------

def test_a_face_measured_flat_carries_the_spoof_cue_and_unmeasurable_relief_does_not():
    from sdk.detect import Detection, Detections, measure_face_depth

    frames, box = face_frame(0.5, 0.15)  # a photo pasted at one depth: measured, and flat
    detections = Detections((Detection(box, measure_face_depth(frames, box)),))
    gate_only = assess(frames, detections, config=QualityConfig(min_relief_mm=4.0))
    assert Reason.FLAT_FACE not in gate_only.reasons  # off by default
    cue = assess(frames, detections, config=QualityConfig(min_relief_mm=4.0, flat_face_mm=2.0))
    assert cue.reasons == (Reason.NO_RELIEF, Reason.FLAT_FACE) and cue.measurements["relief_mm"] < 2.0
    # the same face with its depth gone: relief cannot be measured, so the gate fails, the cue does not
    holes = dataclasses.replace(frames, depth=np.zeros_like(frames.depth))
    missing = assess(holes, detections, config=QualityConfig(min_relief_mm=4.0, flat_face_mm=2.0,
                                                                max_depth_hole_fraction=1.0))
    assert Reason.NO_RELIEF in missing.reasons and Reason.FLAT_FACE not in missing.reasons
    assert np.isnan(missing.measurements["relief_mm"])


def test_the_flat_face_cue_needs_the_relief_gate_at_or_above_it():
    QualityConfig(min_relief_mm=2.5, flat_face_mm=2.5)
    QualityConfig(min_relief_mm=2.5, flat_face_mm=1.5)
    for bad in ({"flat_face_mm": 1.0}, {"min_relief_mm": 2.0, "flat_face_mm": 3.0}, {"flat_face_mm": -1.0}):
        with pytest.raises(InputValidationError, match="flat_face_mm"):
            QualityConfig(**bad)


def test_three_frames_measured_flat_end_a_check_spoof_and_missing_relief_times_out():
    from sdk.fusion import SPOOF_CUES, CheckDecider
    from sdk.types import Decision, FrameOutcome

    assert Reason.FLAT_FACE in SPOOF_CUES
    flat = FrameOutcome(0, None, (Reason.NO_RELIEF, Reason.FLAT_FACE), None)
    decider = CheckDecider(0.5, spoof_cue_frames=3)
    assert decider.add(flat) is None and decider.add(flat) is None
    verdict = decider.add(flat)
    assert verdict is not None and verdict.decision is Decision.SPOOF and verdict.reasons == (Reason.FLAT_FACE,)
    unmeasured = FrameOutcome(0, None, (Reason.NO_RELIEF, Reason.DEPTH_HOLES), None)
    decider = CheckDecider(0.5, spoof_cue_frames=3)
    assert all(decider.add(unmeasured) is None for _ in range(10))
    assert decider.undecided(Reason.TIMEOUT).decision is Decision.UNCERTAIN


def test_rules_recorded_before_the_cue_existed_run_without_it():
    from sdk.engine import ModelBundle
    from sdk.session import SessionConfig, decision_rule_matches, stored_rule, with_bundle_gates

    bundle = ModelBundle.load(None)
    shipped = bundle.decision_rule
    # as 2.37.0 and every bundle before it recorded their rule: without the field
    before = dict(shipped, quality={k: v for k, v in shipped["quality"].items() if k != "flat_face_mm"})
    config = with_bundle_gates(SessionConfig(), dataclasses.replace(bundle, manifest=_with_rule(bundle.manifest, before)))
    assert config.quality.flat_face_mm == 0.0 and decision_rule_matches(before, config)
    assert stored_rule(before)["quality"]["flat_face_mm"] == 0.0
    cued = dict(before, quality=dict(before["quality"], flat_face_mm=1.5))
    assert not decision_rule_matches(cued, config)
    assert with_bundle_gates(SessionConfig(), dataclasses.replace(bundle, manifest=_with_rule(bundle.manifest, cued))
                             ).quality.flat_face_mm == 1.5


def test_spoof_cue_reasons_come_in_a_fixed_order():
    """Most frames first, ties by name, the same in every process (a frozenset's order follows
    Python's per-process string hashing: independent seed 1 rerun gave the two cues swapped)."""
    import subprocess
    import sys

    from sdk.fusion import CheckDecider
    from sdk.types import FrameOutcome

    both = FrameOutcome(0, None, (Reason.IMPLAUSIBLE_FACE_SIZE, Reason.FLAT_FACE), None)
    flat = FrameOutcome(0, None, (Reason.NO_RELIEF, Reason.FLAT_FACE), None)
    decider = CheckDecider(0.5, spoof_cue_frames=3)
    assert decider.add(both) is None
    assert decider.add(flat).reasons == (Reason.FLAT_FACE, Reason.IMPLAUSIBLE_FACE_SIZE)  # 2 frames against 1
    decider = CheckDecider(0.5, spoof_cue_frames=3)
    decider.add(both)
    tie = decider.add(both).reasons
    assert tie == tuple(sorted(tie, key=lambda r: r.value))
    script = ("from sdk.fusion import CheckDecider; from sdk.types import FrameOutcome, Reason; "
              "d = CheckDecider(0.5, spoof_cue_frames=3); "
              "f = FrameOutcome(0, None, (Reason.IMPLAUSIBLE_FACE_SIZE, Reason.FLAT_FACE), None); "
              "d.add(f); print([r.value for r in d.add(f).reasons])")
    orders = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in range(6)}
    assert len(orders) == 1
