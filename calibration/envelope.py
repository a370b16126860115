"""Which part of each quality gate's range the calibration's scored frames covered.

A calibrated threshold is evidence only for frames like the ones it was set on. The gates
decide which frames get scored at all, so between the most extreme value a scored
calibration frame reached and the gate's own limit lies a band where the device scores
frames that no calibration frame resembled. Example: the default colour gate scores faces
with up to 25 % saturated pixels, but no scored frame of calib3 (sim) had more than 10 %; a
frame at 30 % is refused by the gate, one at 20 % is scored under a threshold that never saw
such a face. This module measures those bands from the calibration report's rows (each
frame's ``quality`` measurements, see ``sdk.types.FrameOutcome``); it changes no decision.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np

from sdk.quality import GATES, Gate  # the gate table is the SDK's; re-exported for callers here

__all__ = ["GATES", "Gate", "format_coverage", "gate_coverage", "measurement_envelope"]


_CLASSES = {1: "live", 0: "attack"}
#: Share of the scored frames' range within which a limit counts as reached.
UNCOVERED_TOLERANCE = 0.02


def _scored_measurements(rows: Iterable[Mapping[str, Any]]) -> tuple[dict[str, dict[str, list[float]]], int, int]:
    """{class: {measurement: values over scored frames}}, frames scored, scored frames without measurements."""
    values: dict[str, dict[str, list[float]]] = {name: {} for name in _CLASSES.values()}
    scored = unmeasured = 0
    for row in rows:
        cls = _CLASSES.get(int(row.get("label", -1)))
        if cls is None or row.get("error"):
            continue
        for outcome in row.get("outcomes") or ():
            if outcome.get("score") is None:
                continue
            scored += 1
            measured = outcome.get("quality") or {}
            if not measured:
                unmeasured += 1
            for key, value in measured.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    values[cls].setdefault(key, []).append(float(value))
    return values, scored, unmeasured


def _stats(values: list[float]) -> dict[str, float]:
    data = np.asarray(values, dtype=np.float64)
    p01, p50, p99 = np.percentile(data, [1, 50, 99])
    return {"n": int(data.size), "min": float(data.min()), "p01": float(p01), "p50": float(p50),
            "p99": float(p99), "max": float(data.max())}


def measurement_envelope(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Distribution (n, min, 1st/50th/99th percentile, max) of every gate measurement over the
    scored frames of live and of attack checks."""
    values, scored, unmeasured = _scored_measurements(rows)
    keys = sorted({gate.measurement for gate in GATES})
    return {"scored_frames": scored, "scored_frames_without_measurements": unmeasured,
            **{cls: {key: _stats(per[key]) for key in keys if per.get(key)} for cls, per in values.items()}}


def gate_coverage(rows: Iterable[Mapping[str, Any]], quality: Mapping[str, Any]) -> dict[str, Any]:
    """Per gate of ``quality`` (a decision rule's "quality" entry or QualityConfig.to_dict()):
    its limit, the most extreme value scored live / attack frames reached, and ``uncovered``,
    the band [extreme, limit] of values the gate lets through but no scored calibration frame
    had (None when the scored frames come within UNCOVERED_TOLERANCE of their own range of the
    limit, or when nothing was measured)."""
    envelope = measurement_envelope(rows)
    gates: dict[str, Any] = {}
    for gate in GATES:
        limit = quality.get(gate.field)
        if not isinstance(limit, (int, float)) or isinstance(limit, bool):
            continue
        side = "max" if gate.ceiling else "min"
        reached = {cls: envelope[cls][gate.measurement][side] for cls in _CLASSES.values()
                   if gate.measurement in envelope[cls]}
        entry: dict[str, Any] = {"measurement": gate.measurement, "limit": float(limit),
                                 "fails": "above" if gate.ceiling else "below",
                                 "live_reached": reached.get("live"), "attack_reached": reached.get("attack"),
                                 "uncovered": None}
        if reached:
            edge = max(reached.values()) if gate.ceiling else min(reached.values())
            # A gap within 2 % of the range the scored frames spanned is covered: frames at 0.498
            # say as much about a 0.5 limit as frames at 0.5 would.
            spread = max(envelope[c][gate.measurement]["max"] for c in reached) - \
                min(envelope[c][gate.measurement]["min"] for c in reached)
            gap = (limit - edge) if gate.ceiling else (edge - limit)
            if gap > UNCOVERED_TOLERANCE * spread:
                entry["uncovered"] = sorted((float(edge), float(limit)))
        gates[gate.field] = entry
    return {"scored_frames": envelope["scored_frames"],
            "scored_frames_without_measurements": envelope["scored_frames_without_measurements"],
            "gates": gates, "envelope": {cls: envelope[cls] for cls in _CLASSES.values()}}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def format_coverage(coverage: Mapping[str, Any]) -> str:
    """Plain-text table: one line per gate, the uncovered band where there is one."""
    scored = coverage.get("scored_frames", 0)
    missing = coverage.get("scored_frames_without_measurements", 0)
    if scored == 0:
        return "gate coverage: no scored frames"
    if missing == scored:
        return ("gate coverage: not measured (the report's rows were replayed before frames carried their "
                "gate measurements; delete its checks.jsonl to replay them)")
    lines = [f"gate coverage over {scored} scored frames (live / attack: most extreme value scored; "
             "uncovered: let through by the gate, never seen by calibration)"]
    if missing:
        lines.append(f"    ({missing} scored frames carry no measurements and are left out)")
    for name, gate in coverage.get("gates", {}).items():
        band = gate["uncovered"]
        note = f"  uncovered {_fmt(band[0])}..{_fmt(band[1])}" if band else ""
        lines.append(f"    {name:<28s} {'<=' if gate['fails'] == 'above' else '>='} {gate['limit']:<8.4g} "
                     f"live {_fmt(gate['live_reached']):>8s}  attack {_fmt(gate['attack_reached']):>8s}{note}")
    return "\n".join(lines)
