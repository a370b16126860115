"""INT8 (and FP16) against FP32 on ONNX Runtime CPU, side by side in one run, on held-out simulator crops.

    python tools/measure_quantization.py --bundle sdk/bundles/mlfa_student_sim --work runs/quantization

1. renders two simulator datasets from one seed (default 5, never used by the shipped model's
   recipe, which used seeds 0-2): a calibration set (its Training split) and a check set (its Test
   and TestExtra splits: live faces, CASIA cut prints, screen replay, 3D mask, plain prints); the
   splits' subjects never overlap,
2. runs `sr300-liveness quantize` for each precision (INT8 Q/DQ calibrated on the calibration set),
3. reports per precision: CPU latency of the session's engine call (crop + flip) of FP32 and the
   new graph timed interleaved in the same run, their ratio, the decisions at every operating
   point (agreement, TPR and APCER of both, TPR change in points), and the CPU default the rule
   picks (the quantized graph only if faster and every decision agreed).

Rendering is kept in --work (rerun to skip it); a rerun on a new bundle takes a few minutes.
Writes --out (JSON) and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def markdown_table(summary: dict, out: Path | str) -> str:
    """The figures as a Markdown table (FP32 is timed beside each graph, in the same run)."""
    results = summary["results"]
    first = next(iter(results.values()))
    lines = [f"{summary['source']} on {summary['machine']}; check set: dataset seed {summary['seed']}, "
             f"{first['n_live']} live / {first['n_attack']} attack crops; INT8 calibrated on "
             f"{first.get('calibration_samples') or '-'} crops of other subjects", "",
             "| graph | CPU ms median (FP32 beside it) | p95 | ratio to FP32 | max abs dP | mean abs dP | "
             "decisions differing: balanced / all points | TPR change at balanced | CPU default |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for precision, report in results.items():
        lat = report["latency_cpu"]
        decisions = report["parity"]["decisions"]
        balanced = decisions.get("balanced", next(iter(decisions.values())))
        per_point = ", ".join(f"{name} {d['disagreements']}" for name, d in decisions.items())
        lines.append(
            f"| {precision} | {lat[precision]['median_ms']:.2f} ({lat['fp32']['median_ms']:.2f}) | "
            f"{lat[precision]['p95_ms']:.2f} ({lat['fp32']['p95_ms']:.2f}) | {report['latency_ratio']:.2f} | "
            f"{report['parity']['max_abs_diff']:.2e} | {report['parity']['mean_abs_diff']:.2e} | "
            f"{balanced['disagreements']} / {per_point} | {balanced.get('tpr_change_points', 0):+.2f} points | "
            f"{report['cpu_default']} |")
    lines.append(f"\nReport: {out}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default=None, help="FP32 bundle (default: the shipped model)")
    parser.add_argument("--work", default="runs/quantization", help="folder for datasets and the new bundles")
    parser.add_argument("--seed", type=int, default=5, help="simulator dataset seed (default 5)")
    parser.add_argument("--live", type=int, default=90, help="live subjects asked for (the check set gets a third)")
    parser.add_argument("--per-attack", type=int, default=30, help="subjects per attack type asked for (check: a third)")
    parser.add_argument("--frames", type=int, default=4, help="frames per check subject")
    parser.add_argument("--calibration-samples", type=int, default=128)
    parser.add_argument("--method", default="minmax", choices=["minmax", "entropy", "percentile"],
                        help="INT8 range calibration (default minmax)")
    parser.add_argument("--precisions", default="int8,fp16", help="comma-separated (default int8,fp16)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads for the timing (default 1)")
    parser.add_argument("--repeats", type=int, default=100, help="timed engine calls per graph")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes")
    parser.add_argument("--out", default=None, help="JSON report (default WORK/report.json)")
    args = parser.parse_args()

    from sdk.engine import ModelBundle
    from sdk.quantize import quantize_bundle, render_dataset

    work = Path(args.work)
    source = ModelBundle.load(args.bundle)
    started = time.perf_counter()
    calibration = render_dataset(work / f"calibration_seed{args.seed}", seed=args.seed, live=12, per_attack=9,
                                 frames_per_subject=2, splits=("Training",), workers=args.workers, progress=True)
    check = render_dataset(work / f"check_seed{args.seed}", seed=args.seed, live=args.live, per_attack=args.per_attack,
                           frames_per_subject=args.frames, splits=("Test", "TestExtra"), workers=args.workers,
                           progress=True)
    render_s = time.perf_counter() - started
    results = {}
    for precision in [p.strip() for p in args.precisions.split(",") if p.strip()]:
        t0 = time.perf_counter()
        bundle, report = quantize_bundle(
            source.path, precision, work / f"{source.name}-{precision}", calibration_dir=calibration,
            check_dir=check, calibration_lists=("train_list.txt",), check_lists=("test_list.txt", "test_extra_list.txt"),
            calibration_samples=args.calibration_samples, method=args.method, threads=args.threads,
            repeats=args.repeats,
        )
        report["bundle"] = str(bundle.path)
        report["seconds"] = round(time.perf_counter() - t0, 1)
        results[precision] = report
    summary = {
        "source": f"{source.name} {source.version}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "render_s": round(render_s, 1),
        "seed": args.seed,
        "results": results,
    }
    out = Path(args.out) if args.out else work / "report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    print(markdown_table(summary, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
