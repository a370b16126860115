"""Acceptance of the shipped model: LivenessSession.check() on recorded simulator bags.

For every scenario, N bags of subjects whose seeds were used neither in training nor in
calibration are recorded through librealsense (write_bag) and replayed through the session,
exactly as a hardware-in-the-loop rig replays real recordings. Prints and saves per scenario:
LIVE / SPOOF / UNCERTAIN counts, BPCER (live checks not LIVE) and APCER (attack checks LIVE).

    python tools/acceptance.py --bags 20 --frames 15 --out docs/acceptance.json
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: Seeds far from every dataset range (synth-dataset uses 1e6..5e6 + 1e7 * dataset seed).
SEED_BASE = 700_000_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bags", type=int, default=20, help="bags per scenario")
    parser.add_argument("--frames", type=int, default=15, help="frames per bag")
    parser.add_argument("--model", default=None, help="bundle folder (default: the shipped model)")
    parser.add_argument("--scenarios", nargs="*", default=None, help="default: every scenario but 'empty'")
    parser.add_argument("--out", default=None, help="write the JSON report here")
    args = parser.parse_args()

    from tqdm import tqdm

    from sdk.capture import write_bag
    from sdk.engine import ModelBundle
    from sdk.session import LivenessSession, SessionConfig
    from sdk.sim import Simulator, get_scenario, list_scenarios

    bundle = ModelBundle.load(args.model)
    scenarios = args.scenarios or [s for s in list_scenarios() if s != "empty"]
    config = SessionConfig(timeout_s=60.0, max_frames=args.frames)
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        jobs = [(s, i) for s in scenarios for i in range(args.bags)]
        for scenario, i in tqdm(jobs, unit="bag", desc="acceptance"):
            seed = SEED_BASE + 1000 * scenarios.index(scenario) + i
            sim = Simulator(scenario, seed)
            bag = Path(scratch) / f"{scenario}_{seed}.bag"
            write_bag(bag, (f for f, _ in sim.frames(args.frames)), sim.device_info, sim.intrinsics,
                      sim.depth_scale, sim.depth_to_color)
            with LivenessSession(str(bag), bundle, config) as session:
                result = session.check()
            bag.unlink()
            rows.append({"scenario": scenario, "seed": seed, "label": get_scenario(scenario).label,
                         "decision": result.decision.value, "score": None if result.score != result.score else result.score,
                         "reasons": [r.value for r in result.reasons], "frames_used": result.frames_used})
    summary = {}
    for scenario in scenarios:
        part = [r for r in rows if r["scenario"] == scenario]
        counts = Counter(r["decision"] for r in part)
        live = get_scenario(scenario).label == 1
        entry = {"bags": len(part), "LIVE": counts["LIVE"], "SPOOF": counts["SPOOF"], "UNCERTAIN": counts["UNCERTAIN"]}
        if live:
            entry["bpcer"] = 1 - counts["LIVE"] / len(part)
        else:
            entry["apcer"] = counts["LIVE"] / len(part)
        entry["reasons"] = dict(Counter(x for r in part for x in r["reasons"]))
        summary[scenario] = entry
    report = {"model": f"{bundle.name} {bundle.version}", "operating_point": bundle.default_operating_point,
              "threshold": bundle.operating_point().threshold, "frames_per_bag": args.frames,
              "bags_per_scenario": args.bags, "seconds": round(time.perf_counter() - started, 1),
              "summary": summary, "checks": rows}
    print(f"{'scenario':<30s} {'bags':>4s} {'LIVE':>5s} {'SPOOF':>6s} {'UNCRT':>6s}  rate")
    for scenario, e in summary.items():
        rate = f"BPCER {e['bpcer']:.3f}" if "bpcer" in e else f"APCER {e['apcer']:.3f}"
        print(f"{scenario:<30s} {e['bags']:>4d} {e['LIVE']:>5d} {e['SPOOF']:>6d} {e['UNCERTAIN']:>6d}  {rate}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    attacks_live = sum(e["LIVE"] for s, e in summary.items() if "apcer" in e)
    return 0 if attacks_live == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
