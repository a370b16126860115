"""`sr300-liveness ensemble`: the 24-member MLFA ensemble (4 inits x 3 attack folds x 2 seeds) on Ray.

    sr300-liveness ensemble plan --config PRESET --root DIR --out RUN [--json]
    sr300-liveness ensemble train --out RUN [--address ADDR] [--max-parallel N]
    sr300-liveness ensemble status --out RUN [--json]
    sr300-liveness ensemble score --out RUN --labels FILE --root DIR [--json]

Needs the train and ensemble extras (torch, ray[train]). Killing `train` loses nothing: run it
again and it skips finished members and resumes the others from their checkpoints.
"""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ensemble",
        help="plan, train (on Ray), inspect and score the 24-member MLFA ensemble (needs torch and ray)",
        description="The reference method's ensemble: 4 initialisations x 3 attack-specific folds x 2 seeds.",
    )
    sub = parser.add_subparsers(dest="ensemble_command", metavar="ACTION", required=True)

    plan = sub.add_parser("plan", help="write the member table, fold lists and member configs into RUN")
    plan.add_argument("--config", required=True,
                      help="ensemble preset (training/presets/ensembles/), training preset or config file")
    plan.add_argument("--root", required=True, help="dataset root (CASIA-SURF format)")
    plan.add_argument("--out", required=True, help="run folder")
    plan.add_argument("--train-list", default="train_list.txt", help="training list to split into attack folds")
    plan.add_argument("--extra-train", action="append", default=[], metavar="LIST",
                      help="labelled list added to every member's training split (repeatable)")
    plan.add_argument("--init-dir", help="folder with <slot>.safetensors face checkpoints for the init slots")
    plan.add_argument("--warm-start", metavar="RUN",
                      help="trained ensemble run: every member starts from its namesake's trained weights")
    plan.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override a training config key for every member (repeatable)")
    plan.add_argument("--json", action="store_true", help="print the member table as JSON")
    plan.set_defaults(handler=run_plan)

    train = sub.add_parser("train", help="train every member that is not done (one Ray task each)")
    train.add_argument("--out", required=True, help="run folder made by `ensemble plan`")
    train.add_argument("--address", help="join this Ray cluster (default: start a local one)")
    train.add_argument("--max-parallel", type=int, help="at most N members at a time")
    train.add_argument("--num-cpus", type=int, help="CPUs of the local Ray cluster (default: all)")
    train.add_argument("--cpus-per-member", type=int, default=1, help="CPUs (torch threads) per member task")
    train.add_argument("--member", action="append", default=None, help="train only this member (repeatable)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=run_train)

    status = sub.add_parser("status", help="member table with each member's progress")
    status.add_argument("--out", required=True)
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=run_status)

    score = sub.add_parser("score", help="score a labelled list with every member (flip TTA) and their mean")
    score.add_argument("--out", required=True)
    score.add_argument("--labels", required=True, help="list file with labels (CASIA format)")
    score.add_argument("--root", required=True, help="folder the list's paths are relative to")
    score.add_argument("--batch-size", type=int, default=64)
    score.add_argument("--json", action="store_true")
    score.set_defaults(handler=run_score)


def _table(rows: list[dict]) -> str:
    lines = [f"{'member':<32} {'init':<16} {'fold':>4} {'seed':>4}  status"]
    for row in rows:
        extra = ""
        if "epochs_done" in row:
            extra = f" ({row['epochs_done']}/{row['epochs']} epochs" + (f", step {row['step']}" if row.get("step") else "") + ")"
        lines.append(f"{row['name']:<32} {row['init']:<16} {row['fold']:>4} {row['seed']:>4}  {row['status']}{extra}")
    return "\n".join(lines)


def run_plan(args: argparse.Namespace) -> int:
    from training.config import parse_override
    from training.ensemble.plan import make_plan, write_plan

    overrides = dict(parse_override(text) for text in args.set)
    members = make_plan(args.config, args.root, args.out, train_list=args.train_list, extra_train=args.extra_train,
                        init_dir=args.init_dir, overrides=overrides, warm_start=args.warm_start)
    table = write_plan(args.out, members)
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        print(_table(table["members"]))
        print(f"{len(members)} members planned in {args.out}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from training.ensemble.runner import shutdown_ray, train_ensemble

    try:
        summary = train_ensemble(args.out, address=args.address, max_parallel=args.max_parallel,
                                 num_cpus=args.num_cpus, cpus_per_member=args.cpus_per_member, only=args.member,
                                 progress=not args.quiet)
    finally:
        shutdown_ray()
    print(f"trained {len(summary['trained'])}, skipped {len(summary['skipped'])} "
          f"({', '.join(sorted(set(summary['skipped'].values()))) or '-'}), failed {len(summary['failed'])} "
          f"in {summary['seconds']} s")
    return 1 if summary["failed"] else 0


def run_status(args: argparse.Namespace) -> int:
    from training.ensemble.status import ensemble_status

    status = ensemble_status(args.out)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(_table(status["members"]))
        print(", ".join(f"{k} {v}" for k, v in sorted(status["counts"].items())) + f" of {status['total']}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    from training.ensemble.score import score_ensemble

    report = score_ensemble(args.out, args.labels, args.root, batch_size=args.batch_size,
                            log=(lambda s: None) if args.json else print)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{'scores':<32} {'TPR@1e-2':>9} {'TPR@1e-3':>9} {'APCER@.5':>9} {'BPCER@.5':>9} {'EER':>7}")
    rows = list(report["members"].items()) + [("ENSEMBLE (mean)", report["ensemble"])]
    for name, m in rows:
        print(f"{name:<32} {m['tpr_at_fpr']['1e-2']['empirical']:>9.4f} {m['tpr_at_fpr']['1e-3']['empirical']:>9.4f} "
              f"{m['apcer']:>9.4f} {m['bpcer']:>9.4f} {m['eer']:>7.4f}")
    return 0
