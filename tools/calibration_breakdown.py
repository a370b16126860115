"""Why a calibration's live checks were rejected, per operating point and per capture condition,
and which part of each quality gate's range its scored frames covered.

    python tools/calibration_breakdown.py REPORT_DIR [--threshold T] [--json]

REPORT_DIR is the report folder `sr300-liveness calibrate` writes beside a bundle
(BUNDLE_calibration: checks.jsonl and summary.json). Nothing is replayed: the stored check
scores and frame outcomes are read, so this works on reports written before calibrate stored
the breakdown itself. Without --threshold every operating point of summary.json is used.
Gate coverage (calibration.envelope) uses the gates of the bundle summary.json names (the
default gates without one); rows replayed before frames carried measurements show none.
Evaluation only: a gate or threshold chosen from this table must be checked on other data.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.envelope import format_coverage, gate_coverage  # noqa: E402
from calibration.rejections import format_breakdown, read_report_rows, summarise_rows  # noqa: E402
from sdk.errors import InputValidationError  # noqa: E402
from sdk.session import quality_rule, stored_rule  # noqa: E402


def report_gates(report: Path) -> tuple[dict, str]:
    """The gates the report's bundle was calibrated with, and where they came from."""
    summary_path = report / "summary.json"
    if summary_path.is_file():
        bundle = json.loads(summary_path.read_text(encoding="utf-8")).get("bundle")
        manifest = Path(bundle) / "manifest.json" if bundle else None
        if manifest is not None and manifest.is_file():
            data = json.loads(manifest.read_text(encoding="utf-8"))
            rule = ((data.get("provenance") or {}).get("calibration") or {}).get("decision_rule")
            if isinstance(rule, dict):
                return stored_rule(rule)["quality"], f"the gates of {manifest}"
    return quality_rule(None), "the default gates (no calibrated bundle found beside the report)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", help="a calibration report folder (checks.jsonl, summary.json)")
    parser.add_argument("--threshold", type=float, help="one threshold instead of the summary's operating points")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    report = Path(args.report)
    try:
        if not (report / "checks.jsonl").is_file():
            raise InputValidationError(f"{report}: no checks.jsonl (not a calibration report folder)")
        if args.threshold is not None:
            if not 0.0 < args.threshold <= 1.0:
                raise InputValidationError(f"--threshold must lie in (0, 1], got {args.threshold}")
            thresholds = {"threshold": args.threshold}
        else:
            summary_path = report / "summary.json"
            if not summary_path.is_file():
                raise InputValidationError(f"{report}: no summary.json; pass --threshold")
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
            thresholds = {name: float(point["threshold"]) for name, point in summary["operating_points"].items()}
        rows = [row for row in read_report_rows(report) if not row.get("error")]
    except (InputValidationError, ValueError, KeyError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = summarise_rows(rows, thresholds)
    gates, gates_from = report_gates(report)
    coverage = gate_coverage(rows, gates)
    if args.json:
        print(json.dumps({**result, "gate_coverage": {"gates_from": gates_from, **coverage}}, indent=2))
    else:
        for name, split in result.items():
            print(f"{name}:")
            print("    " + format_breakdown(split).replace("\n", "\n    "))
        print(f"{format_coverage(coverage)}\n    (limits: {gates_from})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
