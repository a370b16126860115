"""Package a fine-tuned student as a bundle that keeps where its weights came from.

A fine-tune (`sr300-liveness train` with `init.weights` set to a distilled student) makes new
weights whose history is the base bundle's: the 24 members and the distillation run. This tool
exports the fine-tuned `model.pt` with operating points on crops (as `sr300-liveness export`
does) and writes a provenance that is the base manifest's, less what described the base's own
file and points, plus `fine_tune` (the run's config, its warm-start report and a note). The
bundle it writes is then calibrated on recordings with `sr300-liveness calibrate`. A run made by
`sr300-liveness distill --teacher-model` (warm-started, taught by one trained network) packages
the same way; its teacher.json goes into `fine_tune.teacher`.

    python tools/package_fine_tune.py --run runs/evalM/runN --base-manifest 2.24.0_manifest.json \\
        --data runs/s4/eval --out runs/evalM/bundle_2.27.0 --version 2.27.0 \\
        --note "2.24.0's student fine-tuned with augment.colour_swap_live=0.25"

(2.24.0's manifest: `git show f8789d8:sdk/bundles/mlfa_student_sim/manifest.json`.)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdk.errors import InputValidationError  # noqa: E402

#: Provenance keys that describe the base bundle's own file, points and calibration: the new
#: weights get their own.
BASE_ONLY_KEYS = ("model_file", "data_root", "calibration_list", "test_lists", "export", "calibration",
                  "comparison", "cost")


def fine_tune_provenance(base_manifest: Mapping[str, Any], run_dir: Path, note: str, command: str) -> dict[str, Any]:
    """The base manifest's provenance (without BASE_ONLY_KEYS) plus ``fine_tune`` for ``run_dir``."""
    base = base_manifest.get("provenance")
    if not isinstance(base, Mapping):
        raise InputValidationError("the base manifest has no provenance to keep")
    missing = [name for name in ("config.json", "init_report.json", "model.pt") if not (run_dir / name).is_file()]
    if missing:
        raise InputValidationError(f"{run_dir} is not a finished fine-tune run (missing {', '.join(missing)})")
    init = json.loads((run_dir / "init_report.json").read_text(encoding="utf-8"))
    if not isinstance(init, Mapping) or not init.get("weights"):
        raise InputValidationError(f"{run_dir} did not warm-start from weights (init_report.json): not a fine-tune")
    provenance = {key: value for key, value in base.items() if key not in BASE_ONLY_KEYS}
    if "fine_tune" in base:  # a fine-tune of a fine-tune: the earlier ones stay, oldest first
        provenance["earlier_fine_tunes"] = [*base.get("earlier_fine_tunes", []), base["fine_tune"]]
    provenance["made_by"] = "tools/package_fine_tune.py"
    provenance["command"] = command
    provenance["fine_tune"] = {
        "run": str(run_dir),
        "base": {"name": base_manifest.get("name"), "version": base_manifest.get("version")},
        "config": json.loads((run_dir / "config.json").read_text(encoding="utf-8")),
        "init": init,
        "note": note,
    }
    teacher = run_dir / "teacher.json"
    if teacher.is_file():  # a distillation run (e.g. from a teacher model): who taught it, with hashes
        provenance["fine_tune"]["teacher"] = json.loads(teacher.read_text(encoding="utf-8"))
    data = run_dir / "data.json"
    if data.is_file():  # which samples the run trained on (counts and SHA-256 of its lists)
        provenance["fine_tune"]["data"] = json.loads(data.read_text(encoding="utf-8"))
    interpolation = run_dir / "interpolation.json"
    if interpolation.is_file():  # weights interpolated between the base and a run trained on from it
        provenance["fine_tune"]["interpolation"] = json.loads(interpolation.read_text(encoding="utf-8"))
    return provenance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="fine-tune run folder (model.pt, config.json, init_report.json)")
    parser.add_argument("--base-manifest", required=True, help="manifest.json of the bundle the fine-tune started from")
    parser.add_argument("--data", required=True, help="dataset root with the lists the points are set and tested on")
    parser.add_argument("--calibration-list", default="val_list.txt")
    parser.add_argument("--test-list", action="append", default=None,
                        help="held-out list(s) to report (default: test_list.txt and test_extra_list.txt)")
    parser.add_argument("--out", required=True, help="bundle folder to write")
    parser.add_argument("--version", required=True)
    parser.add_argument("--name", default=None, help="model name (default: the base's)")
    parser.add_argument("--note", default="", help="what the fine-tune changed, for the provenance")
    parser.add_argument("--report", default=None, help="also write the packaging report (JSON) here")
    args = parser.parse_args(argv)

    from training.ship import package_model

    run_dir = Path(args.run)
    base_manifest = json.loads(Path(args.base_manifest).read_text(encoding="utf-8"))
    provenance = fine_tune_provenance(base_manifest, run_dir, args.note, " ".join(sys.argv))
    test_lists = args.test_list if args.test_list is not None else ["test_list.txt", "test_extra_list.txt"]
    bundle, report = package_model(run_dir / "model.pt", args.out, data_root=args.data,
                                   calibration_list=args.calibration_list, test_lists=test_lists,
                                   name=args.name or str(base_manifest.get("name", "mlfa_student")),
                                   version=args.version, provenance=provenance)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {bundle.path} ({bundle.name} {bundle.version}); calibrate it on recordings next")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
