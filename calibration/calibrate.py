"""`sr300-liveness calibrate`: operating points set on what the device decides.

    labelled recordings -> LivenessSession per-frame path -> decision rule -> one check score each
      -> thresholds at target APCERs (only targets the attack count supports: 3/t)
      -> a new bundle: the same weights (byte for byte), new operating points, a new version,
         provenance (recordings' hashes, camera serials, counts, the decision rule)
      -> a report beside it: one JSON line per recording with every frame's outcome

A threshold t accepts a check exactly when its check score is >= t (sdk.fusion.check_score),
so each point's APCER and BPCER are the shares of attack / live checks the device would have
accepted / rejected at it. Targets are held to the 95 % Clopper-Pearson upper bound of the
APCER ("upper_95"), not the empirical rate: a point named for APCER 1 % can claim it.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from calibration.envelope import format_coverage, gate_coverage
from calibration.metrics import clopper_pearson_upper, evaluate
from calibration.rejections import breakdown, format_breakdown
from calibration.recordings import Recording, discover, finished_rows, rule_fingerprint, score_recordings
from calibration.threshold import check_support, threshold_for_apcer, threshold_with_margin
from sdk.engine.bundle import ModelBundle, next_minor_version, parse_version, write_bundle
from sdk.errors import InputValidationError

#: name -> (target APCER, BPCER budget or None). With a budget the threshold is centred (logit
#: scale) between the lowest one meeting the APCER bound and the highest meeting the budget.
DEFAULT_TARGETS: Mapping[str, tuple[float, float | None]] = {
    "balanced": (1e-2, 5e-2),
    "apcer_1e-2": (1e-2, None),
}
DEFAULT_POINT = "balanced"
CHECKS_FILE = "checks.jsonl"
SUMMARY_FILE = "summary.json"


def parse_targets(texts: Sequence[str]) -> dict[str, tuple[float, float | None]]:
    """["balanced=0.01,0.05", "apcer_1e-2=0.01"] -> {name: (apcer, bpcer budget or None)}."""
    targets: dict[str, tuple[float, float | None]] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        apcer, _, bpcer = value.partition(",")
        try:
            if not name or not sep:
                raise ValueError
            targets[name] = (float(apcer), float(bpcer) if bpcer else None)
        except ValueError:
            raise InputValidationError(f"--target {text!r} must look like NAME=APCER or NAME=APCER,BPCER") from None
        if not 0.0 < targets[name][0] < 1.0:
            raise InputValidationError(f"--target {text!r}: the APCER must lie in (0, 1)")
    return targets


def _load_cached(report_dir: Path, fingerprint: str) -> dict[str, dict[str, Any]]:
    """Rows of an earlier (possibly killed) run with the same model and rule, by recording hash."""
    return {row["sha256"]: row for row in finished_rows(report_dir / CHECKS_FILE, fingerprint)}


def score_all(recordings: list[Recording], bundle: ModelBundle, config: Any, report_dir: Path, *,
              max_frames: int | None = None, workers: int = 1, progress: bool = True,
              log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Check rows for every recording; rows already in report_dir/checks.jsonl are reused and
    new ones appended as they finish, so a killed run loses nothing."""
    fingerprint = rule_fingerprint(bundle.model_sha256, config.decision_rule(), max_frames)
    report_dir.mkdir(parents=True, exist_ok=True)
    cached = _load_cached(report_dir, fingerprint)
    todo = [r for r in recordings if r.sha256 not in cached]
    if cached:
        log(f"reusing {len(recordings) - len(todo)} check scores from {report_dir / CHECKS_FILE}")
        # keep only the reusable rows (a different model's rows would confuse a reader)
        kept = [json.dumps(row) for row in cached.values()]
        (report_dir / CHECKS_FILE).write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def bar(items: Any, total: int) -> Any:
        if not progress:
            return items
        from tqdm import tqdm

        return tqdm(items, total=total, unit="recording", desc="calibrate", file=sys.stderr)

    with open(report_dir / CHECKS_FILE, "a", encoding="utf-8") as handle:
        for row in score_recordings(todo, bundle.path, config, max_frames=max_frames, workers=workers, progress=bar):
            row["fingerprint"] = fingerprint
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            cached[row["sha256"]] = row
    # Labels, species and serials are the recordings' (they may have been relabelled since);
    # only the replay result is reused.
    rows = []
    for recording in recordings:
        row = dict(cached[recording.sha256])
        row.update(label=recording.label, species=recording.species, path=str(recording.path),
                   recording=recording.path.name, serial=recording.serial or row.get("serial", ""),
                   conditions=list(recording.conditions))
        rows.append(row)
    return rows


def calibrate(
    source: str | os.PathLike[str] | ModelBundle | None,
    bags: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    targets: Mapping[str, tuple[float, float | None]] | None = None,
    default_point: str | None = None,
    version: str | None = None,
    name: str | None = None,
    labels_file: str | os.PathLike[str] | None = None,
    report_dir: str | os.PathLike[str] | None = None,
    config: Any = None,
    max_frames: int | None = None,
    workers: int = 1,
    progress: bool = True,
    command: str = "",
    log: Callable[[str], None] = print,
) -> tuple[ModelBundle, dict[str, Any]]:
    """Calibrate ``source`` (a bundle; None: the shipped one) on labelled recordings and write a
    new bundle at ``out``. Returns (bundle, summary). Refuses (UnsupportedOperatingPointError)
    any target the attack checks cannot support, before anything is replayed."""
    from sdk.session import SessionConfig, with_bundle_gates

    started = time.perf_counter()
    parent = source if isinstance(source, ModelBundle) else ModelBundle.load(source)
    explicit = targets is not None
    targets = dict(targets if explicit else DEFAULT_TARGETS)
    default_point = default_point or (DEFAULT_POINT if DEFAULT_POINT in targets else next(iter(targets), ""))
    if default_point not in targets:
        raise InputValidationError(f"default operating point {default_point!r} is not among {sorted(targets)}")
    version = version or next_minor_version(parent.version)
    parse_version(version)
    if version == parent.version:
        raise InputValidationError(f"the calibrated bundle needs a new version (the source is {parent.version})")
    out_path = Path(out)
    if out_path.resolve() == parent.path.resolve():
        raise InputValidationError("--out must differ from the source bundle (it is read while writing)")
    # Without gates of its own, a recalibration keeps the parent's (what its points were set with).
    config = with_bundle_gates(config or SessionConfig(), parent)
    recordings = discover(bags, labels_file)
    n_attack = sum(r.label == 0 for r in recordings)
    n_live = sum(r.label == 1 for r in recordings)
    if n_live == 0 or n_attack == 0:
        raise InputValidationError(f"calibration needs live and attack recordings; found {n_live} live, {n_attack} attack")
    # Refuse unsupported targets now, not after minutes of replay.
    for point_name, (apcer, _) in targets.items():
        check_support(point_name, apcer, n_attack)
    reports = Path(report_dir) if report_dir else out_path.with_name(out_path.name + "_calibration")
    log(f"calibrating {parent.name} {parent.version} on {len(recordings)} recordings ({n_live} live, {n_attack} attack)")
    rows = score_all(recordings, parent, config, reports, max_frames=max_frames, workers=workers, progress=progress, log=log)

    broken = [row for row in rows if row.get("error")]
    for row in broken:
        log(f"skipped (replay failed): {row['path']}: {row['error']}")
    good = [row for row in rows if not row.get("error")]
    scores = np.array([row["check_score"] for row in good], dtype=np.float64)
    labels = np.array([row["label"] for row in good], dtype=np.int64)
    species = np.array([row["species"] for row in good], dtype=object)
    n_attack, n_live = int((labels == 0).sum()), int((labels == 1).sum())
    if n_live == 0 or n_attack == 0:
        raise InputValidationError("no usable live or attack recording after replay (see the report)")
    points: dict[str, dict[str, Any]] = {}
    for point_name, (apcer, budget) in targets.items():
        if budget is None:
            point = threshold_for_apcer(scores, labels, apcer, point_name, bound="upper_95", require_support=True)
        else:
            point = threshold_with_margin(scores, labels, apcer, budget, point_name, bound="upper_95", require_support=True)
        if not 0.0 < point.threshold <= 1.0:
            raise InputValidationError(f"operating point {point_name}: no threshold in (0, 1] meets APCER {apcer} "
                                       f"(an attack check is LIVE even at threshold 1)")
        data = point.to_dict()
        data["apcer_per_species"] = {k: v.to_json_dict() for k, v in evaluate(
            scores, labels, point.threshold, attack_types=species).apcer_per_attack_type.items()}
        data["set_on"] = "fused per-check scores of recordings (sdk.fusion.check_score)"
        points[point_name] = data
        log(f"operating point {point_name}: threshold {point.threshold:.6f}  APCER {point.apcer:.4f} "
            f"({point.n_attack_accepted}/{point.n_attack}, 95% upper {point.apcer_upper_95:.4f})  "
            f"BPCER {point.bpcer:.4f} ({point.n_live_rejected}/{point.n_live}, 95% upper {point.bpcer_upper_95:.4f})")
    threshold = points[default_point]["threshold"]
    result = evaluate(scores, labels, threshold, attack_types=species)
    coverage = gate_coverage(good, config.decision_rule()["quality"])
    log(format_coverage(coverage))
    counts = Counter((row["label"], row["species"]) for row in good)
    calibration_info = {
        "made_by": "sr300-liveness calibrate",
        "command": command,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "parent": {"name": parent.name, "version": parent.version, "model_sha256": parent.model_sha256},
        "score": "check score: the highest threshold at which the session's check is LIVE on the recording",
        "decision_rule": config.decision_rule(),
        "max_frames_per_check": max_frames,
        "bound": "upper_95 (one-sided 95% Clopper-Pearson upper bound of the APCER meets the target)",
        "counts": {"recordings": len(rows), "used": len(good), "failed_replay": len(broken),
                   "live": n_live, "attack": n_attack,
                   "per_species": {f"{'live' if lab == 1 else 'attack'}:{sp}": n for (lab, sp), n in sorted(counts.items())},
                   "frames": int(sum(row["frames"] for row in good)),
                   "scored_frames": int(sum(row["scored_frames"] for row in good))},
        "camera_serials": sorted({row["serial"] for row in good if row["serial"]}),
        # per gate: the band of values it lets through that no scored calibration frame had
        "gate_coverage": {"scored_frames": coverage["scored_frames"],
                          "gates": {k: {"limit": g["limit"], "live_reached": g["live_reached"],
                                        "attack_reached": g["attack_reached"], "uncovered": g["uncovered"]}
                                    for k, g in coverage["gates"].items()}},
        "recordings_sha256": {row["recording"]: row["sha256"] for row in good},
    }
    provenance = dict(parent.provenance)
    if "calibration" in provenance and not isinstance(provenance["calibration"], Mapping):
        provenance["crop_calibration"] = provenance.pop("calibration")  # the parent's crop-level note
    provenance["calibration"] = calibration_info
    metrics = {"calibration_checks": {"operating_point": default_point, **result.to_json_dict()}}
    for key, value in (parent.manifest.get("metrics") or {}).items():
        metrics[f"crops_{key}" if not key.startswith("crops_") else key] = value
    with tempfile.TemporaryDirectory() as scratch:
        # The weights are copied byte for byte: calibration never changes a model.
        model_copy = Path(scratch) / "model.onnx"
        shutil.copyfile(parent.model_path, model_copy)
        bundle = write_bundle(out_path, model_copy, name=name or parent.name, version=version,
                              operating_points=points, default_operating_point=default_point,
                              metrics=metrics, provenance=provenance)
    if bundle.model_sha256 != parent.model_sha256:
        raise InputValidationError("the copied weights differ from the source bundle's (disk error?)")
    summary = {
        "bundle": str(bundle.path), "name": bundle.name, "version": bundle.version, "parent_version": parent.version,
        "report": str(reports), "seconds": round(time.perf_counter() - started, 1),
        "recordings": len(rows), "failed_replay": len(broken), "live": n_live, "attack": n_attack,
        "default_point": default_point, "operating_points": points, "metrics": metrics["calibration_checks"],
        # the report's, not the manifest's: which live checks failed and why, per condition
        "breakdown": {point_name: breakdown(good, point["threshold"]) for point_name, point in points.items()},
        "gate_coverage": coverage,
    }
    (reports / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return bundle, summary


def per_species_table(summary: Mapping[str, Any]) -> str:
    """Plain-text table of every point's APCER per species (with bounds) and BPCER."""
    lines = []
    for name, point in summary["operating_points"].items():
        lines.append(f"{name}: threshold {point['threshold']:.6f}  BPCER {point['bpcer']:.4f} "
                     f"({point['n_live_rejected']}/{point['n_live']}, 95% upper {point['bpcer_upper_95']:.4f})")
        species = point.get("apcer_per_species", {})
        worst = max(species, key=lambda k: species[k]["apcer"]) if species else None
        for key, rate in species.items():
            mark = "  <- worst" if key == worst else ""
            lines.append(f"    {key:<28s} APCER {rate['apcer']:.4f} ({rate['n_accepted']}/{rate['n_attack']}, "
                         f"95% upper {rate['apcer_upper_95']:.4f}){mark}")
        split = (summary.get("breakdown") or {}).get(name)
        if split:
            lines.append("    " + format_breakdown(split).replace("\n", "\n    "))
    return "\n".join(lines)


__all__ = ["DEFAULT_POINT", "DEFAULT_TARGETS", "calibrate", "clopper_pearson_upper", "parse_targets", "per_species_table"]
