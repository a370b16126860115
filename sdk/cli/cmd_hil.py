"""`sr300-liveness hil`: hardware-in-the-loop suites of labelled recordings.

    hil make-suite --out DIR [--per-scenario N] [--seed S]     simulator recordings + suite.json
    hil run DIR [--operating-point P] [--junit F] [--json F] [--baseline F]
    hil live --out DIR --expect live|attack [--attack-type T] --count N   (a real SR300)
    hil add --out DIR BAG...                                    recordings of `record --label`

`hil run` exits 0 when every gate holds, 1 when an attack was LIVE, BPCER exceeds the suite's
budget or the run regresses against --baseline, 3 when a recording could not be checked (its
SHA-256 differs from suite.json, or the check ended on an error) or on an SDK error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sdk.cli.argtypes import positive_float
from sdk.cli.native_logs import add_verbose_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hil",
        help="hardware-in-the-loop suites: make, run and grow them with a real SR300",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="hil_command", metavar="ACTION", required=True)

    make = commands.add_parser("make-suite", help="render labelled simulator recordings into a suite")
    make.add_argument("--out", required=True, help="suite folder (created; a rerun adds only what is missing)")
    make.add_argument("--per-scenario", type=int, default=10, help="recordings per scenario (default 10)")
    make.add_argument("--seed", type=int, default=0, help="suite seed (default 0; recordings use seeds 8e8+)")
    make.add_argument("--frames", type=int, default=30, help="frames per recording (default 30)")
    make.add_argument("--scenarios", nargs="+", default=None,
                      help="scenario names (default: every scenario of `synth-bag --list` except 'empty')")
    make.add_argument("--bpcer-budget", type=float, default=0.05, help="BPCER above this fails `hil run` (default 0.05)")
    make.add_argument("--timeout", type=positive_float, default=5.0, help="seconds a live face has to be LIVE (default 5)")
    add_verbose_argument(make)
    make.set_defaults(handler=run_make_suite)

    run = commands.add_parser("run", help="check every recording of a suite and apply the exit rules")
    run.add_argument("suite", help="suite folder (with suite.json)")
    run.add_argument("--model", default=None, help="model bundle folder (default: the shipped model)")
    run.add_argument("--operating-point", default=None, help="named threshold of the bundle (default: its default)")
    run.add_argument("--timeout", type=positive_float, default=None, help="seconds per check (default: the suite's)")
    run.add_argument("--engine", default="onnxruntime", choices=["onnxruntime", "tensorrt"])
    run.add_argument("--junit", default=None, help="write JUnit XML here (one test case per recording)")
    run.add_argument("--json", default=None, help="write the full report as JSON here")
    run.add_argument("--retries", type=int, default=1,
                     help="repeat a check that ended on an error (not a hash mismatch) up to N times (default 1)")
    run.add_argument("--baseline", default=None, help="an earlier --json report: a regression against it fails the run")
    add_verbose_argument(run)
    run.set_defaults(handler=run_suite_command)

    add = commands.add_parser("add", help="add labelled recordings (bag + sidecar JSON) to a suite")
    add.add_argument("--out", required=True, help="suite folder (created when missing)")
    add.add_argument("bags", nargs="+", help=".bag files with their sidecar .json (synth-bag, record --label)")
    add.set_defaults(handler=run_add)

    live = commands.add_parser("live", help="record attempts with a real SR300 into a suite and check them")
    live.add_argument("--out", required=True, help="suite folder to grow (created when missing)")
    live.add_argument("--expect", required=True, choices=["live", "attack"], help="what the operator presents")
    live.add_argument("--attack-type", default=None,
                      help="attack species (print_flat, screen_replay, mask_3d, ...) or CASIA-SURF type 1-6")
    live.add_argument("--count", type=int, required=True, help="number of attempts")
    live.add_argument("--seconds", type=float, default=3.0, help="recording length per attempt (default 3)")
    live.add_argument("--serial", default=None, help="camera serial (default: the first SR300)")
    live.add_argument("--model", default=None, help="model bundle folder (default: the shipped model)")
    live.add_argument("--operating-point", default=None)
    add_verbose_argument(live)
    live.set_defaults(handler=run_live_command)


def run_make_suite(args: argparse.Namespace) -> int:
    from sdk.hil.make import make_suite

    suite = make_suite(args.out, per_scenario=args.per_scenario, seed=args.seed, frames=args.frames,
                       scenarios=args.scenarios, bpcer_budget=args.bpcer_budget, timeout_s=args.timeout)
    live = sum(not r.is_attack for r in suite.recordings)
    print(f"suite {suite.root}: {len(suite.recordings)} recordings ({live} live, {len(suite.recordings) - live} attack) "
          f"listed in {suite.root / 'suite.json'}")
    return 0


def run_add(args: argparse.Namespace) -> int:
    from sdk.hil.make import add_recordings

    for entry in add_recordings(args.out, args.bags):
        print(f"added {entry.id} ({entry.expected}, species {entry.species})")
    return 0


def run_suite_command(args: argparse.Namespace) -> int:
    from sdk.errors import HilSuiteError
    from sdk.hil.report import EXIT_ERROR
    from sdk.hil.runner import run_suite
    from sdk.hil.suite import atomic_write_text, load_suite

    suite = load_suite(args.suite)
    if not suite.recordings:
        print(f"sr300-liveness hil run: error: {args.suite}: the suite has no recordings", file=sys.stderr)
        return EXIT_ERROR
    baseline = None
    if args.baseline:
        try:
            baseline = json.loads(Path(args.baseline).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise HilSuiteError(f"--baseline {args.baseline}: unreadable ({error})") from None
    if args.retries < 0:
        print("sr300-liveness hil run: error: --retries must be >= 0", file=sys.stderr)
        return EXIT_ERROR
    report = run_suite(suite, model=args.model, operating_point=args.operating_point, timeout_s=args.timeout,
                       engine=args.engine, retries=args.retries)
    if baseline is not None:
        report = report.compare(baseline, name=args.baseline)
    print(report.to_text())
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(report.to_dict(), indent=1) + "\n")
    if args.junit:
        atomic_write_text(Path(args.junit), report.to_junit())
    return report.exit_code()


def run_live_command(args: argparse.Namespace) -> int:
    from sdk.hil.live import camera_recorder, run_live

    results = run_live(args.out, args.expect, args.count, attack_type=args.attack_type, seconds=args.seconds,
                       model=args.model, operating_point=args.operating_point,
                       record=camera_recorder(serial=args.serial))
    wrong = [r for r in results if r.status != "pass"]
    print(f"{len(results)} attempts recorded into {args.out}; {len(results) - len(wrong)} gave the expected decision")
    return 1 if any(r.is_attack and r.accepted for r in results) else 0
