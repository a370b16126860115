"""`sr300-liveness check`: one liveness check on a camera, a .bag file or a simulator scenario."""
from __future__ import annotations

import argparse
import json
import sys

from sdk.cli.argtypes import positive_float
from sdk.cli.native_logs import add_verbose_argument
from sdk.types import Decision

EXIT_CODES = {Decision.LIVE: 0, Decision.SPOOF: 1, Decision.UNCERTAIN: 2}
EXIT_ERROR = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="run one liveness check and print the result",
        description="Run one liveness check. Exit code: 0 LIVE, 1 SPOOF, 2 UNCERTAIN, 3 error.",
    )
    add_source_arguments(parser)
    parser.add_argument("--timeout", type=positive_float, default=5.0, help="seconds before giving up (default 5)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_verbose_argument(parser)
    parser.set_defaults(handler=run)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        default=None,
        help="a .bag file, a simulator scenario name (see `synth-bag --list`), or omit for the first SR300",
    )
    parser.add_argument("--seed", type=int, default=0, help="simulator seed when --source is a scenario")
    parser.add_argument("--model", default=None, help="model bundle folder (default: the shipped model)")
    parser.add_argument("--operating-point", default=None, help="named threshold of the bundle (default: its default)")
    parser.add_argument("--threshold", type=float, default=None, help="explicit P(live) threshold (overrides --operating-point)")
    parser.add_argument("--engine", default="onnxruntime", choices=["onnxruntime", "tensorrt"])
    parser.add_argument("--outside-calibration", default="note", choices=["note", "refuse"],
                        help="frames beyond how far the bundle's calibration reached along a gate: "
                             "score them and name the gate (note, default) or do not score them (refuse)")


def resolve_source(spec: str | None, seed: int):
    """A scenario name becomes a seeded simulator source; anything else goes to open_source."""
    if spec is not None and not spec.endswith(".bag"):
        from sdk.sim import list_scenarios

        if spec in list_scenarios():
            from sdk.capture import SimulatorSource

            return SimulatorSource(spec, seed)
    return spec


def session_config(args: argparse.Namespace, **overrides):
    from sdk.session import SessionConfig

    return SessionConfig(
        operating_point=args.operating_point,
        threshold=args.threshold,
        engine=args.engine,
        timeout_s=getattr(args, "timeout", 5.0),
        outside_calibration=getattr(args, "outside_calibration", "note"),
        **overrides,
    )


def run(args: argparse.Namespace) -> int:
    from sdk.errors import LivenessError
    from sdk.session import LivenessSession

    try:
        with LivenessSession(resolve_source(args.source, args.seed), args.model, session_config(args)) as session:
            result = session.check(timeout_s=args.timeout)
    except LivenessError as error:
        if args.json:
            print(json.dumps({"decision": None, "error": f"{type(error).__name__}: {error}"}))
        print(f"sr300-liveness check: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(result.to_json())
    else:
        reasons = ", ".join(r.value for r in result.reasons) or "-"
        score = "n/a" if result.score != result.score else f"{result.score:.3f}"
        print(f"{result.decision.value}  score {score}  threshold {result.threshold:.3f} ({result.operating_point})  "
              f"frames {result.frames_used}  reasons {reasons}")
        if result.message:
            print(f"  {result.message}")
        if result.outside_calibration:
            print(f"  beyond the calibration's frames along: {', '.join(result.outside_calibration)} "
                  "(the operating point was not measured on frames like these)")
    return EXIT_CODES[result.decision]
