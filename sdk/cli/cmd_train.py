"""`sr300-liveness train`: train one MLFA network from a JSON config (or a preset name)."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an MLFA liveness network from a config (needs the train extra: torch)",
        description="Train one MLFA network. Configs are JSON files or preset names "
        "(training/presets/: cpu_tiny, cpu_small, student_small, paper_resnet34, paper_ir50, ...).",
    )
    parser.add_argument("--config", required=False, help="config JSON file or preset name")
    parser.add_argument("--out", help="output folder (default runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    parser.add_argument("--root", help="override data.root (folder the list entries are relative to)")
    parser.add_argument("--train-list", help="override data.train_list")
    parser.add_argument("--val-list", help="override data.val_list")
    parser.add_argument("--init", help="override init.checkpoint (face-model state dict)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. optim.epochs=3 or model.options.width=0.5 (repeatable)")
    parser.add_argument("--score-list", action="append", default=[], metavar="LIST",
                        help="after training, write TTA scores for this list to <out>/scores_<name>.csv (repeatable)")
    parser.add_argument("--list-presets", action="store_true", help="print the preset names and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sdk.errors import InputValidationError
    from training.config import config_with_overrides, list_presets, load_config

    if args.list_presets:
        print("\n".join(list_presets()))
        return 0
    if not args.config:
        raise InputValidationError("--config is required (a JSON file or a preset name)")
    from training.train import predict_views, train, write_scores

    config = config_with_overrides(load_config(args.config), args.set, {
        "data.root": args.root, "data.train_list": args.train_list, "data.val_list": args.val_list,
        "init.checkpoint": args.init}, quiet=args.quiet)
    out = Path(args.out or Path("runs") / config.name)
    result = train(config, out, resume=args.resume)
    print(f"trained {result.epochs_done} epoch(s); checkpoint {result.checkpoint}; metrics {out / 'metrics.csv'}")
    for list_path in args.score_list:
        views, _ = predict_views(result.model, list_path, root=config.data.root, live_label=config.data.live_label,
                                 batch_size=config.optim.batch_size, device=next(result.model.parameters()).device)
        target = write_scores(out / f"scores_{Path(list_path).stem}.csv", views)
        print(f"scores -> {target}")
    return 0
