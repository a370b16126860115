"""Cost of students against their 24-member ensemble, in one run (issue 11's ">= 100x cheaper").

FLOPs and parameters are counted once; torch and ONNX Runtime latency are measured per crop,
interleaved (every round runs every group in turn, so load on the machine hits all alike), once
per thread count. Thread count matters: ONNX Runtime spreads a large network over the cores but
a small one spends its time in per-operator overhead, so the ratio at 1 thread and at all cores
differ, and both are printed.

    python tools/cost_ratio.py --ensemble runs/s4/ensembleH \
        --student 2.24.0=runs/s4/studentH/model.pt --student M=runs/s4/studentM/model.pt \
        --threads 1 2 --rounds 30 --json cost.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch.nn as nn  # noqa: E402

from sdk.errors import InputValidationError  # noqa: E402
from training.compare import flops_per_crop, latencies_ms, onnxruntime_latencies_ms, parameters  # noqa: E402

#: Issue 11's goal: the student at least this many times cheaper than the ensemble.
GOAL_RATIO = 100.0


def cost_report(groups: Mapping[str, Sequence[nn.Module]], reference: str, threads: Sequence[int],
                rounds: int) -> dict[str, Any]:
    """FLOPs, parameters and latency of each group (its networks in sequence), and ratios to ``reference``."""
    if reference not in groups:
        raise InputValidationError(f"reference group {reference!r} is not among {sorted(groups)}")
    if rounds < 1 or not threads or min(threads) < 1:
        raise InputValidationError("rounds and every thread count must be >= 1")
    static = {name: {"networks": len(nets), "parameters": sum(parameters(n) for n in nets),
                     "flops_per_crop": sum(flops_per_crop(n) for n in nets)} for name, nets in groups.items()}
    measured: dict[str, Any] = {}
    for count in threads:
        torch_ms = latencies_ms(groups, rounds=rounds, threads=count)
        ort_ms = onnxruntime_latencies_ms(groups, rounds=rounds, threads=count)
        measured[str(count)] = {name: {"torch": torch_ms[name], "onnxruntime": ort_ms[name]} for name in groups}
    ratios: dict[str, Any] = {}
    ref = static[reference]
    for name in groups:
        if name == reference:
            continue
        ratios[name] = {"flops": ref["flops_per_crop"] / static[name]["flops_per_crop"],
                        "parameters": ref["parameters"] / static[name]["parameters"]}
        for count, per_group in measured.items():
            for engine in ("torch", "onnxruntime"):
                ratios[name][f"{engine}_latency_{count}_threads"] = (
                    per_group[reference][engine]["median_ms"] / per_group[name][engine]["median_ms"])
    return {"reference": reference, "rounds": rounds, "threads": list(threads), "static": static,
            "latency_ms": measured, "ratios": ratios, "goal_ratio": GOAL_RATIO,
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip()}


def render(report: Mapping[str, Any]) -> str:
    lines = ["| model | networks | parameters | MFLOPs per crop | "
             + " | ".join(f"ms torch / ORT, {t} thread{'s' if t > 1 else ''}" for t in report["threads"]) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in report["threads"]) + " |"]
    for name, s in report["static"].items():
        cells = [f"{report['latency_ms'][str(t)][name]['torch']['median_ms']:.1f} / "
                 f"{report['latency_ms'][str(t)][name]['onnxruntime']['median_ms']:.1f}" for t in report["threads"]]
        lines.append(f"| {name} | {s['networks']} | {s['parameters']:,} | {s['flops_per_crop'] / 1e6:,.1f} | "
                     + " | ".join(cells) + " |")
    lines.append("")
    for name, r in report["ratios"].items():
        parts = [f"FLOPs {r['flops']:.0f}x"] + [f"{k.replace('_', ' ')} {v:.0f}x" for k, v in r.items()
                                                  if k.endswith("threads")]
        short = [k.replace("_", " ") for k, v in r.items() if k != "parameters" and v < report["goal_ratio"]]
        lines.append(f"{report['reference']} / {name}: " + ", ".join(parts)
                     + (f" -> meets >= {report['goal_ratio']:.0f}x on every count" if not short
                        else f" -> misses >= {report['goal_ratio']:.0f}x on: {', '.join(short)}"))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ensemble", required=True, help="ensemble run folder (every member done)")
    parser.add_argument("--student", action="append", default=[], metavar="NAME=MODEL_PT", required=True,
                        help="a student's model.pt (repeatable)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", default=None, help="also write the report here")
    args = parser.parse_args(argv)

    from training.ensemble.plan import member_dir
    from training.ensemble.teacher import done_members
    from training.train import load_trained_model

    groups: dict[str, list[nn.Module]] = {}
    for text in args.student:
        name, sep, path = text.partition("=")
        if not sep or not name or not Path(path).is_file():
            raise InputValidationError(f"--student {text!r}: expected NAME=PATH to an existing model.pt")
        groups[name] = [load_trained_model(path)]
    run = Path(args.ensemble)
    members = done_members(run, require_all=True)
    groups["ensemble"] = [load_trained_model(member_dir(run, m) / "model.pt") for m in members]
    report = cost_report(groups, "ensemble", args.threads, args.rounds)
    report.update(ensemble_run=str(run), students={t.partition("=")[0]: t.partition("=")[2] for t in args.student})
    print(render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
