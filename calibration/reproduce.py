"""Does a committed evaluation report come back when its data are made again from their seeds?

Every figure a bundle ships on (calibration, acceptance suite, independent renderer) was measured
on recordings rendered from seeds, so a fresh machine with only the repository can make them
again and rerun the same command. This module compares such a rerun's report with the committed
one, item by item, and lists every difference it finds; it never decides what a difference means.

Reports compared (all JSON, as the CLI writes them):
  * ``hil run --json`` (acceptance): per recording, keyed by ``id``: the frames' digest
    (``content_sha256``, when both reports carry it), decision and reasons exactly, the score within
    a tolerance. The bag file's own SHA-256 is compared only on request: librealsense's recorder
    stamps the wall clock into the file, so two renders of one seed never share it;
  * ``eval-independent --json``: per presentation, keyed by (seed, kind, operating point): decision
    and reasons exactly, the score within a tolerance;
  * ``calibrate --json``: per operating point the threshold (relative tolerance) and the counts
    exactly; AUC and EER (absolute tolerance), recordings and scored frames exactly;
  * an ensemble run remade from the recorded configs: every member's ``model.pt`` SHA-256 against
    the one the bundle's manifest records;
  * ``tools/heldout_gap.py --json`` (held-out gap): the same ensemble (its members' hashes) and
    scoring settings; per set the crop counts exactly, the ensemble's TPR and, for the student
    both reports scored (found by its file's SHA-256), its TPR, gap, bootstrap bounds and verdict.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from sdk.errors import InputValidationError

#: Scores may move in the last bits when ONNX Runtime picks other kernels on another CPU.
DEFAULT_SCORE_TOLERANCE = 1e-6
DEFAULT_THRESHOLD_RELATIVE_TOLERANCE = 1e-9
DEFAULT_METRIC_TOLERANCE = 1e-9

#: Exact per-point counts of a calibration report.
CALIBRATION_POINT_COUNTS = ("n_attack", "n_live", "n_attack_accepted", "n_live_rejected")


@dataclass(frozen=True)
class Difference:
    """One item whose reproduced value is not the reference's."""

    item: str
    field: str
    reference: Any
    reproduced: Any

    def to_dict(self) -> dict[str, Any]:
        return {"item": self.item, "field": self.field, "reference": self.reference, "reproduced": self.reproduced}


@dataclass(frozen=True)
class PartComparison:
    """A rerun report against its committed reference."""

    part: str
    reference: str
    compared: int  # items (recordings, presentations, figures) compared
    differences: tuple[Difference, ...]
    max_score_difference: float | None  # largest |score difference| over items scored in both

    @property
    def reproduced(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {"part": self.part, "reference": self.reference, "compared": self.compared,
                "reproduced": self.reproduced, "max_score_difference": self.max_score_difference,
                "differences": [d.to_dict() for d in self.differences]}


def load_report(path: str | Path) -> dict[str, Any]:
    """A JSON report as a dict; a clear error when it is missing or not a JSON object."""
    path = Path(path)
    if not path.is_file():
        raise InputValidationError(f"report {path} does not exist")
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputValidationError(f"report {path} is not JSON: {exc}") from exc
    if not isinstance(report, dict):
        raise InputValidationError(f"report {path} is not a JSON object")
    return report


def _records(report: Mapping[str, Any], list_key: str, key_fields: Sequence[str], what: str) -> dict[tuple, Mapping[str, Any]]:
    items = report.get(list_key)
    if not isinstance(items, list):
        raise InputValidationError(f"{what} report has no '{list_key}' list")
    keyed: dict[tuple, Mapping[str, Any]] = {}
    for item in items:
        missing = [f for f in key_fields if f not in item]
        if missing:
            raise InputValidationError(f"{what} report: an entry of '{list_key}' lacks {missing}")
        key = tuple(item[f] for f in key_fields)
        if key in keyed:
            raise InputValidationError(f"{what} report: two entries of '{list_key}' share the key {key}")
        keyed[key] = item
    return keyed


def _score_difference(reference: Any, reproduced: Any) -> float | None:
    """|a - b| of two scores; None when either is missing (no score: nothing was scored); NaN when
    only one is NaN."""
    if reference is None or reproduced is None:
        return None
    a, b = float(reference), float(reproduced)
    if math.isnan(a) and math.isnan(b):
        return 0.0  # both unscored in the same way
    return abs(a - b)


def compare_records(reference: Mapping[str, Any], reproduced: Mapping[str, Any], *, part: str, reference_name: str,
                    list_key: str, key_fields: Sequence[str], exact_fields: Sequence[str],
                    optional_fields: Sequence[str] = (), score_field: str = "score",
                    score_tolerance: float = DEFAULT_SCORE_TOLERANCE) -> PartComparison:
    """Per-item comparison of two reports that list items under ``list_key``.

    ``optional_fields`` are compared where both items carry a value (reports written before a
    field existed have none).
    """
    ref_items = _records(reference, list_key, key_fields, "reference")
    new_items = _records(reproduced, list_key, key_fields, "reproduced")
    differences: list[Difference] = []
    max_diff: float | None = None
    for key in sorted(set(ref_items) | set(new_items), key=repr):
        name = "/".join(str(k) for k in key)
        if key not in new_items:
            differences.append(Difference(name, "present", True, False))
            continue
        if key not in ref_items:
            differences.append(Difference(name, "present", False, True))
            continue
        ref, new = ref_items[key], new_items[key]
        for field in exact_fields:
            if ref.get(field) != new.get(field):
                differences.append(Difference(name, field, ref.get(field), new.get(field)))
        for field in optional_fields:
            if ref.get(field) is not None and new.get(field) is not None and ref[field] != new[field]:
                differences.append(Difference(name, field, ref[field], new[field]))
        ref_score, new_score = ref.get(score_field), new.get(score_field)
        diff = _score_difference(ref_score, new_score)
        if diff is None:
            if (ref_score is None) != (new_score is None):
                differences.append(Difference(name, score_field, ref_score, new_score))
        else:
            max_diff = diff if max_diff is None else max(max_diff, diff)
            if not diff <= score_tolerance:  # a NaN score is a difference too
                differences.append(Difference(name, score_field, ref_score, new_score))
    return PartComparison(part, reference_name, len(ref_items), tuple(differences), max_diff)


def compare_acceptance(reference: Mapping[str, Any], reproduced: Mapping[str, Any], *, reference_name: str = "",
                       score_tolerance: float = DEFAULT_SCORE_TOLERANCE,
                       compare_file_bytes: bool = False) -> PartComparison:
    """Two ``hil run --json`` reports: the same frames, decisions, reasons and scores.

    ``compare_file_bytes`` also compares the bag files' SHA-256 (the same files, not a rerun).
    """
    return compare_records(reference, reproduced, part="acceptance", reference_name=reference_name,
                           list_key="recordings", key_fields=("id",),
                           exact_fields=("expected", "decision", "reasons") + (("sha256",) if compare_file_bytes else ()),
                           optional_fields=("content_sha256",), score_tolerance=score_tolerance)


def compare_independent(reference: Mapping[str, Any], reproduced: Mapping[str, Any], *, reference_name: str = "",
                        score_tolerance: float = DEFAULT_SCORE_TOLERANCE) -> PartComparison:
    """Two ``eval-independent --json`` reports: the same presentations end the same way."""
    return compare_records(reference, reproduced, part="independent", reference_name=reference_name,
                           list_key="presentations", key_fields=("seed", "kind", "operating_point"),
                           exact_fields=("person", "decision", "reasons"), score_tolerance=score_tolerance)


def _close(reference: Any, reproduced: Any, *, relative: float = 0.0, absolute: float = 0.0) -> bool:
    if not isinstance(reference, (int, float)) or not isinstance(reproduced, (int, float)):
        return reference == reproduced
    if math.isnan(reference) or math.isnan(reproduced):
        return False
    return abs(reference - reproduced) <= max(absolute, relative * abs(reference))


def _dig(report: Mapping[str, Any], path: Iterable[str]) -> Any:
    value: Any = report
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def compare_calibration(reference: Mapping[str, Any], reproduced: Mapping[str, Any], *, reference_name: str = "",
                        threshold_relative_tolerance: float = DEFAULT_THRESHOLD_RELATIVE_TOLERANCE,
                        metric_tolerance: float = DEFAULT_METRIC_TOLERANCE) -> PartComparison:
    """Two ``calibrate --json`` reports: thresholds, counts, AUC/EER and what was scored."""
    ref_points = reference.get("operating_points")
    if not isinstance(ref_points, Mapping) or not ref_points:
        raise InputValidationError("reference calibration report has no operating points")
    new_points = reproduced.get("operating_points")
    if not isinstance(new_points, Mapping):
        raise InputValidationError("reproduced calibration report has no operating points")
    # (item, field, reference, reproduced, relative tolerance, absolute tolerance)
    figures: list[tuple[str, str, Any, Any, float, float]] = []
    for name in sorted(set(ref_points) | set(new_points)):
        if name not in new_points or name not in ref_points:
            figures.append((f"point {name}", "present", name in ref_points, name in new_points, 0.0, 0.0))
            continue
        ref, new = ref_points[name], new_points[name]
        figures.append((f"point {name}", "threshold", ref.get("threshold"), new.get("threshold"),
                        threshold_relative_tolerance, 0.0))
        figures += [(f"point {name}", field, ref.get(field), new.get(field), 0.0, 0.0) for field in CALIBRATION_POINT_COUNTS]
    for field in ("recordings", "failed_replay", "live", "attack"):
        figures.append(("run", field, reference.get(field), reproduced.get(field), 0.0, 0.0))
    figures.append(("run", "scored_frames", _dig(reference, ("gate_coverage", "scored_frames")),
                    _dig(reproduced, ("gate_coverage", "scored_frames")), 0.0, 0.0))
    for field in ("auc", "eer"):
        figures.append(("metrics", field, _dig(reference, ("metrics", field)), _dig(reproduced, ("metrics", field)),
                        0.0, metric_tolerance))
    differences = tuple(Difference(item, field, ref, new) for item, field, ref, new, rel, absolute in figures
                        if not _close(ref, new, relative=rel, absolute=absolute))
    return PartComparison("calibration", reference_name, len(figures), differences, None)


def compare_ensemble_members(manifest: Mapping[str, Any], run: str | Path, *, reference_name: str = "") -> PartComparison:
    """An ensemble run's members against the SHA-256 of their ``model.pt`` in a bundle manifest.

    Every member the manifest's provenance lists is an item: its file hash must equal the
    recorded one; a member whose ``model.pt`` is missing is reported as not present.
    """
    from sdk.engine.bundle import sha256_file

    members = _dig(manifest, ("provenance", "ensemble", "members"))
    if not isinstance(members, list) or not members:
        raise InputValidationError("the manifest's provenance lists no ensemble members")
    folder = Path(run) / "members"
    differences: list[Difference] = []
    for member in members:
        name, recorded = member.get("name"), member.get("model_sha256")
        if not name or not recorded:
            raise InputValidationError(f"a member of the manifest lacks its name or model_sha256: {member!r}")
        path = folder / name / "model.pt"
        if not path.is_file():
            differences.append(Difference(name, "present", True, False))
        elif (found := sha256_file(path)) != recorded:
            differences.append(Difference(name, "model_sha256", recorded, found))
    return PartComparison("ensemble", reference_name, len(members), tuple(differences), None)


def compare_counterfactual(reference: Mapping[str, Any], reproduced: Mapping[str, Any], *,
                           reference_name: str = "") -> PartComparison:
    """Two ``counterfactual --json`` reports: the same sample, base rates, flips per transform and
    scenario, and relief check, all exactly (they are counts of decisions on the same crops)."""
    figures: list[tuple[str, str, Any, Any]] = [
        ("run", field, reference.get(field), reproduced.get(field))
        for field in ("seed", "live_crops", "attack_crops", "base_bpcer", "base_apcer", "threshold", "relief_check")]
    ref_transforms = {t.get("transform"): t for t in reference.get("transforms") or []}
    new_transforms = {t.get("transform"): t for t in reproduced.get("transforms") or []}
    if not ref_transforms:
        raise InputValidationError("the reference counterfactual report lists no transforms")
    for name in sorted(set(ref_transforms) | set(new_transforms), key=str):
        ref, new = ref_transforms.get(name), new_transforms.get(name)
        if ref is None or new is None:
            figures.append((f"transform {name}", "present", ref is not None, new is not None))
            continue
        figures += [(f"transform {name}", field, ref.get(field), new.get(field))
                    for field in ("applies_to", "n", "flips", "live_to_not", "attack_to_live", "base_accepted",
                                  "by_scenario")]
    differences = tuple(Difference(item, field, ref, new) for item, field, ref, new in figures if ref != new)
    return PartComparison("counterfactual", reference_name, len(figures), differences, None)


#: Settings of a held-out gap report that must be equal for its figures to be comparable.
HELDOUT_SETTINGS = ("target_fpr", "tolerance_points", "resamples", "seed", "tta")
#: Per set and student: the figures compared (with DEFAULT_METRIC_TOLERANCE; the verdict exactly).
HELDOUT_STUDENT_FIGURES = ("tpr_model", "gap", "lower_95", "upper_95")


def compare_heldout_gap(reference: Mapping[str, Any], reproduced: Mapping[str, Any], *, reference_name: str = "",
                        metric_tolerance: float = DEFAULT_METRIC_TOLERANCE) -> PartComparison:
    """Two ``tools/heldout_gap.py --json`` reports of one student against one ensemble.

    The student is matched by the SHA-256 of the file that was scored (a bundle's ONNX graph, a
    checkpoint), not by its label, since labels are free text; the reproduced report must hold
    exactly one student, and the reference must have scored that same file.
    """
    students = reproduced.get("students")
    if not isinstance(students, Mapping) or len(students) != 1:
        raise InputValidationError("the reproduced held-out gap report must score exactly one student")
    (new_label, new_student), = students.items()
    digest = new_student.get("model_sha256")
    matches = [label for label, record in (reference.get("students") or {}).items()
               if isinstance(record, Mapping) and record.get("model_sha256") == digest]
    if not matches:
        raise InputValidationError(f"the reference held-out gap report scored no model with SHA-256 {digest}")
    ref_label = matches[0]
    # (item, field, reference, reproduced, absolute tolerance)
    figures: list[tuple[str, str, Any, Any, float]] = [
        ("run", field, reference.get(field), reproduced.get(field), 0.0) for field in HELDOUT_SETTINGS]
    members = [(m.get("name"), m.get("model_sha256")) for m in reference.get("ensemble_members") or []]
    figures.append(("ensemble", "members", members,
                    [(m.get("name"), m.get("model_sha256")) for m in reproduced.get("ensemble_members") or []], 0.0))
    ref_sets, new_sets = reference.get("sets") or {}, reproduced.get("sets") or {}
    if not ref_sets:
        raise InputValidationError("the reference held-out gap report has no sets")
    for name in sorted(set(ref_sets) | set(new_sets)):
        ref, new = ref_sets.get(name), new_sets.get(name)
        if ref is None or new is None:
            figures.append((f"set {name}", "present", ref is not None, new is not None, 0.0))
            continue
        figures += [(f"set {name}", field, ref.get(field), new.get(field), 0.0) for field in ("n_live", "n_attack", "attack_types")]
        figures.append((f"set {name}", "tpr ensemble", _dig(ref, ("tpr", "ensemble")), _dig(new, ("tpr", "ensemble")),
                        metric_tolerance))
        ref_gap, new_gap = _dig(ref, ("gaps", ref_label)) or {}, _dig(new, ("gaps", new_label)) or {}
        figures += [(f"set {name}", field, ref_gap.get(field), new_gap.get(field), metric_tolerance)
                    for field in HELDOUT_STUDENT_FIGURES]
        figures.append((f"set {name}", "verdict", ref_gap.get("verdict"), new_gap.get("verdict"), 0.0))
    differences = tuple(Difference(item, field, ref, new) for item, field, ref, new, absolute in figures
                        if not _close(ref, new, absolute=absolute))
    return PartComparison("heldout", reference_name, len(figures), differences, None)
