"""`sr300-liveness evaluate`: ISO/IEC 30107-3 metrics of score files against a label list.

Several --scores files are ensemble members: each file's columns (test-time views) are averaged
row by row, then the files. Row i of every file belongs to row i of the label list.
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="APCER, BPCER, ACER, EER and TPR@FPR of score files",
        description="Evaluate P(live) score files against a challenge label list "
        "(TPR@FPR empirical and interpolated, APCER/BPCER/ACER at a threshold, EER).",
    )
    # Where the scores come from. Only files today; scoring a model on a list file will be a
    # second, mutually exclusive source here (see _load_scores).
    parser.add_argument("--scores", nargs="+", required=True, metavar="FILE",
                        help="score file(s): one row per sample, columns = test-time views; several files are averaged")
    parser.add_argument("--labels", required=True, metavar="FILE",
                        help="label list (CSV 'rgb,depth,ir,label' or 'color depth ir label' lines)")
    parser.add_argument("--live-label", type=int, choices=(0, 1), default=1,
                        help="label value that means live in the list (1 in the 2019 challenge; default 1)")
    parser.add_argument("--threshold", type=float, default=0.5, help="P(live) threshold for APCER/BPCER/ACER (default 0.5)")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.add_argument("--report", metavar="DIR", default=None, help="also write report.md, roc.png and det.png into DIR")
    parser.set_defaults(handler=run)


def _load_scores(args: argparse.Namespace) -> np.ndarray:
    """The one place that turns the command line into a score array (add other sources here)."""
    from calibration.io import read_many

    return read_many(args.scores)


def _table(evaluation) -> str:
    e = evaluation
    rows = [("samples", f"{e.n_live} live, {e.n_attack} attack")]
    for key, point in e.tpr_at_fpr.items():
        rows.append((f"TPR@FPR={key}", f"{point.empirical:.6f} empirical, {point.interpolated:.6f} interpolated"))
    rows += [
        ("threshold", f"{e.threshold:g}"),
        ("APCER", f"{e.apcer:.6f} ({e.n_attack_accepted}/{e.n_attack}; 95% upper {e.apcer_upper_95:.6f})"),
        ("BPCER", f"{e.bpcer:.6f} ({e.n_live_rejected}/{e.n_live}; 95% upper {e.bpcer_upper_95:.6f})"),
        ("ACER", f"{e.acer:.6f}"),
        ("EER", f"{e.eer:.6g} (ROC/diagonal crossing); {e.eer_closest_point:.6g} (closest point)"),
        ("AUC", f"{e.auc:.8f}"),
    ]
    for key, rate in e.apcer_per_attack_type.items():
        worst = "  <- worst" if key == e.worst_attack_type else ""
        rows.append((f"APCER type {key}", f"{rate.apcer:.6f} ({rate.n_accepted}/{rate.n_attack}){worst}"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def run(args: argparse.Namespace) -> int:
    from calibration.io import read_label_list
    from calibration.metrics import evaluate
    from sdk.errors import InputValidationError

    scores = _load_scores(args)
    label_list = read_label_list(args.labels, live_label=args.live_label)
    if len(label_list) != scores.shape[0]:
        raise InputValidationError(
            f"{args.labels} has {len(label_list)} rows but the score file(s) have {scores.shape[0]}"
        )
    evaluation = evaluate(scores, label_list.labels, args.threshold, attack_types=label_list.attack_types)
    report_path = None
    if args.report:
        from calibration.report import write_report

        report_path = write_report(args.report, scores, label_list.labels, evaluation,
                                   title="Liveness evaluation", sources=[str(p) for p in args.scores])
    if args.json:
        data = evaluation.to_json_dict()
        if report_path is not None:
            data["report"] = str(report_path)
        print(json.dumps(data))
    else:
        print(_table(evaluation))
        if report_path is not None:
            print(f"report written to {report_path}")
    return 0
