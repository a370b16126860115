"""Capture-layer figures for docs/capture.md (a measurement, not a timed test).

    python tools/bench_capture.py [--frames 60] [--repeat 3]

1. synth-bag of a 30-frame 640x480 scenario, split into simulator rendering and write_bag.
2. BagReplay of a 640x480 bag in FrameSets/s: the default path (colour registered to depth,
   taken pixel for pixel) and align="always" (rs.align(rs.stream.depth) on every frame, the cost
   a real SR300 recording with unregistered colour pays).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdk.capture import BagReplay, write_bag  # noqa: E402
from sdk.cli.cmd_synth_bag import synth_bag  # noqa: E402
from sdk.sim import Simulator  # noqa: E402


def _replay_rate(path: Path, align: str) -> tuple[float, int]:
    start = time.perf_counter()
    with BagReplay(path, align=align) as replay:
        n = sum(1 for _ in replay)
    return n / (time.perf_counter() - start), n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="frames in the replay bag (default 60)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions, the median is reported (default 3)")
    parser.add_argument("--scenario", default="live")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # 1. synth-bag, 30 frames (median of repeats), and its two parts
        totals, renders, writes = [], [], []
        for k in range(args.repeat):
            start = time.perf_counter()
            synth_bag(args.scenario, k, 30, folder / f"synth{k}.bag")
            totals.append(time.perf_counter() - start)
            sim = Simulator(args.scenario, k)
            start = time.perf_counter()
            frames = [sim.render(i)[0] for i in range(30)]
            renders.append(time.perf_counter() - start)
            start = time.perf_counter()
            write_bag(folder / f"w{k}.bag", frames, sim.device_info, sim.intrinsics, sim.depth_scale, sim.depth_to_color)
            writes.append(time.perf_counter() - start)
        size = (folder / "synth0.bag").stat().st_size
        print(f"synth-bag 30 frames 640x480 ({args.scenario}): {statistics.median(totals):.2f} s "
              f"(render {statistics.median(renders):.2f} s, write_bag {statistics.median(writes):.2f} s; "
              f"{size / 1e6:.1f} MB)")

        # 2. replay throughput
        sim = Simulator(args.scenario, 99)
        bag = folder / "replay.bag"
        write_bag(bag, (sim.render(i)[0] for i in range(args.frames)), sim.device_info, sim.intrinsics,
                  sim.depth_scale, sim.depth_to_color)
        for align in ("auto", "always"):
            rates = []
            for _ in range(args.repeat):
                rate, n = _replay_rate(bag, align)
                assert n == args.frames, f"replay delivered {n} of {args.frames} frames"
                rates.append(rate)
            label = "registered colour (default)" if align == "auto" else "rs.align on every frame"
            print(f"replay 640x480, {label}: {statistics.median(rates):.0f} FrameSets/s "
                  f"(includes pipeline start; {args.frames} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
