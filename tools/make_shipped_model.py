"""Remake the model that ships inside the SDK (sdk/bundles/mlfa_student_sim), start to end.

    python tools/make_shipped_model.py --work runs/shipped

1. renders three CASIA-format simulator datasets (sr300-liveness synth-dataset) with disjoint
   subject seeds: "eval" (dataset seed 0), "train" (seed 1) and "extra" (seed 2),
2. trains a small MLFA network (preset student_small, resumable: rerun to continue) on every
   split of "train" and "extra" (CASIA types 4-6, 1-3 and the extra attacks: screen replay, 3D
   mask, plain prints, so the product model has seen every attack family) plus the Training split
   of "eval",
3. sets operating points on eval's Val list (attack types 1-3, subjects never trained on),
4. reports eval's Test list + its extra attacks (screen replay, mask, plain prints) on subjects
   used neither in training nor in calibration,
5. exports ONNX, checks it against torch on real crops, and writes the bundle with hashes.

Every step skips work already done, so a killed run loses nothing: run the same command again.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sdk.engine.bundle import DEFAULT_BUNDLE, SHIPPED_DIR  # noqa: E402


def _rooted_lines(work: Path, folder: str, list_name: str) -> list[str]:
    """Lines of a challenge list with its three image paths made relative to `work`."""
    rows = []
    for line in (work / folder / list_name).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts:
            rows.append(" ".join([f"{folder}/{p}" for p in parts[:3]] + parts[3:]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/shipped", help="working folder (dataset, training run, reports)")
    parser.add_argument("--live", type=int, default=120, help="live subjects of the training dataset (the eval dataset gets half)")
    parser.add_argument("--per-attack", type=int, default=45, help="subjects per attack type of the training dataset")
    parser.add_argument("--frames-per-subject", type=int, default=4)
    parser.add_argument("--preset", default="student_small", help="training preset or config file")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="training config override, e.g. model.options.width=0.125 (repeatable)")
    parser.add_argument("--run-name", default="run", help="training run folder inside --work")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default; 1 is faster when other jobs share the cores)")
    parser.add_argument("--out", default=str(SHIPPED_DIR / DEFAULT_BUNDLE), help="bundle folder to write")
    parser.add_argument("--version", default="1.0.0")
    args = parser.parse_args()

    from sdk.sim.dataset import write_dataset
    from training.config import load_config, parse_override
    from training.ship import package_model, write_report
    from training.train import train

    work = Path(args.work)
    timings: dict[str, float] = {}
    # "extra" (dataset seed 2) is all training data too; its TestExtra split triples the screen,
    # mask and plain-print subjects, the families the CASIA-format Training split lacks.
    sets = {"eval": (0, max(3, args.live // 2), args.per_attack), "train": (1, args.live, args.per_attack),
            "extra": (2, max(3, args.live // 3), 2 * args.per_attack)}
    manifests = {}
    for name, (seed, live, per_attack) in sets.items():
        folder = work / name
        if not (folder / "manifest.json").is_file():
            t_set = time.perf_counter()
            write_dataset(folder, live=live, per_attack=per_attack, frames_per_subject=args.frames_per_subject,
                          seed=seed, workers=args.workers)
            (folder / "timing.json").write_text(json.dumps({"seconds": round(time.perf_counter() - t_set, 1)}))
        manifests[name] = json.loads((folder / "manifest.json").read_text())
    # Rendering time as measured when each dataset was made (a rerun reuses them).
    timings["dataset_s"] = round(sum(json.loads((work / n / "timing.json").read_text())["seconds"]
                                     for n in sets if (work / n / "timing.json").is_file()), 1)

    # One training list over both trees (paths relative to the work folder).
    every_list = ("train_list.txt", "val_list.txt", "test_list.txt", "test_extra_list.txt")
    train_lists = [(folder, n) for folder in ("train", "extra") for n in every_list]
    train_lists.append(("eval", "train_list.txt"))
    lines = [line for folder, name in train_lists for line in _rooted_lines(work, folder, name)]
    (work / "ship_train_list.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    val_lines = _rooted_lines(work, "eval", "val_list.txt")
    (work / "ship_val_list.txt").write_text("\n".join(val_lines) + "\n", encoding="utf-8")

    overrides = {"data.root": str(work), "data.train_list": "ship_train_list.txt", "data.val_list": "ship_val_list.txt"}
    if args.epochs:
        overrides["optim.epochs"] = args.epochs
    if args.threads:
        overrides["runtime.threads"] = args.threads
    overrides.update(parse_override(text) for text in args.set)
    config = load_config(args.preset).replace(**overrides)
    run_dir = work / args.run_name
    result = train(config, run_dir, resume=(run_dir / "checkpoint.pt").exists())
    # Training compute summed over epochs (a resumed run would otherwise count only its last part).
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as handle:
        timings["train_s"] = round(sum(float(row["epoch_time_s"]) for row in csv.DictReader(handle)), 1)
    model_file = run_dir / "model.pt"

    t0 = time.perf_counter()
    provenance = {
        "made_by": "tools/make_shipped_model.py",
        "command": " ".join(sys.argv),
        "data": {"generator": "sr300-liveness synth-dataset (sdk.sim)",
                 "datasets": {k: {"seed": m.get("seed"), "splits": m["splits"]} for k, m in manifests.items()},
                 "training_lists": [f"{a}/{b}" for a, b in train_lists], "training_triplets": len(lines)},
        "training": {"preset": args.preset, "config": config.to_dict(), "epochs_done": result.epochs_done},
        "members": [{"model": config.model.name, "options": config.model.options, "seed": config.seed}],
        "calibration": "operating points set on eval/val_list.txt (attack types 1-3 + live; subjects disjoint from training)",
        "test": "eval/test_list.txt (types 1-3) + eval/test_extra_list.txt (screen_replay, mask_3d, print_flat, print_curved); subjects disjoint from training and calibration",
    }
    bundle, report = package_model(
        model_file, args.out, data_root=work / "eval", calibration_list="val_list.txt",
        test_lists=["test_list.txt", "test_extra_list.txt"], name="mlfa_student_sim", version=args.version,
        provenance=provenance,
    )
    timings["package_s"] = round(time.perf_counter() - t0, 1)
    report["timings"] = timings
    write_report(work / "shipped_report.json", report)
    doc = REPO / "docs" / "shipped_model.md"
    doc.write_text(render_markdown(report, provenance, " ".join(["python", *sys.argv])), encoding="utf-8")
    print(json.dumps({"bundle": str(bundle.path), "timings": timings, "doc": str(doc)}, indent=2))
    return 0


def render_markdown(report: dict, provenance: dict, command: str) -> str:
    """docs/shipped_model.md: how the shipped model was made and what it measured."""
    test = report["metrics"].get("test", {})
    points = report["operating_points"]
    data = provenance["data"]
    lines = [
        "# The shipped model: `sdk/bundles/mlfa_student_sim`",
        "",
        "Made by `tools/make_shipped_model.py` on a 2-core x86_64 VM (CPU only, shared with other jobs).",
        "Remake it with:",
        "",
        f"    {command}",
        "",
        f"Time: dataset {report['timings']['dataset_s']} s, training {report['timings']['train_s']} s, "
        f"calibration + test + export {report['timings']['package_s']} s.",
        "",
        "## Data",
        "",
        f"Two simulator datasets with disjoint subject seeds ({data['training_triplets']} training triplets in all):",
        "",
        "| dataset | split | triplets | live | attack | scenarios |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, info in data["datasets"].items():
        for split, s in info["splits"].items():
            lines.append(f"| {name} (seed {info['seed']}) | {split} | {s['triplets']} | {s['live']} | {s['attack']} | {', '.join(s['scenarios'])} |")
    lines += [
        "",
        f"Training lists: {', '.join(data['training_lists'])}. Calibration: {provenance['calibration']}. "
        f"Test: {provenance['test']}.",
        "",
        "## Network and training",
        "",
        f"`{provenance['members'][0]['model']}` with options `{provenance['members'][0]['options']}`, seed "
        f"{provenance['members'][0]['seed']}, preset `{provenance['training']['preset']}` "
        f"({provenance['training']['epochs_done']} epochs, Adam, cosine learning rate).",
        "",
        "## Operating points (set on the calibration split)",
        "",
        "| name | target APCER | threshold | APCER | 95 % upper bound | BPCER | attacks / live |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, p in points.items():
        lines.append(f"| {name} | {p['target_apcer']:g} | {p['threshold']:.6f} | {p['apcer']:.4f} | "
                     f"{p['apcer_upper_95']:.4f} | {p['bpcer']:.4f} | {p['n_attack']} / {p['n_live']} |")
    if test:
        tpr = test["tpr_at_fpr"]
        lines += [
            "",
            f"## Held-out test ({test['n_live']} live, {test['n_attack']} attack crops; operating point {test['operating_point']})",
            "",
            "| TPR@FPR | 1e-2 | 1e-3 | 1e-4 |",
            "| --- | --- | --- | --- |",
            "| empirical (largest TPR with FPR <= target) | " + " | ".join(f"{tpr[k]['empirical']:.4f}" for k in ("1e-2", "1e-3", "1e-4")) + " |",
            "| interpolated | " + " | ".join(f"{tpr[k]['interpolated']:.4f}" for k in ("1e-2", "1e-3", "1e-4")) + " |",
            "",
            f"At the shipped threshold {test['threshold']:.6f}: APCER {test['apcer']:.4f} "
            f"({test['n_attack_accepted']}/{test['n_attack']}, 95 % upper {test['apcer_upper_95']:.4f}), "
            f"BPCER {test['bpcer']:.4f} ({test['n_live_rejected']}/{test['n_live']}), ACER {test['acer']:.4f}, EER {test['eer']:.4f}.",
            "",
            "| attack | APCER | accepted / attacks |",
            "| --- | --- | --- |",
        ]
        for kind, rate in test.get("apcer_per_attack_type", {}).items():
            lines.append(f"| {kind} | {rate['apcer']:.4f} | {rate['n_accepted']}/{rate['n_attack']} |")
        lines += ["", "With so few attack crops per type, a zero APCER only bounds the true rate by about 3/n "
                  "(rule of three): these are figures for the simulator, not a claim about real attacks."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
