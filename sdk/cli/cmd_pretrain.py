"""`sr300-liveness pretrain`: face / gender pretraining, simulator face datasets, checkpoint mapping.

    sr300-liveness pretrain sim-data --out data/simfaces --identities 50 --per-identity 20 [--layout afad]
    sr300-liveness pretrain run --task face --arch resnet34 --data data/simfaces --out init/resnet34-face.safetensors
    sr300-liveness pretrain map --checkpoint init/resnet34-face.safetensors --model mlfa_resnet34 [--out init.pt]
"""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="pretrain face / gender backbones and map them into MLFA networks (needs torch)",
        description="Pretraining tasks for the four init slots (resnet34-face, resnet34-gender, ir50-face, "
        "ir50-face-asian) and the mapping of a face checkpoint into an MLFA network.",
    )
    sub = parser.add_subparsers(dest="pretrain_command", metavar="ACTION", required=True)

    sim = sub.add_parser("sim-data", help="write a face dataset rendered by the simulator (identity = seed)")
    sim.add_argument("--out", required=True)
    sim.add_argument("--identities", type=int, default=20)
    sim.add_argument("--per-identity", type=int, default=10)
    sim.add_argument("--layout", choices=("identity", "afad"), default="identity",
                     help="identity: root/<id>/<img>.jpg (CASIA-WebFace); afad: root/<age>/<111|112>/<img>.jpg")
    sim.add_argument("--first-seed", type=int, default=1000)
    sim.set_defaults(handler=run_sim_data)

    run = sub.add_parser("run", help="train a face-identity (margin loss) or gender backbone")
    run.add_argument("--task", choices=("face", "gender"), required=True)
    run.add_argument("--arch", choices=("resnet34", "resnet18", "ir50"), required=True)
    run.add_argument("--data", required=True, help="identity-folder root (face) or AFAD root (gender)")
    run.add_argument("--out", required=True, help="output state dict (.safetensors recommended)")
    run.add_argument("--epochs", type=int, default=5)
    run.add_argument("--batch-size", type=int, default=64)
    run.add_argument("--lr", type=float, default=1e-3)
    run.add_argument("--width", type=float, default=1.0)
    run.add_argument("--margin", choices=("arcface", "cosface"), default="arcface")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default="auto")
    run.add_argument("--quiet", action="store_true")
    run.set_defaults(handler=run_pretrain)

    mapping = sub.add_parser("map", help="map a face checkpoint into an MLFA network and print the report")
    mapping.add_argument("--checkpoint", required=True)
    mapping.add_argument("--model", required=True, help="registered model name, e.g. mlfa_resnet34")
    mapping.add_argument("--width", type=float, default=1.0)
    mapping.add_argument("--slot", default=None)
    mapping.add_argument("--out", help="save the initialised MLFA state dict (weights-only torch file)")
    mapping.add_argument("--json", action="store_true", help="print the full report as JSON")
    mapping.set_defaults(handler=run_map)


def run_sim_data(args: argparse.Namespace) -> int:
    from training.pretrain import write_sim_face_dataset

    root = write_sim_face_dataset(args.out, args.identities, args.per_identity, layout=args.layout,
                                  first_seed=args.first_seed)
    print(f"wrote {args.identities} x {args.per_identity} simulator faces to {root} ({args.layout} layout)")
    return 0


def run_pretrain(args: argparse.Namespace) -> int:
    from training.pretrain import pretrain

    result = pretrain(args.task, args.arch, args.data, args.out, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, width=args.width, margin=args.margin, seed=args.seed, device=args.device,
                      progress=not args.quiet)
    print(f"{result.task} {result.arch}: {result.classes} classes, loss {result.final_loss:.4f}, "
          f"acc {result.final_acc:.3f}, {result.samples_per_s:.1f} samples/s -> {result.checkpoint}")
    return 0


def run_map(args: argparse.Namespace) -> int:
    import torch

    from training.models import create_model
    from training.pretrain import init_from_face_checkpoint

    model = create_model(args.model, width=args.width)
    report = init_from_face_checkpoint(model, args.checkpoint, slot=args.slot)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    if args.out:
        torch.save({k: v for k, v in model.state_dict().items()}, args.out)
        print(f"initialised {args.model} -> {args.out}")
    return 0
