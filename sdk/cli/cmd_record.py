"""`sr300-liveness record`: record a live SR300 session to a .bag file."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    parser.set_defaults(handler=run)


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
    camera = RealSenseCamera(serial=args.serial, color=args.color, fps=args.fps, record_to=out)
    with BagRecorder(camera, out) as recorder:
        count = recorder.record(seconds=args.seconds)
    print(f"recorded {count} frames to {out}")
    return 0
