"""Figures of the detect + depth check + crops + gates stage (docs/detection.md).

    python tools/bench_detect.py [--live 1000] [--empty 1000] [--timing 200] [--json out.json]
                                 [--misses-dir /tmp/detect_misses]

1. Recall on simulator live frames (distance 0.3-1.0 m, yaw <= 30 deg): a frame counts as found
   when a detection overlaps the simulator's true face box with IoU >= 0.3 (BlazeFace boxes and
   the simulator's contour box follow slightly different conventions, so IoU 0.5 is also
   reported). Per BlazeFace mode (short, full, auto, auto+ir: auto then BlazeFace on the IR
   frame), raw and after depth confirmation, plus the share of frames whose gates pass. Missed
   frames are saved as PNG (colour | IR) with distance, yaw, lighting and skin tone in the name.
2. False positives on empty scenes: frames where the raw detector fires, where depth confirms
   a face (should be none) and where the gates pass (must be none); for auto, and for auto+ir
   under "auto+ir" (its IR stages run on every empty frame, so this is where they could fire).
3. Time per 640x480 frame of FacePipeline.analyze (detect + depth check + choice + crops +
   gates), median and p95, on pre-rendered frames so the renderer is not timed; modes auto,
   short and auto+ir (which costs more only where colour finds no face: empty scenes).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdk.detect.blazeface import BlazeFaceDetector  # noqa: E402
from sdk.detect.depth import DepthConfirmedDetector  # noqa: E402
from sdk.pipeline import FacePipeline  # noqa: E402
from sdk.sim import Simulator  # noqa: E402

MODES = ("short", "full", "auto", "auto+ir")


def live_frames(n: int, seed0: int = 100_000):
    """n live frames: n // 2 subjects (seeds), two frames each, 15 frames apart."""
    for k in range(n):
        seed, index = seed0 + k // 2, (k % 2) * 15
        sim = Simulator("live", seed, distance_range_m=(0.3, 1.0), max_yaw_deg=30)
        frames, truth = sim.render(index)
        yield sim, frames, truth


def _best_iou(detections, truth_box) -> float:
    return max((d.box.iou(truth_box) for d in detections.accepted), default=0.0)


def _save_miss(folder: Path, sim, frames, truth, tag: str) -> str:
    import cv2

    idn = getattr(sim.scene, "idn", None)
    light = "dim" if sim.noise_level > 2 else "normal"
    tone = f"{idn.skin_tone:.2f}" if idn is not None else "na"
    name = (f"{tag}_seed{sim.seed}_f{truth.frame_number}_d{truth.distance_m:.2f}_yaw{truth.yaw_deg:+.0f}"
            f"_{light}_skin{tone}.png")
    colour = np.ascontiguousarray(frames.color[:, :, ::-1]).copy()
    b = truth.face_box
    cv2.rectangle(colour, (int(b.x0), int(b.y0)), (int(b.x1), int(b.y1)), (0, 255, 0), 1)
    ir = cv2.cvtColor(np.ascontiguousarray(frames.ir), cv2.COLOR_GRAY2BGR)
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / name), np.hstack([colour, ir]))
    return name


def recall(n: int, misses_dir: Path | None) -> dict:
    detectors = {m: BlazeFaceDetector(m) for m in MODES}
    confirmed = {m: DepthConfirmedDetector(BlazeFaceDetector(m)) for m in MODES}
    pipeline = FacePipeline("auto")
    hits = {f"{m}_{kind}": [] for m in MODES for kind in ("raw", "raw50", "confirmed")}
    passed, misses, gate_reasons = [], [], {}
    tones, distances, dims = [], [], []
    for sim, frames, truth in live_frames(n):
        tones.append(float(getattr(sim.scene.idn, "skin_tone", float("nan"))))
        distances.append(truth.distance_m)
        dims.append(sim.noise_level > 2)
        for m in MODES:
            iou = _best_iou(detectors[m].detect(frames), truth.face_box)
            hits[f"{m}_raw"].append(iou >= 0.3)
            hits[f"{m}_raw50"].append(iou >= 0.5)
            hits[f"{m}_confirmed"].append(_best_iou(confirmed[m].detect(frames), truth.face_box) >= 0.3)
        analysis = pipeline.analyze(frames)
        passed.append(analysis.quality.passed)
        for r in analysis.quality.reasons:
            gate_reasons[r.value] = gate_reasons.get(r.value, 0) + 1
        if not hits["auto_confirmed"][-1]:
            entry = {"seed": sim.seed, "frame": truth.frame_number, "distance_m": round(truth.distance_m, 3),
                     "yaw_deg": round(truth.yaw_deg, 1), "dim_light": sim.noise_level > 2,
                     "skin_tone": round(float(getattr(sim.scene.idn, "skin_tone", float("nan"))), 2),
                     "raw_auto_found": bool(hits["auto_raw"][-1]),
                     "reasons": [r.value for r in analysis.quality.reasons]}
            if misses_dir is not None:
                entry["image"] = _save_miss(misses_dir, sim, frames, truth, "miss")
            misses.append(entry)
    for d in list(detectors.values()) + list(confirmed.values()):
        d.close()
    pipeline.close()
    out = {k: float(np.mean(v)) for k, v in hits.items()}
    found = np.array(hits["auto_confirmed"])
    tones, distances, dims = np.array(tones), np.array(distances), np.array(dims)
    out["auto_confirmed_by_skin_tone"] = {
        f"{lo:.2f}-{hi:.2f}": [float(found[(tones >= lo) & (tones < hi)].mean()), int(((tones >= lo) & (tones < hi)).sum())]
        for lo, hi in ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.01)) if ((tones >= lo) & (tones < hi)).any()}
    out["auto_confirmed_by_distance"] = {
        f"{lo:.2f}-{hi:.2f}m": [float(found[(distances >= lo) & (distances < hi)].mean()), int(((distances >= lo) & (distances < hi)).sum())]
        for lo, hi in ((0.0, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 2.0)) if ((distances >= lo) & (distances < hi)).any()}
    short = np.array(hits["short_raw"])
    out["short_raw_by_distance"] = {
        f"{lo:.2f}-{hi:.2f}m": float(short[(distances >= lo) & (distances < hi)].mean())
        for lo, hi in ((0.0, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 2.0)) if ((distances >= lo) & (distances < hi)).any()}
    out["auto_confirmed_dim_light"] = [float(found[dims].mean()) if dims.any() else float("nan"), int(dims.sum())]
    out.update(frames=n, gates_passed=float(np.mean(passed)), gate_failures=gate_reasons, misses=misses)
    return out


def _false_positives_of(mode: str, n: int, seed0: int) -> dict:
    raw = BlazeFaceDetector(mode)
    pipeline = FacePipeline(mode)
    fired = confirmed = passed = 0
    reasons: dict[str, int] = {}
    for k in range(n):
        frames, _ = Simulator("empty", seed0 + k // 2).render((k % 2) * 15)
        fired += bool(raw.detect(frames).accepted)
        analysis = pipeline.analyze(frames)
        confirmed += analysis.box is not None
        passed += analysis.quality.passed
        for r in analysis.quality.reasons:
            reasons[r.value] = reasons.get(r.value, 0) + 1
    raw.close()
    pipeline.close()
    return {"frames": n, "raw_fired": fired / n, "depth_confirmed": confirmed / n, "gates_passed": passed / n,
            "reasons": reasons}


def false_positives(n: int, seed0: int = 200_000) -> dict:
    """auto's figures at the top level (the report's original keys), auto+ir's under "auto+ir"."""
    return {**_false_positives_of("auto", n, seed0), "auto+ir": _false_positives_of("auto+ir", n, seed0)}


def timing(n: int) -> dict:
    live = [frames for _, frames, _ in live_frames(n, seed0=300_000)]
    empty = [Simulator("empty", 300_000 + k).render(0)[0] for k in range(max(1, n // 4))]
    out = {}
    for mode in ("auto", "short", "auto+ir"):
        with FacePipeline(mode) as pipeline:
            for frames in live[:10]:  # warm-up (XNNPACK, allocations)
                pipeline.analyze(frames)
            for name, batch in (("live", live), ("empty", empty)):
                total, parts = [], {"detect": [], "crops": [], "quality": []}
                for frames in batch:
                    t0 = time.perf_counter()
                    analysis = pipeline.analyze(frames)
                    total.append((time.perf_counter() - t0) * 1e3)
                    for key in parts:
                        parts[key].append(analysis.timings_ms[key])
                out[f"{mode}_{name}"] = {"frames": len(batch), "median_ms": float(np.median(total)),
                                         "p95_ms": float(np.percentile(total, 95)),
                                         **{f"{k}_median_ms": float(np.median(v)) for k, v in parts.items()}}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", type=int, default=1000)
    parser.add_argument("--empty", type=int, default=1000)
    parser.add_argument("--timing", type=int, default=200)
    parser.add_argument("--misses-dir", type=Path, default=Path("/tmp/detect_misses"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    report: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"}
    if args.timing:
        report["timing"] = timing(args.timing)
        print(json.dumps(report["timing"], indent=1), flush=True)
    if args.live:
        report["recall"] = recall(args.live, args.misses_dir)
        print(json.dumps({k: v for k, v in report["recall"].items() if k != "misses"}, indent=1), flush=True)
        print(f"{len(report['recall']['misses'])} misses (auto, confirmed):", flush=True)
        for m in report["recall"]["misses"]:
            print("  ", m, flush=True)
    if args.empty:
        report["false_positives"] = false_positives(args.empty)
        print(json.dumps(report["false_positives"], indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
