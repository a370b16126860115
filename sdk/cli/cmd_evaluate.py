"""`sr300-liveness evaluate`: ISO/IEC 30107-3 metrics of score files against a label list.

Several --scores files are ensemble members: each file's columns (test-time views) are averaged
row by row, then the files. Row i of every file belongs to row i of the label list.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="APCER, BPCER, ACER, EER and TPR@FPR of score files",
        description="Evaluate P(live) score files against a challenge label list "
        "(TPR@FPR empirical and interpolated, APCER/BPCER/ACER at a threshold, EER).",
    )
    # Where the scores come from: score files, or a trained model run on the label list's images.
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--scores", nargs="+", metavar="FILE",
                        help="score file(s): one row per sample, columns = test-time views; several files are averaged")
    source.add_argument("--model", nargs="+", metavar="MODEL",
                        help="trained model.pt file(s) (needs the train extra) or model bundle folder(s), scored on the "
                        "images of --labels with test-time flip; several models are averaged (an ensemble)")
    parser.add_argument("--root", default=None, metavar="DIR",
                        help="with --model: folder the list's image paths are relative to (default: the list's folder)")
    parser.add_argument("--save-scores", default=None, metavar="FILE",
                        help="with --model: also write the ensemble's per-sample scores (CSV, one column)")
    parser.add_argument("--labels", required=True, metavar="FILE",
                        help="label list (CSV 'rgb,depth,ir,label' or 'color depth ir label' lines)")
    parser.add_argument("--live-label", type=int, choices=(0, 1), default=1,
                        help="label value that means live in the list (1 in the 2019 challenge; default 1)")
    parser.add_argument("--threshold", type=float, default=0.5, help="P(live) threshold for APCER/BPCER/ACER (default 0.5)")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.add_argument("--report", metavar="DIR", default=None, help="also write report.md, roc.png and det.png into DIR")
    parser.set_defaults(handler=run)


def _load_scores(args: argparse.Namespace) -> np.ndarray:
    """The one place that turns the command line into a score array."""
    if args.scores:
        from calibration.io import read_many

        return read_many(args.scores)
    root = Path(args.root) if args.root else Path(args.labels).resolve().parent
    members = [_score_model(Path(model), root, args.labels, args.live_label) for model in args.model]
    scores = np.mean(members, axis=0)
    if args.save_scores:
        Path(args.save_scores).write_text("score\n" + "".join(f"{v!r}\n" for v in scores.tolist()), encoding="utf-8")
    return scores


def _score_model(model: Path, root: Path, labels: str, live_label: int) -> np.ndarray:
    """Mean P(live) over the centre crop and its flip, for every row of the list."""
    if model.is_dir():  # a bundle: the device engine scores the stored crops
        from sdk.engine import ModelBundle, create_engine
        from training.data.casia import load_model_crops, read_list

        bundle = ModelBundle.load(model)
        engine = create_engine("onnxruntime", bundle.model_path)
        samples = read_list(labels, live_label=live_label)
        out = []
        for start in range(0, len(samples), 64):
            batch = [load_model_crops(root, sample) for sample in samples[start : start + 64]]
            out.append(engine.score_crops(batch, tta=True))
        engine.close()
        return np.concatenate(out)
    from training.train import load_trained_model, predict

    return predict(load_trained_model(model), labels, root=root, live_label=live_label)


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
    for key, point in e.bpcer_at_apcer.items():
        note = "" if point["supported"] else f"  (too few attacks for this APCER: {e.n_attack})"
        rows.append((f"BPCER@APCER={key}", f"{point['bpcer']:.6f} (95% upper {point['bpcer_upper_95']:.6f}) "
                     f"at threshold {point['threshold']:.6g}{note}"))
    for key, rate in e.apcer_per_attack_type.items():
        worst = "  <- worst species" if key == e.worst_attack_type else ""
        rows.append((f"APCER species {key}", f"{rate.apcer:.6f} ({rate.n_accepted}/{rate.n_attack}; "
                     f"95% upper {rate.apcer_upper_95:.6f}){worst}"))
    if e.worst_attack_type is not None:
        rows.append(("worst species", f"{e.worst_attack_type} (APCER {e.max_apcer_per_attack_type:.6f})"))
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
                                   title="Liveness evaluation", sources=[str(p) for p in (args.scores or args.model)])
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
