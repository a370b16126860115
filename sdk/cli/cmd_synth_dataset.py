"""`sr300-liveness synth-dataset`: write a CASIA-SURF-format dataset from the SR300 simulator."""
from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth-dataset",
        help="render a CASIA-SURF-format training/val/test set with the SR300 simulator",
        description="Render simulated SR300 subjects (live and attacks) and write 125x125 region crops "
        "(colour, depth, IR) in the CASIA-SURF challenge layout with list files, manifest.json and metadata.csv.",
    )
    parser.add_argument("--out", help="output directory")
    parser.add_argument("--holdout", metavar="NAME", default=None,
                        help="render only this held-out family (Test split) for evaluation; without it every "
                        "held-out family is excluded (see --list-holdouts)")
    parser.add_argument("--list-holdouts", action="store_true", help="list the held-out families and exit")
    parser.add_argument("--live", type=int, default=200, help="live training subjects (val/test get a third)")
    parser.add_argument("--per-attack", type=int, default=100, help="training subjects per attack type")
    parser.add_argument("--frames-per-subject", type=int, default=10, help="frames (triplets) per subject")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (shifts every subject seed)")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1)), help="worker processes")
    parser.add_argument("--format", choices=("jpg", "png"), default="jpg", help="image format")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from sdk.errors import InputValidationError
    from sdk.sim.dataset import write_dataset
    from sdk.sim.holdout import HOLDOUT_FAMILIES, get_holdout

    if args.list_holdouts:
        for family in HOLDOUT_FAMILIES.values():
            print(f"{family.name:18s} {family.description}; renders: {', '.join(family.scenarios())}")
        return 0
    if not args.out:
        raise InputValidationError("--out is required (or --list-holdouts)")
    if args.holdout is not None:
        get_holdout(args.holdout)

    for name in ("live", "per_attack", "frames_per_subject", "workers"):
        if getattr(args, name) < (0 if name in ("live", "per_attack") else 1):
            raise InputValidationError(f"--{name.replace('_', '-')} is out of range: {getattr(args, name)}")
    manifest = write_dataset(args.out, live=args.live, per_attack=args.per_attack,
                             frames_per_subject=args.frames_per_subject, seed=args.seed, workers=args.workers,
                             fmt=args.format, progress=not args.no_progress, holdout=args.holdout)
    for split, info in manifest["splits"].items():
        print(f"{split}: {info['triplets']} triplets ({info['live']} live, {info['attack']} attack) -> {info['list']}")
    return 0
