"""Interpolate trainings of one network in weight space (WiSE-FT) into a run folder.

    python tools/interpolate_weights.py --base runs/recovered/S_2.38.0/model.pt \\
        --tuned runs/recovered/runZ/model.pt --alpha 0.5 --out runs/recovered/runAA

The folder holds model.pt (``(1 - alpha) * base + alpha * tuned``), the tuned run's config,
warm-start report and teacher, and interpolation.json (both parents' SHA-256 and alpha), so
`tools/package_fine_tune.py --run` packages it with that record in its provenance. Fix alpha in
the candidate's rule before anything is scored.

Repeat --tuned to interpolate toward the uniform average of several runs trained on from the same
base (a model soup); interpolation.json then lists them under "soup". A run whose init_report.json
names another warm start than --base is refused.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="model.pt the tuned run started from")
    parser.add_argument("--tuned", required=True, action="append",
                        help="model.pt of a run trained on from it (repeat: their uniform soup)")
    parser.add_argument("--alpha", required=True, type=float, help="weight of the tuned network, in [0, 1]")
    parser.add_argument("--out", required=True, help="run folder to write")
    args = parser.parse_args(argv)

    from training.interpolate import interpolate_runs

    record = interpolate_runs(args.base, args.tuned, args.alpha, args.out)
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
