"""The `sr300-liveness` console script.

Each subcommand lives in its own module `sdk/cli/cmd_<name>.py` that defines
``register(subparsers) -> None``; the parser's ``handler`` default is a function
``(args) -> int`` returning the exit code. Modules import heavy dependencies (torch,
pyrealsense2, mediapipe) inside their handlers so `--help` stays fast and the device path never
imports torch.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from sdk.errors import LivenessError

#: Exit code for an SDK error (typed LivenessError) in any subcommand.
EXIT_ERROR = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sr300-liveness",
        description="Multi-modal (RGB + IR + depth) face liveness for the Intel RealSense SR300.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    package = sys.modules[__name__]
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("cmd_"))
    for name in names:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "quiet_native_logs", False) and not getattr(args, "verbose", False):
            # Native libraries' fd-2 log lines are silenced for the commands that opt in
            # (sdk/cli/native_logs.py); Python-level errors stay visible.
            from sdk.cli.native_logs import quiet_native_logs

            with quiet_native_logs():
                return int(args.handler(args) or 0)
        return int(args.handler(args) or 0)
    except LivenessError as error:
        print(f"sr300-liveness {args.command}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
