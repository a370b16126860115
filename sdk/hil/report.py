"""Statistics, exit rules, baseline comparison and the JSON / JUnit / text forms of a HIL run.

Rates carry exact one-sided Clopper-Pearson 95 % upper bounds (calibration/metrics.py): with 10
attacks of a species and none accepted, APCER is 0 but only "below 25.9 %" is shown.

Exit rules (`hil run`): 0 when everything holds; 1 when an attack was LIVE, when BPCER exceeds
the suite's budget, or when the run regresses against a baseline; 3 when a recording could not
be checked (hash mismatch, a check that ended on an error) and nothing else failed.
"""
from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping
from xml.etree import ElementTree as ET

from sdk.errors import HilSuiteError
from sdk.hil.runner import ERROR, FAIL, PASS, RecordingResult

REPORT_FORMAT = "sr300-liveness-hil-report"
EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 3
CONFIDENCE = 0.95
#: Per-frame stages shown in the timing summary (whatever the session reports beyond these is kept in JSON).
STAGES = ("capture", "detect", "crops", "quality", "engine", "fusion")


def rate(k: int, n: int) -> dict[str, Any]:
    """k of n with its rate and exact 95 % upper bound (None when n == 0)."""
    from calibration.metrics import clopper_pearson_upper

    if n == 0:
        return {"k": 0, "n": 0, "rate": None, "upper_95": None}
    return {"k": k, "n": n, "rate": k / n, "upper_95": clopper_pearson_upper(k, n, CONFIDENCE)}


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


@dataclass(frozen=True)
class HilReport:
    suite_root: str
    bpcer_budget: float
    model_name: str
    model_version: str
    operating_point: str
    threshold: float
    results: tuple[RecordingResult, ...]
    seconds: float
    regressions: tuple[str, ...] = ()
    baseline: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    # -- statistics -------------------------------------------------------------------------
    def _checked(self) -> list[RecordingResult]:
        return [r for r in self.results if r.status != ERROR]

    def bpcer(self) -> dict[str, Any]:
        """Live checks not accepted / live checks (recordings that errored are left out and reported)."""
        live = [r for r in self._checked() if not r.is_attack]
        return rate(sum(not r.accepted for r in live), len(live))

    def apcer_per_species(self) -> dict[str, dict[str, Any]]:
        species = sorted({r.species for r in self._checked() if r.is_attack})
        table = {}
        for name in species:
            part = [r for r in self._checked() if r.is_attack and r.species == name]
            table[name] = rate(sum(r.accepted for r in part), len(part))
        return table

    def apcer_all(self) -> dict[str, Any]:
        attacks = [r for r in self._checked() if r.is_attack]
        return rate(sum(r.accepted for r in attacks), len(attacks))

    def worst_species(self) -> str | None:
        table = self.apcer_per_species()
        if not table or not any(entry["k"] for entry in table.values()):
            return None  # no attack accepted: no species is worse than another
        # Highest APCER; among equals, the species with the least evidence (largest upper bound).
        return max(table, key=lambda s: (table[s]["rate"], table[s]["upper_95"]))

    def per_scenario(self) -> dict[str, dict[str, Any]]:
        table: dict[str, dict[str, Any]] = {}
        for r in self.results:
            row = table.setdefault(r.scenario, {"expected": r.expected, "n": 0, "LIVE": 0, "SPOOF": 0, "UNCERTAIN": 0,
                                                "errors": 0, "passed": 0, "reasons": Counter()})
            row["n"] += 1
            if r.status == ERROR:
                row["errors"] += 1
            elif r.decision in ("LIVE", "SPOOF", "UNCERTAIN"):
                row[r.decision] += 1
            row["passed"] += r.status == PASS
            row["reasons"].update(r.reasons)
        for row in table.values():
            row["reasons"] = dict(row["reasons"].most_common())
        return table

    def timings(self) -> dict[str, Any]:
        checked = self._checked()
        seconds = [r.check_seconds * 1e3 for r in checked]
        per_frame = {}
        for stage in STAGES:
            values = [float(r.timings_ms[stage]) for r in checked if stage in r.timings_ms]
            if values:
                per_frame[stage] = {"median_ms": statistics.median(values), "p95_ms": _percentile(values, 0.95)}
        frames = [r.frames_used for r in checked]
        return {
            "check_ms": {"median": statistics.median(seconds) if seconds else None, "p95": _percentile(seconds, 0.95),
                         "max": max(seconds) if seconds else None},
            "frames_used": {"median": statistics.median(frames) if frames else None, "max": max(frames) if frames else None},
            "per_frame_ms": per_frame,
            "run_seconds": self.seconds,
        }

    def calibration_reach(self) -> dict[str, Any]:
        """How many checks had frames beyond the bundle's calibration (sdk.coverage), in all, among
        accepted ones, and per gate: a rig's recordings outside it need a calibration of their own
        before the operating point's APCER / BPCER say anything about them. Informational: it is
        no exit rule."""
        checked = self._checked()
        beyond = [r for r in checked if r.outside_calibration]
        per_gate = Counter(g for r in beyond for g in r.outside_calibration)
        return {"checks": len(checked), "beyond": len(beyond), "beyond_and_live": sum(r.accepted for r in beyond),
                "per_gate": dict(per_gate.most_common())}

    # -- exit rules -------------------------------------------------------------------------
    def gates(self) -> dict[str, Any]:
        bpcer = self.bpcer()
        attacks_live = [r.id for r in self.results if r.is_attack and r.accepted]
        errors = [r.id for r in self.results if r.status == ERROR]
        over_budget = bpcer["n"] > 0 and bpcer["rate"] > self.bpcer_budget
        return {
            "attacks_live": attacks_live,
            "bpcer_over_budget": bool(over_budget),
            "regressions": list(self.regressions),
            "errors": errors,
            "retried": [r.id for r in self.results if r.attempts > 1],
        }

    def exit_code(self) -> int:
        gates = self.gates()
        if gates["attacks_live"] or gates["bpcer_over_budget"] or gates["regressions"]:
            return EXIT_FAILED
        if gates["errors"] or not self.results:
            return EXIT_ERROR
        return EXIT_OK

    # -- baseline ---------------------------------------------------------------------------
    def compare(self, baseline: Mapping[str, Any], name: str = "baseline") -> "HilReport":
        """This report with the regressions against an earlier `hil run --json` report.

        Compared on the recordings both runs checked: the same id showing the same frames (the
        same ``content_sha256`` where both reports carry one, else the same file SHA-256, since a
        re-rendered bag is another file with the same frames). BPCER higher than the baseline's,
        or any species' APCER higher than the baseline's, is a regression. A baseline that shares
        no recording with the run compared nothing, and fails the run rather than passing it.
        """
        rows = baseline.get("recordings") if isinstance(baseline, Mapping) else None
        if baseline.get("format") != REPORT_FORMAT or not isinstance(rows, list):
            raise HilSuiteError(f"{name}: not a `hil run --json` report (format {REPORT_FORMAT!r})")
        earlier = {r.get("id"): r for r in rows if isinstance(r, Mapping) and r.get("status") != ERROR}
        checked = {r.id: r for r in self._checked()}

        def same_recording(before_row: Mapping[str, Any], now_row: RecordingResult) -> bool:
            content = before_row.get("content_sha256")
            if content is not None and now_row.content_sha256 is not None:
                return content == now_row.content_sha256
            return before_row.get("sha256") == now_row.sha256

        before = {rid: row for rid, row in earlier.items() if rid in checked and same_recording(row, checked[rid])}
        now = {rid: checked[rid] for rid in before}
        common = sorted(before)
        regressions: list[str] = []
        if not common:
            regressions.append(f"no recording in common with the baseline ({len(earlier)} there, {len(checked)} here, "
                               "matched by id and frames): nothing was compared")
        live_keys = [k for k in common if not now[k].is_attack]
        rejected_before = sum(before[k].get("decision") != "LIVE" for k in live_keys)
        rejected_now = sum(not now[k].accepted for k in live_keys)
        if rejected_now > rejected_before:
            regressions.append(f"BPCER {rejected_now}/{len(live_keys)} on the common live recordings, "
                               f"baseline {rejected_before}/{len(live_keys)}")
        for species in sorted({now[k].species for k in common if now[k].is_attack}):
            keys = [k for k in common if now[k].is_attack and now[k].species == species]
            accepted_before = sum(before[k].get("decision") == "LIVE" for k in keys)
            accepted_now = sum(now[k].accepted for k in keys)
            if accepted_now > accepted_before:
                regressions.append(f"APCER[{species}] {accepted_now}/{len(keys)}, baseline {accepted_before}/{len(keys)}")
        return HilReport(**{**self.__dict__, "regressions": tuple(regressions), "baseline": name,
                            "extra": {**self.extra, "baseline_common_recordings": len(common)}})

    # -- output forms -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "suite": self.suite_root,
            "model": {"name": self.model_name, "version": self.model_version},
            "operating_point": self.operating_point,
            "threshold": self.threshold,
            "bpcer_budget": self.bpcer_budget,
            "confidence": CONFIDENCE,
            "recordings": [r.to_dict() for r in self.results],
            "scenarios": self.per_scenario(),
            "bpcer": self.bpcer(),
            "apcer": self.apcer_per_species(),
            "apcer_all_attacks": self.apcer_all(),
            "worst_species": self.worst_species(),
            "timings": self.timings(),
            "outside_calibration": self.calibration_reach(),
            "gates": self.gates(),
            "baseline": self.baseline,
            **dict(self.extra),
            "passed": self.exit_code() == EXIT_OK,
            "exit_code": self.exit_code(),
        }

    def to_junit(self) -> str:
        """JUnit XML: one test case per recording (failure: wrong decision; error: not checked)."""
        results = self.results
        failures = sum(r.status == FAIL for r in results)
        errors = sum(r.status == ERROR for r in results)
        suites = ET.Element("testsuites", name="sr300-liveness hil", tests=str(len(results)), failures=str(failures),
                            errors=str(errors), time=f"{self.seconds:.3f}")
        suite = ET.SubElement(suites, "testsuite", name=f"hil {self.suite_root}", tests=str(len(results)),
                              failures=str(failures), errors=str(errors), skipped="0", time=f"{self.seconds:.3f}")
        properties = ET.SubElement(suite, "properties")
        for key, value in (("model", f"{self.model_name} {self.model_version}"),
                           ("operating_point", self.operating_point), ("threshold", f"{self.threshold:.6f}")):
            ET.SubElement(properties, "property", name=key, value=value)
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=f"hil.{r.scenario}", name=r.id, time=f"{r.seconds:.3f}")
            if r.status == FAIL:
                ET.SubElement(case, "failure", message=r.detail, type="WrongDecision").text = json.dumps(r.to_dict())
            elif r.status == ERROR:
                ET.SubElement(case, "error", message=r.detail, type="NotChecked").text = json.dumps(r.to_dict())
            ET.SubElement(case, "system-out").text = (
                f"expected {r.expected}, got {r.decision} score {r.score} reasons {','.join(r.reasons) or '-'}")
        ET.indent(suites)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"

    def to_text(self) -> str:
        lines = [f"model {self.model_name} {self.model_version}, operating point {self.operating_point} "
                 f"(threshold {self.threshold:.3f}), {len(self.results)} recordings in {self.seconds:.1f} s",
                 "",
                 f"{'scenario':<28s} {'expect':>8s} {'n':>4s} {'LIVE':>5s} {'SPOOF':>6s} {'UNCRT':>6s} {'error':>6s} {'pass':>5s}"]
        for scenario, row in self.per_scenario().items():
            lines.append(f"{scenario:<28s} {row['expected']:>8s} {row['n']:>4d} {row['LIVE']:>5d} {row['SPOOF']:>6d} "
                         f"{row['UNCERTAIN']:>6d} {row['errors']:>6d} {row['passed']:>5d}")
        bpcer = self.bpcer()
        lines.append("")
        lines.append(f"BPCER {_fmt_rate(bpcer)}  (budget {self.bpcer_budget:.3f})")
        lines.append("APCER per species (95 % upper bound):")
        for species, entry in self.apcer_per_species().items():
            lines.append(f"  {species:<28s} {_fmt_rate(entry)}")
        lines.append(f"  {'all attacks':<28s} {_fmt_rate(self.apcer_all())}")
        lines.append(f"worst species: {self.worst_species() or 'none (no attack accepted)'}")
        t = self.timings()
        if t["check_ms"]["median"] is not None:
            stages = ", ".join(f"{s} {v['median_ms']:.2f}" for s, v in t["per_frame_ms"].items())
            lines.append(f"timings: check median {t['check_ms']['median']:.0f} ms, p95 {t['check_ms']['p95']:.0f} ms, "
                         f"frames used median {t['frames_used']['median']}; per frame (median ms): {stages}")
        reach = self.calibration_reach()
        if reach["beyond"]:
            per_gate = ", ".join(f"{g} {n}" for g, n in reach["per_gate"].items())
            lines.append(f"beyond the bundle's calibration: {reach['beyond']}/{reach['checks']} checks had frames "
                         f"outside what its thresholds were set on ({per_gate}); {reach['beyond_and_live']} of them LIVE")
        gates = self.gates()
        lines.append("")
        for rid in gates["attacks_live"]:
            lines.append(f"FAIL attack accepted as LIVE: {rid}")
        if gates["bpcer_over_budget"]:
            lines.append(f"FAIL BPCER {bpcer['rate']:.3f} exceeds the suite's budget {self.bpcer_budget:.3f}")
        for text in gates["regressions"]:
            lines.append(f"FAIL regression against {self.baseline}: {text}")
        retried = [r for r in self.results if r.attempts > 1]
        if retried:
            lines.append(f"note: {len(retried)} recordings were checked again after a check ended on an error: "
                         + ", ".join(f"{r.id} ({r.status})" for r in retried))
        for r in self.results:
            if r.status == ERROR:
                lines.append(f"ERROR {r.id}: {r.detail}")
            elif r.status == FAIL and not r.is_attack:
                lines.append(f"fail  {r.id}: {r.detail}")
        verdict = {EXIT_OK: "PASS", EXIT_FAILED: "FAIL", EXIT_ERROR: "ERROR"}[self.exit_code()]
        lines.append(f"result: {verdict}")
        return "\n".join(lines)


def _fmt_rate(entry: Mapping[str, Any]) -> str:
    if not entry["n"]:
        return "n/a (no recordings)"
    return f"{entry['k']}/{entry['n']} = {entry['rate']:.3f} (upper {entry['upper_95']:.3f})"
