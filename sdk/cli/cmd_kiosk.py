"""`sr300-liveness kiosk`: the liveness kiosk, a local web app shown by a browser in kiosk mode.

Runs checks back to back on the simulator (the default: live and attack scenarios in turn), a
real SR300 (`--source camera`) or recordings (`--source a.bag,b.bag`), and serves the kiosk page
at http://127.0.0.1:8300/ and the operator page at /operator. It binds to 127.0.0.1 unless
--host says otherwise.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

from sdk.cli.argtypes import positive_float
from sdk.cli.native_logs import add_verbose_argument

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "kiosk",
        help="the liveness kiosk: a local web app (simulator by default, --source camera for an SR300)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", default=None,
                        help="'sim' (default: simulator cycling live and attack scenarios), 'camera' (an SR300), "
                             "or a comma-separated list of .bag recordings / scenario names")
    parser.add_argument("--model", default=None, help="model bundle folder (default: the shipped model)")
    parser.add_argument("--operating-point", default=None, help="named threshold of the bundle (default: its default)")
    parser.add_argument("--port", type=int, default=8300, help="port (default 8300; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--open", action="store_true", help="open the page in a browser in kiosk mode")
    parser.add_argument("--timeout", type=positive_float, default=5.0, help="seconds per check (default 5)")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds the decision stays on screen (default 3)")
    parser.add_argument("--pace", type=float, default=30.0,
                        help="frames per second recordings and the simulator are shown at (default 30; 0: as fast as they come)")
    add_verbose_argument(parser)
    parser.set_defaults(handler=run)


def open_browser(url: str) -> None:
    """A full-screen kiosk window when a Chromium-family browser is installed, else the default browser."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            subprocess.Popen([path, "--kiosk", "--no-first-run", "--disable-sync", "--disable-translate", url],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return
    import webbrowser

    webbrowser.open(url)


def run(args: argparse.Namespace) -> int:
    import logging

    from sdk.engine import ModelBundle
    from sdk.kiosk.runner import KioskRunner, camera_connected
    from sdk.kiosk.server import KioskServer, create_app, is_loopback
    from sdk.kiosk.state import KioskState

    if args.source is None and camera_connected():
        print("An SR300 is connected: the kiosk runs the simulator by default; use --source camera for the camera.")
    bundle = ModelBundle.load(args.model)
    point = bundle.operating_point(args.operating_point)
    state = KioskState(bundle.name, bundle.version, point.name, point.threshold, source=args.source or "sim")
    runner = KioskRunner(state, bundle, args.source, timeout_s=args.timeout, hold_s=args.hold, pace_fps=args.pace,
                         operating_point=point.name)
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per poll request
    server = KioskServer(create_app(state), host=args.host, port=args.port)
    if not is_loopback(args.host):
        print(f"warning: bound to {args.host}: other machines on the network can reach the kiosk", file=sys.stderr)
    runner.start()
    print(f"kiosk: {server.url} (operator: {server.url}operator); model {bundle.name} {bundle.version}, "
          f"operating point {point.name}; Ctrl-C stops", flush=True)
    if args.open:
        open_browser(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        runner.stop()
        server.shutdown()
    return 0
