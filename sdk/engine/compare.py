"""Parity between engines or precisions: score differences and decision agreement per operating point."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from sdk.engine.bundle import OperatingPointSpec
from sdk.validate import check_array


def _rates(scores: np.ndarray, labels: np.ndarray | None, threshold: float) -> dict[str, Any]:
    if labels is None:
        return {}
    live, attack = labels == 1, labels == 0
    accepted = scores >= threshold
    tpr = float(accepted[live].mean()) if live.any() else None
    apcer = float(accepted[attack].mean()) if attack.any() else None
    return {"tpr": tpr, "bpcer": None if tpr is None else 1.0 - tpr, "apcer": apcer,
            "n_live": int(live.sum()), "n_attack": int(attack.sum())}


def compare_scores(
    reference: Any,
    other: Any,
    points: Mapping[str, OperatingPointSpec],
    labels: Any | None = None,
) -> dict[str, Any]:
    """How `other` differs from `reference` (both P(live) on the same crops).

    Decisions are LIVE when P(live) >= threshold (the session's rule). With labels, each point
    also gets TPR / APCER of both and the TPR change in percentage points.
    """
    ref = check_array("reference scores", np.asarray(reference, dtype=np.float64), shape=(None,), finite=True)
    oth = check_array("compared scores", np.asarray(other, dtype=np.float64), shape=(ref.shape[0],), finite=True)
    lab = None if labels is None else np.asarray(labels).reshape(-1)
    diff = np.abs(ref - oth)
    decisions: dict[str, Any] = {}
    for name, point in points.items():
        ref_live, oth_live = ref >= point.threshold, oth >= point.threshold
        disagreements = int((ref_live != oth_live).sum())
        entry: dict[str, Any] = {
            "threshold": point.threshold,
            "agree": disagreements == 0,
            "disagreements": disagreements,
            "agreement": 1.0 - disagreements / max(1, ref.shape[0]),
            # the closest score to the threshold says how much margin the agreement had
            "min_margin_reference": float(np.min(np.abs(ref - point.threshold))) if ref.size else None,
        }
        if lab is not None:
            rates_ref, rates_oth = _rates(ref, lab, point.threshold), _rates(oth, lab, point.threshold)
            entry["reference"], entry["compared"] = rates_ref, rates_oth
            if rates_ref.get("tpr") is not None:
                entry["tpr_change_points"] = round(100.0 * (rates_oth["tpr"] - rates_ref["tpr"]), 4)
        decisions[name] = entry
    return {
        "n": int(ref.shape[0]),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "decisions": decisions,
        "all_agree": all(entry["agree"] for entry in decisions.values()),
    }


def bundle_points(bundle: Any) -> dict[str, OperatingPointSpec]:
    """Every operating point of a bundle, by name."""
    return {name: bundle.operating_point(name) for name in bundle.manifest["operating_points"]["points"]}
