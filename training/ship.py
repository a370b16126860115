"""Calibrate, evaluate and package a trained network as an SDK model bundle.

    trained model.pt -> scores on the calibration list -> operating points at target APCERs
                     -> scores on held-out test lists -> metrics per attack type
                     -> ONNX (checked against torch on real crops) -> bundle with manifest

`sr300-liveness export` and tools/make_shipped_model.py both call `package_model`.
"""
from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from calibration.metrics import evaluate
from calibration.threshold import threshold_for_apcer, threshold_with_margin
from sdk.errors import InputValidationError
from sdk.types import FaceCrops

#: Operating points written into a bundle: name -> (target APCER, BPCER budget or None) on the
#: calibration set. With a budget the threshold is centred in the interval meeting both
#: (calibration.threshold.threshold_with_margin); without, it is the lowest meeting the APCER.
DEFAULT_TARGETS: Mapping[str, tuple[float, float | None]] = {
    "balanced": (1e-2, 1e-2),
    "apcer_1e-2": (1e-2, None),
    "apcer_1e-3": (1e-3, None),
}
DEFAULT_POINT = "balanced"


@dataclass(frozen=True)
class ScoredList:
    scores: np.ndarray  # mean P(live) of crop and flip
    labels: np.ndarray
    scenarios: list[str]  # per row; "" where no metadata names it
    list_path: Path


def _metadata_scenarios(root: Path, list_path: Path) -> list[str]:
    """Scenario name per list row from a synth-dataset metadata.csv (empty strings otherwise)."""
    rows = [line.split() for line in list_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    meta = root / "metadata.csv"
    if not meta.is_file():
        return [""] * len(rows)
    with open(meta, newline="", encoding="utf-8") as handle:
        by_color = {r["color"]: r["scenario"] for r in csv.DictReader(handle)}
    return [by_color.get(r[0], "") for r in rows]


def score_list(model: Any, root: str | os.PathLike[str], list_name: str, *, batch_size: int = 64) -> ScoredList:
    from training.train import predict_views

    root_path = Path(root)
    list_path = root_path / list_name if not Path(list_name).is_absolute() else Path(list_name)
    if not list_path.is_file():
        raise InputValidationError(f"{list_path}: list file not found")
    views, labels = predict_views(model, list_path, root=root_path, batch_size=batch_size)
    return ScoredList(views.mean(axis=1), labels.astype(np.int64), _metadata_scenarios(root_path, list_path), list_path)


def _check_crops(root: Path, list_path: Path, count: int = 8) -> list[FaceCrops]:
    """Real crops (centre 112 of the stored regions) to compare ONNX with torch on."""
    from training.data.casia import load_model_crops, read_list

    return [load_model_crops(root, sample) for sample in read_list(list_path)[:count]]


def package_model(
    model_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    data_root: str | os.PathLike[str],
    calibration_list: str,
    test_lists: Sequence[str] = (),
    name: str,
    version: str,
    targets: Mapping[str, tuple[float, float | None]] = DEFAULT_TARGETS,
    default_point: str = DEFAULT_POINT,
    provenance: Mapping[str, Any] | None = None,
    log=print,
) -> tuple[Any, dict[str, Any]]:
    """Calibrate on `calibration_list`, evaluate on `test_lists`, export the bundle. Returns (bundle, report)."""
    from training.export import export_bundle
    from training.train import load_trained_model

    if default_point not in targets:
        raise InputValidationError(f"default operating point {default_point!r} is not among {sorted(targets)}")
    root = Path(data_root)
    started = time.perf_counter()
    model = load_trained_model(model_path)
    calib = score_list(model, root, calibration_list)
    points = {}
    for point_name, (target, max_bpcer) in targets.items():
        if max_bpcer is None:
            point = threshold_for_apcer(calib.scores, calib.labels, target, name=point_name)
        else:
            point = threshold_with_margin(calib.scores, calib.labels, target, max_bpcer, name=point_name)
        if not point.threshold <= 1.0:
            raise InputValidationError(f"operating point {point_name}: no threshold in [0, 1] meets APCER {target}")
        points[point_name] = point.to_dict()
        log(f"operating point {point_name}: threshold {point.threshold:.6f}  APCER {point.apcer:.4f} "
            f"(95% upper {point.apcer_upper_95:.4f})  BPCER {point.bpcer:.4f} on {calib.list_path.name}")
    threshold = points[default_point]["threshold"]
    metrics: dict[str, Any] = {"calibration": {"list": calibration_list, **evaluate(calib.scores, calib.labels, threshold).to_json_dict()}}
    if test_lists:
        parts = [score_list(model, root, name_) for name_ in test_lists]
        scores = np.concatenate([p.scores for p in parts])
        labels = np.concatenate([p.labels for p in parts])
        scenarios = sum((p.scenarios for p in parts), [])
        attack_types = np.array([s if lab == 0 else "" for s, lab in zip(scenarios, labels)], dtype=object)
        result = evaluate(scores, labels, threshold, attack_types=attack_types if all(attack_types[labels == 0]) else None)
        metrics["test"] = {"lists": list(test_lists), "operating_point": default_point, **result.to_json_dict()}
        log(f"held-out test ({len(scores)} samples): APCER {result.apcer:.4f} BPCER {result.bpcer:.4f} "
            f"TPR@1e-3 {result.tpr_at_fpr['1e-3'].empirical:.4f}")
    crops = _check_crops(root, calib.list_path)
    bundle = export_bundle(
        model,
        out_dir,
        name=name,
        version=version,
        operating_points=points,
        default_operating_point=default_point,
        metrics=metrics,
        provenance={**dict(provenance or {}), "model_file": str(model_path), "data_root": str(root),
                    "calibration_list": calibration_list, "test_lists": list(test_lists)},
        check_crops=crops,
    )
    report = {"bundle": str(bundle.path), "seconds": round(time.perf_counter() - started, 1),
              "operating_points": points, "metrics": metrics}
    return bundle, report


def write_report(path: str | os.PathLike[str], report: Mapping[str, Any]) -> None:
    Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
