"""`sr300-liveness quantize`: an FP16 or INT8 (explicit Q/DQ) bundle from an FP32 bundle, re-checked (needs the `quantize` extra)."""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quantize",
        help="write an FP16 or INT8 (Q/DQ) copy of a bundle, checked against FP32 on held-out crops",
        description="Puts the precision into the ONNX graph (FP16 with float32 inputs/outputs, or INT8 Q/DQ "
        "calibrated on simulator crops), scores held-out crops with FP32 and the new graph on ONNX Runtime CPU "
        "(decisions at every operating point, TPR change, latency side by side) and writes a new bundle carrying "
        "both graphs. The new graph becomes the CPU default only if it was faster and every decision agreed.",
    )
    parser.add_argument("--bundle", default=None, help="FP32 bundle folder (default: the shipped model)")
    parser.add_argument("--precision", required=True, choices=["fp16", "int8"])
    parser.add_argument("--out", required=True, help="bundle folder to write")
    parser.add_argument("--calibration", default=None, metavar="DIR",
                        help="a synth-dataset (CASIA-format) folder: calibrates on its train list, checks on its test "
                        "lists (default: render a small simulator dataset now)")
    parser.add_argument("--calibration-list", default="train_list.txt",
                        help="list of --calibration whose crops set the INT8 ranges (default train_list.txt)")
    parser.add_argument("--check-list", action="append", default=None,
                        help="list(s) of --calibration the new graph is checked on, other subjects than the "
                        "calibration list (default test_list.txt and test_extra_list.txt)")
    parser.add_argument("--calibration-samples", type=int, default=128, help="crops used for INT8 ranges (default 128)")
    parser.add_argument("--method", default="minmax", choices=["minmax", "entropy", "percentile"],
                        help="INT8 range calibration (default minmax)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads for the check (default 1)")
    parser.add_argument("--repeats", type=int, default=60, help="timed calls per graph for the latency ratio")
    parser.add_argument("--json", action="store_true", help="print the check report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sdk.errors import InputValidationError
    from sdk.quantize import quantize_bundle

    if args.calibration_samples < 1 or args.repeats < 1 or args.threads < 1:
        raise InputValidationError("--calibration-samples, --repeats and --threads must be at least 1")
    bundle, report = quantize_bundle(
        args.bundle, args.precision, args.out, calibration_dir=args.calibration,
        calibration_lists=(args.calibration_list,),
        check_lists=tuple(args.check_list or ("test_list.txt", "test_extra_list.txt")),
        calibration_samples=args.calibration_samples, method=args.method, threads=args.threads, repeats=args.repeats,
        log=(lambda *_: None) if args.json else print,
    )
    if args.json:
        print(json.dumps({"bundle": str(bundle.path), "name": bundle.name, "version": bundle.version, **report}, indent=2))
        return 0
    lat = report["latency_cpu"]
    print(f"bundle written: {bundle.path} ({bundle.name} {bundle.version})")
    print(f"check set: {report['n_live']} live / {report['n_attack']} attack crops; max |dP| "
          f"{report['parity']['max_abs_diff']:.2e}, mean {report['parity']['mean_abs_diff']:.2e}")
    for name, entry in report["parity"]["decisions"].items():
        change = entry.get("tpr_change_points")
        print(f"  {name:<12s} threshold {entry['threshold']:.4f}: {entry['disagreements']} decisions differ"
              + (f", TPR change {change:+.2f} points" if change is not None else ""))
    print(f"ONNX Runtime CPU ({lat['threads']} thread(s), crop + flip): fp32 {lat['fp32']['median_ms']:.2f} ms, "
          f"{args.precision} {lat[args.precision]['median_ms']:.2f} ms (ratio {report['latency_ratio']:.2f})")
    print(f"CPU default of the new bundle: {report['cpu_default']}")
    return 0
