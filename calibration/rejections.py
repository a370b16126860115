"""Why live checks were rejected at an operating point, and how the rates split by condition.

A BPCER mixes two different failures, and they call for different fixes:

* **score**: the check reached a decision on the model's scores and fell short
  (0 < check score < threshold). A lower threshold, or a better model, accepts it.
* **never live**: no threshold accepts the check (check score 0.0). The quality gates, a
  missing modality or a spoof cue kept it from ever having ``min_frames_live`` consecutive
  scored frames; the model's weights cannot change that. The frames' gate reasons say which.

Recordings may name the capture conditions they were made under (the simulator's sidecars
list the held-out families a session belongs to: ``holdout_families``; a rig may write
``conditions``). Rates are given per condition, and for "nominal" (recordings naming none),
so a figure says what it was measured on: a session can name several conditions and then
counts in each.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from calibration.metrics import clopper_pearson_upper

#: The sidecar keys whose string lists name a recording's capture conditions.
CONDITION_KEYS = ("conditions", "holdout_families")
#: Condition label of recordings that name none.
NOMINAL = "nominal"


def conditions_from_sidecar(data: Mapping[str, Any]) -> tuple[str, ...]:
    """Sorted, de-duplicated condition names of one sidecar (non-string entries are ignored)."""
    names: set[str] = set()
    for key in CONDITION_KEYS:
        value = data.get(key)
        if isinstance(value, (list, tuple)):
            names.update(str(v) for v in value if isinstance(v, str) and v)
    return tuple(sorted(names))


def _dominant_reason(row: Mapping[str, Any]) -> str:
    """The gate reason most frames of a check carried ("none" if no frame carried one)."""
    if row.get("error"):
        return "REPLAY_ERROR"
    counts = Counter(reason for outcome in row.get("outcomes") or () for reason in outcome.get("reasons") or ())
    if not counts:
        return "none"
    # ties broken by name so the report is reproducible
    return min(counts, key=lambda reason: (-counts[reason], reason))


def live_rejections(rows: Sequence[Mapping[str, Any]], threshold: float) -> dict[str, Any]:
    """Live checks rejected at ``threshold``, split into "score" and "never_live" (module doc).

    ``rows`` are calibration rows (label, check_score, outcomes). ``never_live_by_reason``
    counts each never-live check once, under the gate reason most of its frames carried."""
    live = [row for row in rows if int(row["label"]) == 1]
    by_score = [row for row in live if 0.0 < float(row["check_score"]) < threshold]
    never = [row for row in live if float(row["check_score"]) <= 0.0]
    rejected = len(by_score) + len(never)
    reasons = Counter(_dominant_reason(row) for row in never)
    return {
        "threshold": float(threshold),
        "n_live": len(live),
        "n_rejected": rejected,
        "score": len(by_score),
        "never_live": len(never),
        "never_live_by_reason": dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
        "score_recordings": sorted(str(row.get("recording", "")) for row in by_score),
        "never_live_recordings": sorted(str(row.get("recording", "")) for row in never),
    }


def _rate(numerator: int, total: int) -> dict[str, Any]:
    return {"n": total, "count": numerator, "rate": (numerator / total) if total else None,
            "upper_95": clopper_pearson_upper(numerator, total) if total else None}


def per_condition(rows: Sequence[Mapping[str, Any]], threshold: float) -> dict[str, dict[str, Any]]:
    """{condition: {"live_rejected": rate, "attack_accepted": rate}} at ``threshold``.

    A check is accepted exactly when its check score is >= threshold. A rate is
    ``{"n", "count", "rate", "upper_95"}`` (one-sided 95 % Clopper-Pearson); conditions
    without live or attack recordings have n 0 and rate None there."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        for name in tuple(row.get("conditions") or ()) or (NOMINAL,):
            groups.setdefault(str(name), []).append(row)
    table: dict[str, dict[str, Any]] = {}
    for name in sorted(groups, key=lambda n: (n != NOMINAL, n)):
        members = groups[name]
        live = [r for r in members if int(r["label"]) == 1]
        attack = [r for r in members if int(r["label"]) == 0]
        table[name] = {
            "live_rejected": _rate(sum(float(r["check_score"]) < threshold for r in live), len(live)),
            "attack_accepted": _rate(sum(float(r["check_score"]) >= threshold for r in attack), len(attack)),
        }
    return table


def breakdown(rows: Sequence[Mapping[str, Any]], threshold: float) -> dict[str, Any]:
    """Both views at one threshold (what calibrate stores per operating point)."""
    return {"live_rejections": live_rejections(rows, threshold), "per_condition": per_condition(rows, threshold)}


def read_report_rows(report_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of a calibration report's checks.jsonl, with conditions filled in from each
    recording's sidecar where the row predates them (reports written before this module)."""
    path = Path(report_dir) / "checks.jsonl"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if "conditions" not in row:
            sidecar = Path(str(row.get("path", ""))).with_suffix(".json")
            data = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
            row["conditions"] = list(conditions_from_sidecar(data if isinstance(data, dict) else {}))
        rows.append(row)
    return rows


def format_breakdown(result: Mapping[str, Any]) -> str:
    """Plain text of ``breakdown``: the split of live rejections, then rates per condition."""
    rej = result["live_rejections"]
    lines = [f"live rejected {rej['n_rejected']}/{rej['n_live']} at threshold {rej['threshold']:.6f}: "
             f"{rej['score']} on the model's score, {rej['never_live']} never live (gates, missing modality, spoof cues)"]
    if rej["never_live_by_reason"]:
        lines.append("    never live, by the reason most frames carried: "
                     + ", ".join(f"{k} {v}" for k, v in rej["never_live_by_reason"].items()))
    for name, rates in result["per_condition"].items():
        parts = []
        for key, label in (("live_rejected", "live rejected"), ("attack_accepted", "attacks accepted")):
            rate = rates[key]
            if rate["n"]:
                parts.append(f"{label} {rate['count']}/{rate['n']} (95% upper {rate['upper_95']:.3f})")
        lines.append(f"    {name:<16s} " + "; ".join(parts))
    return "\n".join(lines)


def summarise_rows(rows: Iterable[Mapping[str, Any]], thresholds: Mapping[str, float]) -> dict[str, Any]:
    """{point name: breakdown} for several operating points."""
    items = list(rows)
    return {name: breakdown(items, threshold) for name, threshold in thresholds.items()}


__all__ = ["CONDITION_KEYS", "NOMINAL", "breakdown", "conditions_from_sidecar", "format_breakdown",
           "live_rejections", "per_condition", "read_report_rows", "summarise_rows"]
