"""`sr300-liveness record`: record a live SR300 session to a .bag file.

With ``--label live|attack [--attack-type SPECIES]`` it also writes the labelled sidecar
PATH.json (the same shape `synth-bag` writes), so recordings of an integrator's own users and
attacks feed `sr300-liveness calibrate` for that camera.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

LABELS = {"live": 1, "attack": 0}


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    return width, height


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "record",
        help="record the camera to a .bag file (replay it with --source PATH.bag)",
        description="Record depth, IR and colour from a connected SR300 with librealsense's recorder.",
    )
    parser.add_argument("--out", required=True, help="output .bag path")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to record (default 10)")
    parser.add_argument("--serial", default=None, help="serial of the camera (default: the first SR300)")
    parser.add_argument("--color", type=_size, default=(640, 480), help="colour size, 640x480 or 1920x1080")
    parser.add_argument("--fps", type=int, default=30, help="frame rate (default 30)")
    parser.add_argument("--label", choices=sorted(LABELS), default=None,
                        help="what is in front of the camera; writes the labelled sidecar PATH.json for `calibrate`")
    parser.add_argument("--attack-type", default=None, metavar="SPECIES",
                        help="with --label attack: the attack species, e.g. print, screen_replay, mask_3d")
    parser.set_defaults(handler=run)


def write_sidecar(bag: Path, label: str, attack_type: str | None, device: Any, frames: int, fps: float) -> Path:
    """The labelled sidecar beside ``bag`` (atomic write); ``device`` is a DeviceInfo."""
    if label not in LABELS:
        raise ValueError(f"label must be one of {sorted(LABELS)}")
    if attack_type and label != "attack":
        raise ValueError("--attack-type only goes with --label attack")
    species = "live" if label == "live" else (attack_type or "attack")
    sidecar = {
        "scenario": None,
        "species": species,
        "attack_type": attack_type if label == "attack" else None,
        "label": LABELS[label],
        "fps": fps,
        "bag": bag.name,
        "device": {"name": device.name, "serial": device.serial, "firmware": getattr(device, "firmware", "")},
        "recorded_by": "sr300-liveness record",
        "frame_count": int(frames),
    }
    path = bag.with_suffix(".json")
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(sidecar, indent=1) + "\n", encoding="utf-8")
    os.replace(temp, path)
    return path


def run(args: argparse.Namespace) -> int:
    from sdk.capture.bag_writer import BagRecorder
    from sdk.capture.camera import RealSenseCamera

    out = Path(args.out)
    if out.suffix.lower() != ".bag":
        print("sr300-liveness record: error: --out must end in .bag", file=sys.stderr)
        return 2
    if args.seconds <= 0:
        print("sr300-liveness record: error: --seconds must be > 0", file=sys.stderr)
        return 2
    if args.attack_type and args.label != "attack":
        print("sr300-liveness record: error: --attack-type needs --label attack", file=sys.stderr)
        return 2
    camera = RealSenseCamera(serial=args.serial, color=args.color, fps=args.fps, record_to=out)
    with BagRecorder(camera, out) as recorder:
        count = recorder.record(seconds=args.seconds)
        device = recorder.camera.device_info
    print(f"recorded {count} frames to {out}")
    if args.label:
        sidecar = write_sidecar(out, args.label, args.attack_type, device, count, args.fps)
        print(f"labelled {args.label}{' (' + args.attack_type + ')' if args.attack_type else ''}: {sidecar}")
    return 0
