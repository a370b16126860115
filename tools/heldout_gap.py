"""Students against their ensemble on the held-out parts: TPR@FPR 1e-3 and the paired gap.

    python tools/heldout_gap.py --ensemble runs/s4/ensembleH \\
        --model S=runs/evalS/runS/model.pt --model shipped=sdk/bundles/mlfa_student_sim \\
        --eval yaw_gt20=runs/ho20/yaw_gt20:test_list.txt ... --pool pooled=yaw_gt20,... \\
        --cache runs/ho20/scores [--target-fpr 1e-3] [--tolerance-points 0.3] [--resamples 2000] \\
        [--best-member-on runs/s4/eval:val_list.txt] [--threads 2] [--no-tta] [--json report.json] [--markdown table.md]

Render the sets with `sr300-liveness synth-dataset --holdout FAMILY --frames-per-subject 1` (one
crop per session: the bootstrap resamples crops as independent sessions) and a dataset seed no
training set used. Both models are scored with flip TTA, as each decides, unless `--no-tta`. Each
student's gap to the ensemble gets a verdict for "student >= ensemble - tolerance": met, not met,
or unresolved at this size (training.heldout_gap, calibration.paired).
Exit status 0 whatever the verdicts; 3 on bad input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tools.compare_models import parse_pair, parse_root_list, parse_sets  # noqa: E402  (the same NAME=ROOT:LIST syntax)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ensemble", required=True, help="a finished ensemble run (every member done)")
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=MODEL",
                        help="a student (repeatable): a training run's model.pt, an ONNX graph, or a model bundle "
                             "folder (verified, then run by ONNX Runtime as the device runs it)")
    parser.add_argument("--eval", action="append", required=True, metavar="NAME=ROOT:LIST",
                        help="an evaluation list; repeat a NAME to join several lists into one set")
    parser.add_argument("--pool", action="append", default=[], metavar="NAME=SET,SET", help="a set made of scored sets")
    parser.add_argument("--cache", required=True, help="folder of cached scores (per network and list)")
    parser.add_argument("--best-member-on", default=None, metavar="ROOT:LIST",
                        help="also report the member with the highest TPR at the target FPR on this list "
                             "(a calibration list, never a test list)")
    parser.add_argument("--target-fpr", type=float, default=1e-3)
    parser.add_argument("--tolerance-points", type=float, default=0.3, help="allowed shortfall, in percentage points")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--threads", type=int, default=1)
    scoring = parser.add_mutually_exclusive_group()
    # The default is the quantity both models decide on: a bundle's decision rule scores a crop
    # and its flip, and `ensemble score` runs every member with flip TTA.
    scoring.add_argument("--tta", dest="tta", action="store_true", default=True,
                         help="mean P(live) of the crop and its flip, as the device and `ensemble score` score (default)")
    scoring.add_argument("--no-tta", dest="tta", action="store_false",
                         help="the centre crop alone (the figures recorded before 2026-12-07 15:00 UTC)")
    parser.add_argument("--json", default=None, help="write the report here")
    parser.add_argument("--markdown", default=None, help="write the table here")
    args = parser.parse_args(argv)

    from sdk.errors import LivenessError
    from training.heldout_gap import measure, render_markdown
    from training.train import atomic_write_text

    evaluations, pools = parse_sets(args.eval, args.pool)
    try:
        report = measure(args.ensemble, dict(parse_pair(t, "--model") for t in args.model), evaluations, cache=args.cache,
                         pools=pools, target_fpr=args.target_fpr, tolerance_points=args.tolerance_points,
                         resamples=args.resamples, seed=args.seed, tta=args.tta, threads=args.threads,
                         best_member_on=parse_root_list(args.best_member_on) if args.best_member_on else None,
                         log=lambda s: print(s, file=sys.stderr))
    except (LivenessError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    text = render_markdown(report)
    if args.json:
        import json

        atomic_write_text(Path(args.json), json.dumps(report, indent=2) + "\n")
    if args.markdown:
        atomic_write_text(Path(args.markdown), text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
