"""`sr300-liveness calibrate`: set a bundle's operating points on labelled recordings, through
exactly the device's per-frame path and temporal fusion, and write it as a new version."""
from __future__ import annotations

import argparse
import json
import shlex
import sys

from sdk.detect.blazeface import MODES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="set operating points on labelled recordings (fused per-check scores) and write a new bundle version",
        description="Replays labelled .bag recordings (sidecar PATH.json from `synth-bag` or `record --label`, or "
        "--labels FILE) through the session's per-frame path and fusion, sets each operating point on the fused "
        "per-check scores and writes a new bundle (same weights, new version, provenance). A target APCER t is "
        "refused unless at least 3/t attack recordings support it.",
    )
    parser.add_argument("--bags", nargs="+", required=True, metavar="DIR", help="folders (searched recursively) or .bag files")
    parser.add_argument("--out", required=True, metavar="BUNDLE", help="bundle folder to write")
    parser.add_argument("--target", action="append", default=None, metavar="NAME=APCER[,BPCER]",
                        help="operating point held to APCER (its 95%% upper bound) and, with BPCER, centred "
                        "between that and the BPCER budget; repeatable; default balanced=0.01,0.05 apcer_1e-2=0.01")
    parser.add_argument("--model", default=None, help="bundle to calibrate (default: the shipped model)")
    parser.add_argument("--version", default=None, help="version of the new bundle (default: the source's minor + 1)")
    parser.add_argument("--name", default=None, help="model name (default: the source's)")
    parser.add_argument("--default-point", default=None, help="operating point the SDK uses by default (default: balanced)")
    parser.add_argument("--labels", default=None, metavar="FILE", help="label file: 'path label [species]' per line")
    parser.add_argument("--report", default=None, metavar="DIR",
                        help="per-recording / per-frame report folder (default: OUT_calibration); re-runs reuse it")
    parser.add_argument("--max-frames", type=int, default=None, help="frame budget of one check (default: the session's)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--gate", action="append", default=None, metavar="NAME=VALUE",
                        help="a quality gate to calibrate with, by its sdk.quality.QualityConfig field (e.g. "
                        "max_depth_hole_fraction=0.5); repeatable; every other gate stays the source bundle's. "
                        "The new bundle records the gates and sessions run them")
    parser.add_argument("--detector", default=None, choices=MODES,
                        help="BlazeFace mode to calibrate with (default: the source bundle's, else auto); the new "
                        "bundle records it and sessions run it")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


def gate_config(model: str | None, texts: list[str]) -> object:
    """A SessionConfig whose gates are the bundle's with ``NAME=VALUE`` changes (InputValidationError
    for an unknown or non-numeric gate; QualityConfig checks the values)."""
    from dataclasses import fields, replace

    from sdk.engine import ModelBundle
    from sdk.errors import InputValidationError
    from sdk.quality import QualityConfig
    from sdk.session import SessionConfig, with_bundle_gates

    numeric = {f.name for f in fields(QualityConfig) if f.type in ("float", float)}
    changes: dict[str, float] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or name not in numeric:
            raise InputValidationError(f"--gate {text!r}: expected NAME=VALUE with NAME one of {', '.join(sorted(numeric))}")
        try:
            changes[name] = float(value)
        except ValueError:
            raise InputValidationError(f"--gate {text!r}: {value!r} is not a number") from None
    base = with_bundle_gates(SessionConfig(), ModelBundle.load(model)).quality or QualityConfig()
    return SessionConfig(quality=replace(base, **changes))


def run(args: argparse.Namespace) -> int:
    from calibration.calibrate import calibrate, parse_targets, per_species_table

    targets = parse_targets(args.target) if args.target else None
    config = gate_config(args.model, args.gate) if args.gate else None
    if args.detector is not None:
        from dataclasses import replace

        from sdk.session import SessionConfig

        config = replace(config or SessionConfig(), detector=args.detector)
    quiet = args.json
    bundle, summary = calibrate(
        args.model, args.bags, args.out, targets=targets, default_point=args.default_point, version=args.version,
        name=args.name, labels_file=args.labels, report_dir=args.report, max_frames=args.max_frames, config=config,
        workers=args.workers, progress=not quiet, command="sr300-liveness " + shlex.join(sys.argv[1:]),
        log=(lambda *_: None) if quiet else print,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(per_species_table(summary))
        print(f"bundle written: {bundle.path} ({bundle.name} {bundle.version}, from {summary['parent_version']}; "
              f"default point {summary['default_point']}); per-frame report in {summary['report']}")
    return 0
