"""`sr300-liveness devices`: list the connected RealSense cameras."""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "devices",
        help="list connected RealSense devices",
        description="List connected RealSense devices (name, serial, firmware, USB type). Exit 0 even when none.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sdk.capture.camera import list_devices

    devices = list_devices()
    if args.json:
        print(json.dumps({"devices": [d.as_dict() for d in devices]}, indent=1))
        return 0
    if not devices:
        print("no RealSense device connected")
        return 0
    for device in devices:
        note = "" if device.is_sr300 else "  (not an SR300: needs allow_non_sr300)"
        print(
            f"{device.name}  serial={device.serial or '?'}  firmware={device.firmware or '?'}  "
            f"usb={device.usb_type or '?'}{note}"
        )
    return 0
