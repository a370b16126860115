"""Labelled simulator recordings for `sr300-liveness calibrate` (one .bag + sidecar .json each).

Every scenario of the simulator's registry (but "empty", which shows no person) gets N bags of
subjects whose seeds lie in their own range, far from the synth-dataset ranges used for
training (1e6..5e6 + 1e7 x dataset seed) and from those of tools/evaluate_recordings.py, so a
model can be calibrated on seeds it never saw and evaluated on seeds calibration never saw.
Incremental: a bag whose sidecar exists is skipped, so a killed run resumes where it stopped.

    python tools/make_recordings.py --out runs/calib_bags --live 150 --attacks 30 --frames 20
    python tools/make_recordings.py --out runs/calib_bright --live 60 --attacks 12 --seed-base 600005000 \
        --exposure-scale 1.5 8 --scenarios live print_flat ...   (faces as bright as the colour gate allows)
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: Subject seeds of calibration recordings: SEED_BASE + 10_000 x scenario index + i. 6e8 keeps them
#: apart from the HIL suites (sdk/hil/make.py: 8e8..9e8) and from tools/evaluate_recordings.py (9e8+),
#: so what a bundle is calibrated on is never what it is evaluated on.
CALIBRATION_SEED_BASE = 600_000_000


def jobs_for(scenarios: list[str], live: int, attacks: int, seed_base: int) -> list[tuple[str, int]]:
    from sdk.sim import get_scenario

    jobs = []
    for index, scenario in enumerate(scenarios):
        count = live if get_scenario(scenario).label == 1 else attacks
        jobs += [(scenario, seed_base + 10_000 * index + i) for i in range(count)]
    return jobs


def exposure_scale_for(seed: int, low: float, high: float) -> float:
    """The session's colour exposure scale: log-uniform in [low, high], fixed by its seed."""
    import numpy as np

    if low == high:
        return float(low)
    rng = np.random.default_rng([int(seed), 0xE7905])
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _make(job: tuple[str, int, int, str, tuple[float, float]]) -> str:
    from sdk.cli.cmd_synth_bag import synth_bag

    scenario, seed, frames, out, (low, high) = job
    bag = Path(out) / f"{scenario}_{seed}.bag"
    if not bag.with_suffix(".json").is_file():  # the sidecar is written last: its presence means done
        synth_bag(scenario, seed, frames, bag, exposure_scale=exposure_scale_for(seed, low, high))
    return bag.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for the .bag + .json pairs")
    parser.add_argument("--live", type=int, default=150, help="live recordings")
    parser.add_argument("--attacks", type=int, default=30, help="recordings per attack scenario")
    parser.add_argument("--frames", type=int, default=20, help="frames per recording")
    parser.add_argument("--seed-base", type=int, default=CALIBRATION_SEED_BASE)
    parser.add_argument("--scenarios", nargs="*", default=None, help="default: every scenario but 'empty'")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--exposure-scale", type=float, nargs=2, default=(1.0, 1.0), metavar=("LOW", "HIGH"),
                        help="scale each session's colour auto-exposure by a factor drawn log-uniform in "
                             "[LOW, HIGH] from its seed, live and attacks alike (default 1 1: as the camera "
                             "profile draws it); the sidecar records it and the condition 'exposure_scaled'")
    args = parser.parse_args(argv)
    low, high = args.exposure_scale
    if not 0.25 <= low <= high <= 16.0:
        parser.error("--exposure-scale needs 0.25 <= LOW <= HIGH <= 16")

    from tqdm import tqdm

    from sdk.sim import list_scenarios

    scenarios = args.scenarios or [s for s in list_scenarios() if s != "empty"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Scenario indices come from the full registry order so seeds do not move when --scenarios narrows it.
    registry = list_scenarios()
    jobs = [(s, seed, args.frames, str(out), (low, high))
            for s, seed in jobs_for(registry, args.live, args.attacks, args.seed_base) if s in scenarios]
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
