"""Labelled simulator recordings for `sr300-liveness calibrate` (one .bag + sidecar .json each).

Every scenario of the simulator's registry (but "empty", which shows no person) gets N bags of
subjects whose seeds lie in their own range, far from the synth-dataset ranges used for
training (1e6..5e6 + 1e7 x dataset seed) and from those of tools/evaluate_recordings.py, so a
model can be calibrated on seeds it never saw and evaluated on seeds calibration never saw.
Incremental: a bag whose sidecar exists is skipped, so a killed run resumes where it stopped.

    python tools/make_recordings.py --out runs/calib_bags --live 150 --attacks 30 --frames 20
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: Subject seeds of calibration recordings: SEED_BASE + 10_000 x scenario index + i.
CALIBRATION_SEED_BASE = 800_000_000


def jobs_for(scenarios: list[str], live: int, attacks: int, seed_base: int) -> list[tuple[str, int]]:
    from sdk.sim import get_scenario

    jobs = []
    for index, scenario in enumerate(scenarios):
        count = live if get_scenario(scenario).label == 1 else attacks
        jobs += [(scenario, seed_base + 10_000 * index + i) for i in range(count)]
    return jobs


def _make(job: tuple[str, int, int, str]) -> str:
    from sdk.cli.cmd_synth_bag import synth_bag

    scenario, seed, frames, out = job
    bag = Path(out) / f"{scenario}_{seed}.bag"
    if not bag.with_suffix(".json").is_file():  # the sidecar is written last: its presence means done
        synth_bag(scenario, seed, frames, bag)
    return bag.name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for the .bag + .json pairs")
    parser.add_argument("--live", type=int, default=150, help="live recordings")
    parser.add_argument("--attacks", type=int, default=30, help="recordings per attack scenario")
    parser.add_argument("--frames", type=int, default=20, help="frames per recording")
    parser.add_argument("--seed-base", type=int, default=CALIBRATION_SEED_BASE)
    parser.add_argument("--scenarios", nargs="*", default=None, help="default: every scenario but 'empty'")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    from tqdm import tqdm

    from sdk.sim import list_scenarios

    scenarios = args.scenarios or [s for s in list_scenarios() if s != "empty"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Scenario indices come from the full registry order so seeds do not move when --scenarios narrows it.
    registry = list_scenarios()
    jobs = [(s, seed, args.frames, str(out)) for s, seed in jobs_for(registry, args.live, args.attacks, args.seed_base)
            if s in scenarios]
    started = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            for _ in tqdm(pool.map(_make, jobs), total=len(jobs), unit="bag"):
                pass
    else:
        for job in tqdm(jobs, unit="bag"):
            _make(job)
    print(f"{len(jobs)} recordings in {out} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
