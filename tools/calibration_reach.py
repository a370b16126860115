"""How many checks of a set of recordings lie beyond a bundle's calibration (sdk.coverage).

    python tools/calibration_reach.py BAG_OR_DIR... [--model BUNDLE] [--frames 10] [--json]

Each .bag is checked twice with the bundle's default operating point: with
`outside_calibration="note"` (the default: decisions unchanged, gates named) and "refuse"
(frames beyond the calibration not scored). A recording is live when its file name contains
"_live_" (the independent renderer's cache and `tools/make_recordings.py` name them so) or its
sidecar says label 1. Printed per class: checks, checks with any frame beyond, per gate, LIVE
under each policy and LIVE decisions made with frames beyond. Evaluation only.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdk.engine import ModelBundle  # noqa: E402
from sdk.errors import LivenessError  # noqa: E402
from sdk.session import LivenessSession, SessionConfig  # noqa: E402


def is_live(bag: Path) -> bool:
    sidecar = bag.with_suffix(".json")
    if sidecar.is_file():
        try:
            return int(json.loads(sidecar.read_text(encoding="utf-8"))["label"]) == 1
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable sidecar: fall back to the file name
    return "_live_" in bag.name or bag.name.startswith("live_")


def reach(bags: list[Path], bundle: ModelBundle, frames: int) -> dict[str, Any]:
    table: dict[str, Counter[str]] = {"live": Counter(), "attack": Counter()}
    for bag in bags:
        row = table["live" if is_live(bag) else "attack"]
        results = {}
        for policy in ("note", "refuse"):
            with LivenessSession(str(bag), bundle, SessionConfig(max_frames=frames, outside_calibration=policy)) as session:
                results[policy] = session.check()
        row["checks"] += 1
        beyond = results["note"].outside_calibration
        row["beyond"] += bool(beyond)
        row.update(f"gate:{gate}" for gate in beyond)
        row["live_note"] += results["note"].is_live
        row["live_refuse"] += results["refuse"].is_live
        row["live_and_beyond"] += results["note"].is_live and bool(beyond)
    return {"model": f"{bundle.name} {bundle.version}", "frames": frames, **{k: dict(v) for k, v in table.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help=".bag files or folders of them")
    parser.add_argument("--model", default=None, help="bundle folder (default: the shipped one)")
    parser.add_argument("--frames", type=int, default=10, help="frame budget of a check (default 10)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    bags = sorted(p for path in map(Path, args.paths) for p in ([path] if path.is_file() else path.glob("*.bag")))
    if not bags or args.frames < 1:
        print("error: no .bag recordings found" if not bags else "error: --frames must be >= 1", file=sys.stderr)
        return 2
    try:
        bundle = ModelBundle.load(args.model)
    except LivenessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = reach(bags, bundle, args.frames)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['model']}: {len(bags)} recordings, {args.frames} frames per check")
    for cls in ("live", "attack"):
        row = report[cls]
        gates = ", ".join(f"{k[5:]} {v}" for k, v in row.items() if k.startswith("gate:")) or "-"
        print(f"  {cls:<6s} checks {row.get('checks', 0)}: beyond the calibration {row.get('beyond', 0)} ({gates}); "
              f"LIVE {row.get('live_note', 0)} (note) / {row.get('live_refuse', 0)} (refuse), "
              f"LIVE with frames beyond {row.get('live_and_beyond', 0)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
