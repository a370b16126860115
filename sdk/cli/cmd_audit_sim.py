"""`sr300-liveness audit-sim`: the simulator's shortcut audit (single-scalar AUCs, live vs attack)."""
from __future__ import annotations

import argparse
import json
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit-sim",
        help="audit the simulator for shortcuts: AUC of single crop scalars, live vs each attack",
        description=(
            "Render a fixed-seed set of simulator sessions (live and every attack scenario), cut the crops "
            "with BlazeFace's boxes, measure single scalars per crop and print the AUC of each scalar for live "
            "against each attack. Exit 1 when a non-physics scalar has AUC > 0.9 for any attack."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of the table")
    parser.add_argument("--per-scenario", type=int, default=40, help="sessions per scenario (default 40, minimum 2)")
    parser.add_argument("--seed", type=int, default=0, help="audit seed (shifts every session seed)")
    parser.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)), help="worker processes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sdk.errors import InputValidationError
    from sdk.sim.audit import AUDIT_ATTACKS, run_audit

    if args.per_scenario < 2:
        raise InputValidationError(f"--per-scenario must be >= 2, got {args.per_scenario}")
    if args.workers < 1:
        raise InputValidationError(f"--workers must be >= 1, got {args.workers}")
    bar = None
    if not args.no_progress and not args.json:
        from tqdm import tqdm

        bar = tqdm(total=args.per_scenario * (1 + len(AUDIT_ATTACKS)), unit="session", desc="audit-sim")
    result = run_audit(args.per_scenario, args.seed, workers=args.workers, progress=bar.update if bar else None)
    if bar is not None:
        bar.close()
    report = result.to_dict()
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(result.markdown())
        fails = result.failures()
        print()
        if fails:
            print("FAILED: non-physics scalars that separate live from an attack (AUC > 0.9):")
            for scalar, attack, value in fails:
                print(f"  {scalar} vs {attack}: {value:.3f}")
        else:
            print("passed: no non-physics scalar has AUC > 0.9 against any attack")
    return 0 if report["passed"] else 1
