"""`sr300-liveness distill`: train a small student on a trained ensemble's soft targets.

    sr300-liveness distill --ensemble RUN --config student_kd --out RUN2 [--root DIR] [--resume]
    sr300-liveness distill --teacher-model RUN1/model.pt --config CFG --out RUN2 [...]

The teacher (mean of the members' probabilities at temperature T) runs live on every augmented
crop the student sees; RUN2 is an ordinary training run (checkpoints, metrics, model.pt) plus
teacher.json (every member's name, config and weight hash). ``--teacher-model`` puts one trained
network (itself distilled from the ensemble) in the ensemble's place: a teacher assistant for a
student too small to follow the 24 members directly.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "distill",
        help="distil a trained ensemble into a small student (needs torch)",
        description="Knowledge distillation: KD at temperature T plus cross-entropy, teacher run live on the "
        "same augmented crops, optional mixup and unlabelled renders (config section 'distill').",
    )
    teacher = parser.add_mutually_exclusive_group(required=True)
    teacher.add_argument("--ensemble", help="ensemble run folder (every member trained)")
    teacher.add_argument("--teacher-model", metavar="MODEL_PT",
                         help="one trained model.pt as the teacher instead (a teacher assistant)")
    parser.add_argument("--config", required=True, help="student config file or preset (e.g. student_kd)")
    parser.add_argument("--out", required=True, help="output run folder of the student")
    parser.add_argument("--root", help="override data.root")
    parser.add_argument("--train-list", help="override data.train_list (labelled)")
    parser.add_argument("--val-list", help="override data.val_list")
    parser.add_argument("--unlabeled", action="append", default=None, metavar="LIST",
                        help="override distill.unlabeled_lists (repeatable; labels ignored)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    parser.add_argument("--partial", action="store_true", help="allow an ensemble with members still untrained")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from training.config import config_with_overrides, load_config
    from training.distill import distill

    config = config_with_overrides(load_config(args.config), args.set, {
        "data.root": args.root, "data.train_list": args.train_list, "data.val_list": args.val_list,
        "distill.unlabeled_lists": args.unlabeled}, quiet=args.quiet)
    result = distill(args.ensemble, config, args.out, teacher_model=args.teacher_model, resume=args.resume,
                     require_all=not args.partial)
    print(f"distilled {result.epochs_done} epoch(s) into {Path(args.out) / 'model.pt'}; teacher {Path(args.out) / 'teacher.json'}")
    return 0
