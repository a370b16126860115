"""Remake the model that ships inside the SDK (sdk/bundles/mlfa_student_sim), start to end.

    python tools/make_shipped_model.py --work runs/shipped

1. renders a CASIA-format simulator dataset (sr300-liveness synth-dataset),
2. trains a small MLFA network on it (preset student_small, resumable: rerun to continue),
3. sets operating points on the Val list (attack types 1-3, subjects never trained on),
4. reports the Test list + the extra attacks (screen replay, mask, plain prints) on subjects
   used neither in training nor in calibration,
5. exports ONNX, checks it against torch on real crops, and writes the bundle with hashes.

Every step skips work already done, so a killed run loses nothing: run the same command again.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sdk.engine.bundle import DEFAULT_BUNDLE, SHIPPED_DIR  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/shipped", help="working folder (dataset, training run, reports)")
    parser.add_argument("--live", type=int, default=240, help="live training subjects (val/test get a third each)")
    parser.add_argument("--per-attack", type=int, default=80, help="training subjects per attack type")
    parser.add_argument("--frames-per-subject", type=int, default=4)
    parser.add_argument("--preset", default="student_small", help="training preset or config file")
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(SHIPPED_DIR / DEFAULT_BUNDLE), help="bundle folder to write")
    parser.add_argument("--version", default="1.0.0")
    args = parser.parse_args()

    from sdk.sim.dataset import write_dataset
    from training.config import load_config
    from training.ship import package_model, write_report
    from training.train import train

    work = Path(args.work)
    data = work / "data"
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    if not (data / "manifest.json").is_file():
        write_dataset(data, live=args.live, per_attack=args.per_attack, frames_per_subject=args.frames_per_subject,
                      seed=0, workers=args.workers)
    timings["dataset_s"] = round(time.perf_counter() - t0, 1)
    dataset_manifest = json.loads((data / "manifest.json").read_text())

    t0 = time.perf_counter()
    overrides = {"data.root": str(data), "data.train_list": "train_list.txt", "data.val_list": "val_list.txt"}
    if args.epochs:
        overrides["optim.epochs"] = args.epochs
    config = load_config(args.preset).replace(**overrides)
    run_dir = work / "train"
    result = train(config, run_dir, resume=(run_dir / "checkpoint.pt").exists())
    timings["train_s"] = round(time.perf_counter() - t0, 1)
    model_file = run_dir / "model.pt"

    t0 = time.perf_counter()
    provenance = {
        "made_by": "tools/make_shipped_model.py",
        "command": " ".join(sys.argv),
        "data": {"generator": "sr300-liveness synth-dataset (sdk.sim)", "splits": dataset_manifest["splits"],
                 "seed": dataset_manifest.get("seed")},
        "training": {"preset": args.preset, "config": config.to_dict(), "epochs_done": result.epochs_done},
        "members": [{"model": config.model.name, "options": config.model.options, "seed": config.seed}],
        "calibration": "operating points set on Val (attack types 1-3 + live; subjects disjoint from training)",
        "test": "Test (types 1-3) + test_extra (screen_replay, mask_3d, print_flat, print_curved); subjects disjoint from training and calibration",
    }
    bundle, report = package_model(
        model_file, args.out, data_root=data, calibration_list="val_list.txt",
        test_lists=["test_list.txt", "test_extra_list.txt"], name="mlfa_student_sim", version=args.version,
        provenance=provenance,
    )
    timings["package_s"] = round(time.perf_counter() - t0, 1)
    report["timings"] = timings
    write_report(work / "shipped_report.json", report)
    print(json.dumps({"bundle": str(bundle.path), "timings": timings}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
