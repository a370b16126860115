"""Simulator figures: render time per frame, region-crop time, dataset throughput, BlazeFace recall/IoU.

    python tools/bench_sim.py [--frames 30] [--detect 300] [--dataset-subjects 4] [--workers 2] [--bags 3]
    python tools/bench_sim.py --skip-render --detect 0 --bags 0 --dataset-triplets 10000   # the full 10k run

Prints one line per figure (and a JSON summary at the end) for docs/simulator.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sdk.sim import Simulator  # noqa: E402
from sdk.types import FaceBox  # noqa: E402


def bench_render(scenario: str, frames: int) -> dict:
    t0 = time.perf_counter()
    sim = Simulator(scenario, 7, distance_range_m=(0.3, 1.0))
    sim.render(0)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(1, frames + 1):
        sim.render(i)
    per = (time.perf_counter() - t0) / frames
    crop = float("nan")
    if scenario != "empty":  # no face, no crop
        t0 = time.perf_counter()
        for i in range(1, frames + 1):
            sim.render_region_crops(i)
        crop = (time.perf_counter() - t0) / frames
    return {"scenario": scenario, "setup_and_first_ms": first * 1e3, "frame_ms": per * 1e3, "region_crop_ms": crop * 1e3}


def bench_detect(n: int, model: str) -> dict:
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions
    from mediapipe.tasks.python.vision import FaceDetector, FaceDetectorOptions

    path = ROOT / "sdk" / "detect" / "models" / model
    det = FaceDetector.create_from_options(
        FaceDetectorOptions(base_options=BaseOptions(model_asset_path=str(path)), min_detection_confidence=0.5))
    found, ious, misses = 0, [], []
    try:
        for seed in range(n):
            sim = Simulator("live", 10_000 + seed, distance_range_m=(0.3, 1.0), max_yaw_deg=30.0)
            fs, truth = sim.render(seed % 30)
            res = det.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(fs.color)))
            if res.detections:
                found += 1
                best = max(res.detections, key=lambda d: d.categories[0].score)
                b = best.bounding_box
                ious.append(FaceBox(b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height).iou(truth.face_box))
            else:
                misses.append({"seed": 10_000 + seed, "distance_m": round(truth.distance_m, 2), "yaw": round(truth.yaw_deg, 1)})
    finally:
        det.close()
    return {"model": model, "frames": n, "recall": found / n, "mean_iou": float(np.mean(ious)) if ious else None,
            "misses": misses[:20]}


def bench_bag(scenario: str, seed: int, frames: int = 30) -> dict:
    """One `synth-bag` run as its own process (interpreter start, render, librealsense recorder,
    sidecar): wall seconds, CPU seconds (user + sys of the child) and the load average then.

    On a loaded machine the wall time mostly measures the queue for a core; the CPU time is what
    the same run costs on an idle core."""
    import os
    import resource
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sdk.cli", "synth-bag", "--scenario", scenario, "--seed", str(seed),
                        "--frames", str(frames), "--out", str(Path(tmp) / "b.bag")],
                       check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"scenario": scenario, "seed": seed, "frames": frames, "seconds": wall, "cpu_seconds": cpu,
            "load_average_1min": os.getloadavg()[0]}


#: Scenarios whose 30-frame bags are timed (a live person, a whole print, worn cut-outs, a screen).
BAG_SCENARIOS = ("live", "print_flat", "cut_eyes_flat", "cut_eyes_nose_flat", "cut_eyes_nose_mouth_curved",
                 "screen_replay")


def subjects_for(triplets: int, frames: int) -> int:
    """Smallest --live = --per-attack count whose default dataset has >= ``triplets`` triplets."""
    from sdk.sim.dataset import plan

    n = 1
    while sum(j.frames for j in plan(n, n, frames)) < triplets:
        n += 1
    return n


def bench_dataset(subjects: int, frames: int, workers: int) -> dict:
    from sdk.sim.dataset import write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        manifest = write_dataset(tmp, live=subjects, per_attack=subjects, frames_per_subject=frames, workers=workers,
                                 progress=False)
        dt = time.perf_counter() - t0
    triplets = sum(s["triplets"] for s in manifest["splits"].values())
    return {"triplets": triplets, "seconds": dt, "triplets_per_min": triplets / dt * 60, "workers": workers,
            "frames_per_subject": frames, "minutes_for_10000": 10_000 / (triplets / dt) / 60}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--detect", type=int, default=300, help="live frames for BlazeFace recall (0 = skip)")
    parser.add_argument("--dataset-subjects", type=int, default=4, help="subjects per scenario (0 = skip)")
    parser.add_argument("--frames-per-subject", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bags", type=int, default=3, help="30-frame synth-bag runs (seeds 500+) per scenario timed (0 = skip)")
    parser.add_argument("--dataset-triplets", type=int, default=0,
                        help="render a full dataset of at least this many triplets (overrides --dataset-subjects)")
    parser.add_argument("--skip-render", action="store_true", help="skip the per-frame render timings")
    args = parser.parse_args()
    summary: dict = {"render": []}
    if args.dataset_triplets:
        args.dataset_subjects = subjects_for(args.dataset_triplets, args.frames_per_subject)
    for scenario in (() if args.skip_render else
                     ("live", "print_flat", "cut_eyes_nose_mouth_curved", "screen_replay", "mask_3d", "empty")):
        r = bench_render(scenario, args.frames)
        summary["render"].append(r)
        print(f"{scenario:28s} setup+first {r['setup_and_first_ms']:7.1f} ms  frame {r['frame_ms']:6.1f} ms  "
              f"region crop {r['region_crop_ms']:6.1f} ms", flush=True)
    for scenario in BAG_SCENARIOS if args.bags else ():
        runs = [bench_bag(scenario, 500 + k) for k in range(args.bags)]
        summary.setdefault("bags", []).extend(runs)
        cpu = np.array([r["cpu_seconds"] for r in runs])
        print(f"synth-bag {scenario}: 30 frames, CPU {np.median(cpu):.2f} s median, {cpu.max():.2f} s max over "
              f"{len(runs)} seeds (wall {np.median([r['seconds'] for r in runs]):.1f} s median at load "
              f"{np.mean([r['load_average_1min'] for r in runs]):.1f})", flush=True)
    if args.detect:
        for model in ("face_detection_short_range.tflite", "face_detection_full_range_sparse.tflite"):
            d = bench_detect(args.detect, model)
            summary.setdefault("detect", []).append(d)
            print(f"BlazeFace {model}: recall {d['recall']:.3f} on {d['frames']} live frames (0.3-1.0 m, |yaw|<=30), "
                  f"mean IoU {d['mean_iou']:.3f}", flush=True)
    if args.dataset_subjects:
        d = bench_dataset(args.dataset_subjects, args.frames_per_subject, args.workers)
        summary["dataset"] = d
        print(f"synth-dataset: {d['triplets']} triplets in {d['seconds']:.1f} s with {d['workers']} workers = "
              f"{d['triplets_per_min']:.0f} triplets/min (10,000 in {d['minutes_for_10000']:.1f} min)", flush=True)
    print(json.dumps(summary, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
