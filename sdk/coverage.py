"""The calibration's envelope at decision time: was a frame like the ones the threshold was set on?

`sr300-liveness calibrate` records, per quality gate, the most extreme value its scored frames
reached and the band the gate lets through beyond it (``provenance.calibration.gate_coverage``,
calibration/envelope.py). A frame scored beyond that edge is scored under a threshold whose APCER
and BPCER say nothing about frames like it. The session names those gates on every result
(``LivenessResult.outside_calibration``); with ``SessionConfig.outside_calibration = "refuse"``
it does not score such frames (Reason.OUTSIDE_CALIBRATION). That leaves the calibration's own
checks unchanged (none of their scored frames lies beyond an edge, by construction), so the
bundle's operating points hold under either setting.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from sdk.errors import ModelError
from sdk.quality import GATES

__all__ = ["CalibratedEdge", "EDGE_SLACK", "calibrated_edges", "outside_calibration"]

#: Values this close beyond an edge count as reached (the rounding of older reports).
EDGE_SLACK = 1e-6


@dataclass(frozen=True)
class CalibratedEdge:
    """How far the calibration's scored frames reached along one gate's measurement: values above
    ``edge`` (a ceiling gate) or below it (a floor gate) were never scored in calibration."""

    gate: str
    measurement: str
    edge: float
    ceiling: bool

    def beyond(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        # EDGE_SLACK: 2.22.0's coverage was computed from measurements rounded to 6 decimals
        return value > self.edge + EDGE_SLACK if self.ceiling else value < self.edge - EDGE_SLACK


def calibrated_edges(provenance: Mapping[str, Any]) -> tuple[CalibratedEdge, ...]:
    """One edge per gate the bundle's calibration measured: the scored frames' extreme where a
    band was left uncovered, else the gate's own limit (covered up to it: only a session with
    looser gates scores beyond). () when the calibration recorded no coverage (bundles before
    2.22.0, points set on crops): nothing is known, so nothing is reported or refused."""
    calibration = provenance.get("calibration")
    if not isinstance(calibration, Mapping) or "gate_coverage" not in calibration:
        return ()
    try:
        gates = calibration["gate_coverage"]["gates"]
        edges = []
        for gate in GATES:
            entry = gates.get(gate.field)
            if not entry or (entry.get("live_reached") is None and entry.get("attack_reached") is None):
                continue  # never measured: no edge to hold frames to
            band = entry.get("uncovered")
            if band is not None:
                low, high = (float(v) for v in band)
                edge = low if gate.ceiling else high
            else:
                edge = float(entry["limit"])
            edges.append(CalibratedEdge(gate.field, gate.measurement, edge, gate.ceiling))
        return tuple(edges)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ModelError(f"the bundle's calibration gate coverage cannot be read ({error!r})") from None


def outside_calibration(edges: tuple[CalibratedEdge, ...], measurements: Mapping[str, float]) -> tuple[str, ...]:
    """Gates (in GATES order) along whose measurement this frame lies beyond the calibration."""
    return tuple(e.gate for e in edges if e.measurement in measurements and e.beyond(float(measurements[e.measurement])))
