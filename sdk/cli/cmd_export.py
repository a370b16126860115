"""`sr300-liveness export`: trained network -> calibrated, verified ONNX model bundle (needs the `train` extra)."""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained network to an ONNX model bundle with calibrated operating points",
        description="Scores the calibration list, sets thresholds at target APCERs, evaluates the test lists, "
        "exports ONNX (opset >= 17, dynamic batch, checked against torch) and writes model.onnx + manifest.json.",
    )
    parser.add_argument("--model", required=True, help="trained model.pt or checkpoint.pt (from `train`)")
    parser.add_argument("--data", required=True, help="dataset root holding the list files")
    parser.add_argument("--calibration-list", default="val_list.txt", help="list the thresholds are set on")
    parser.add_argument("--test-list", action="append", default=[], help="held-out list(s) to report (repeatable)")
    parser.add_argument("--out", required=True, help="bundle folder to write")
    parser.add_argument("--name", default="mlfa_student", help="model name in the manifest")
    parser.add_argument("--version", default="0.1.0", help="model version in the manifest")
    parser.add_argument("--target", action="append", default=[], metavar="NAME=APCER[,BPCER]",
                        help="operating point, e.g. apcer_1e-2=0.01 (lowest threshold meeting the APCER) or "
                        "balanced=0.01,0.01 (centred between the APCER target and a BPCER budget); repeatable; "
                        "default: balanced=0.01,0.01 apcer_1e-2=0.01 apcer_1e-3=0.001")
    parser.add_argument("--default-point", default=None, help="operating point the SDK uses by default")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def supported_targets(targets: dict, n_attack: int, explicit: bool, log=print) -> dict:
    """Explicit targets the attack count cannot support are refused (typed error); unsupported
    default targets are dropped with a note. Raises when nothing is left."""
    from calibration.threshold import check_support
    from sdk.errors import UnsupportedOperatingPointError

    kept = {}
    for name, value in targets.items():
        try:
            check_support(name, value[0], n_attack)
        except UnsupportedOperatingPointError as error:
            if explicit:
                raise
            log(f"note: default operating point dropped: {error}")
            continue
        kept[name] = value
    if not kept:
        raise UnsupportedOperatingPointError("any", min(v[0] for v in targets.values()), n_attack,
                                             min(3.0 / v[0] for v in targets.values()))
    return kept


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from calibration.calibrate import parse_targets
    from calibration.io import read_label_list
    from sdk.errors import InputValidationError

    explicit = bool(args.target)
    # Count the calibration list's attacks first: an unsupported target is refused before any
    # model is loaded or scored.
    list_path = Path(args.data) / args.calibration_list
    if not list_path.is_file():
        raise InputValidationError(f"{list_path}: calibration list not found")
    n_attack = int((read_label_list(list_path).labels == 0).sum())
    if explicit:
        targets = parse_targets(args.target)
    else:
        from training.ship import DEFAULT_TARGETS

        targets = dict(DEFAULT_TARGETS)
    targets = supported_targets(targets, n_attack, explicit, log=(lambda *_: None) if args.json else print)
    from training.ship import DEFAULT_POINT, package_model

    default = args.default_point or (DEFAULT_POINT if DEFAULT_POINT in targets else next(iter(targets)))
    bundle, report = package_model(
        args.model, args.out, data_root=args.data, calibration_list=args.calibration_list,
        test_lists=args.test_list, name=args.name, version=args.version, targets=targets,
        default_point=default, provenance={"command": "sr300-liveness export"},
        log=(lambda *_: None) if args.json else print,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"bundle written: {bundle.path} (model {bundle.name} {bundle.version}, default point {default})")
    return 0
