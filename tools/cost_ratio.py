"""Cost of students against their 24-member ensemble, in one run (issue 11's ">= 100x cheaper").

FLOPs and parameters are counted once; torch and ONNX Runtime latency are measured per crop,
interleaved (every round runs every group in turn, so load on the machine hits all alike), once
per thread count. Thread count matters: ONNX Runtime spreads a large network over the cores but
a small one spends its time in per-operator overhead, so the ratio at 1 thread and at all cores
differ, and both are printed.

    python tools/cost_ratio.py --ensemble runs/s4/ensembleH \
        --student 2.24.0=runs/s4/studentH/model.pt --student M=runs/s4/studentM/model.pt \
        --threads 1 2 --rounds 30 --json cost.json
    python tools/cost_ratio.py --architectures-of sdk/bundles/mlfa_student_sim --threads 1 2

FLOPs and latency depend on a network's architecture, not on its weights, so
``--architectures-of BUNDLE`` measures a bundle's cost without any checkpoint: the 24 members are
built, with random weights, from the architectures its provenance records, and so is its own
network, whose convolutions are first checked against the bundle's ONNX graph (weight shapes and
strides), so that the network measured is the one shipped.
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
from sdk.validate import read_json_in_folder  # noqa: E402
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


def _conv_signature_torch(network: nn.Module) -> list[tuple]:
    return sorted((tuple(m.weight.shape), tuple(m.stride)) for m in network.modules() if isinstance(m, nn.Conv2d))


def _conv_signature_onnx(path: Path) -> list[tuple]:
    import onnx

    graph = onnx.load(str(path)).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    signature = []
    for node in graph.node:
        if node.op_type == "Conv" and node.input[1] in shapes:
            strides = next((tuple(a.ints) for a in node.attribute if a.name == "strides"), (1, 1))
            signature.append((shapes[node.input[1]], strides))
    return sorted(signature)


def bundle_architectures(bundle: str | Path) -> tuple[str, nn.Module, list[nn.Module]]:
    """(label, the bundle's own network, its ensemble's members), every one with random weights.

    The bundle's network is built from the newest training record of its provenance (a fine-tune,
    else the distillation) and must match the bundle's ONNX graph convolution for convolution.
    """
    from training.models.registry import create_model
    from training.recover import newest_training_record

    folder = Path(bundle)
    manifest_path = folder / "manifest.json"
    manifest = read_json_in_folder(folder, "manifest.json", InputValidationError, "model bundle")
    provenance = manifest.get("provenance", {})
    try:
        spec = newest_training_record(manifest)[1]["config"].get("model")
    except InputValidationError as error:
        raise InputValidationError(f"{manifest_path}: {error}") from None
    if not spec:
        raise InputValidationError(f"{manifest_path}: the provenance records no training config of its network")
    members = provenance.get("members") or []
    expected = (provenance.get("ensemble") or {}).get("n_members")
    if not members or (expected is not None and len(members) != expected):
        raise InputValidationError(f"{manifest_path}: the provenance lists {len(members)} members, "
                                   f"its ensemble {expected}")
    network = create_model(spec["name"], **spec.get("options", {})).eval()
    shipped = _conv_signature_onnx(folder / manifest["model_file"])
    if _conv_signature_torch(network) != shipped:
        raise InputValidationError(f"{spec['name']} {spec.get('options')} is not the network of "
                                   f"{folder / manifest['model_file']} (convolution shapes or strides differ)")
    ensemble = [create_model(m["model"], **m.get("options", {})).eval() for m in members]
    return f"{manifest.get('name')} {manifest.get('version')}", network, ensemble


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ensemble", help="ensemble run folder (every member done)")
    source.add_argument("--architectures-of", metavar="BUNDLE",
                        help="a bundle: its network and its provenance's members, with random weights")
    parser.add_argument("--student", action="append", default=[], metavar="NAME=MODEL_PT",
                        help="a student's model.pt (repeatable; required with --ensemble)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--json", default=None, help="also write the report here")
    args = parser.parse_args(argv)

    from training.ensemble.plan import member_dir
    from training.ensemble.teacher import done_members
    from training.train import load_trained_model

    if args.ensemble and not args.student:
        parser.error("--ensemble needs at least one --student")
    groups: dict[str, list[nn.Module]] = {}
    for text in args.student:
        name, sep, path = text.partition("=")
        if not sep or not name or not Path(path).is_file():
            raise InputValidationError(f"--student {text!r}: expected NAME=PATH to an existing model.pt")
        groups[name] = [load_trained_model(path)]
    if args.architectures_of:
        label, network, members_built = bundle_architectures(args.architectures_of)
        groups[label] = [network]
        groups["ensemble"] = members_built
    else:
        run = Path(args.ensemble)
        members = done_members(run, require_all=True)
        groups["ensemble"] = [load_trained_model(member_dir(run, m) / "model.pt") for m in members]
    report = cost_report(groups, "ensemble", args.threads, args.rounds)
    report.update(students={t.partition("=")[0]: t.partition("=")[2] for t in args.student})
    if args.architectures_of:
        report.update(architectures_of=str(args.architectures_of),
                      weights="random: FLOPs and latency depend on the architecture only")
    else:
        report.update(ensemble_run=str(args.ensemble))
    print(render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
