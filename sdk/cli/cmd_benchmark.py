"""`sr300-liveness benchmark`: per-stage latency of the device path on this machine.

Frames come from a simulator recording replayed through librealsense (the real capture and
alignment path); each stage is timed on every frame and reported as median and p95.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from sdk.cli.argtypes import non_negative_int, positive_int
from sdk.errors import LivenessError

STAGES = ("capture", "detect", "crops", "quality", "engine", "fusion")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("benchmark", help="median and p95 latency per stage and end to end")
    parser.add_argument("--frames", type=positive_int, default=120, help="frames to time (default 120)")
    parser.add_argument("--warmup", type=non_negative_int, default=10, help="frames run before timing starts")
    parser.add_argument("--model", default=None, help="model bundle folder (default: the shipped model)")
    parser.add_argument("--engine", default="onnxruntime", choices=["onnxruntime", "tensorrt"])
    parser.add_argument("--precision", default=None, choices=["fp32", "fp16", "int8"],
                        help="which graph of the bundle the engine runs (default: model.onnx; quantize makes the others)")
    parser.add_argument("--device", type=int, default=0, help="CUDA device index for --engine tensorrt (default 0)")
    parser.add_argument("--source", default=None, help="a .bag file to replay (default: a simulator bag made now)")
    parser.add_argument("--no-tta", action="store_true", help="score one view instead of crop + flip")
    parser.add_argument("--threads", type=int, default=0,
                        help="ONNX Runtime intra-op threads (0: its default; 1 wins when other work shares the cores)")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    parser.set_defaults(handler=run)


def _summary(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples, dtype=np.float64)
    return {"median_ms": round(float(np.median(values)), 3), "p95_ms": round(float(np.percentile(values, 95)), 3)}


def measure(session, frames: int, warmup: int) -> dict[str, list[float]]:
    """Time the session's own per-frame path (LivenessSession.process) plus capture and fusion."""
    from sdk.fusion import TemporalFusion

    fusion = TemporalFusion(session.threshold, session.config.fusion)
    samples: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "end_to_end")}
    for index in range(warmup + frames):
        t_start = time.perf_counter()
        frameset = session.next_frames()
        if frameset is None:
            raise LivenessError("the recording ended before the benchmark did")
        t_captured = time.perf_counter()
        outcome = session.process(frameset)
        t_fusion = time.perf_counter()
        if outcome.score is not None:
            fusion.add(outcome.score)
        t_end = time.perf_counter()
        if index < warmup:
            continue
        samples["capture"].append((t_captured - t_start) * 1e3)
        for stage in ("detect", "crops", "quality", "engine"):
            samples[stage].append(float(outcome.timings_ms.get(stage, 0.0)))
        samples["fusion"].append((t_end - t_fusion) * 1e3)
        samples["end_to_end"].append((t_end - t_start) * 1e3)
    return samples


def _engine_detail(engine) -> dict:
    """What actually ran: the graph, its precision, the providers or the GPU and TensorRT version."""
    detail: dict = {"model": str(getattr(engine, "model_path", "")), "precision": getattr(engine, "precision", None)}
    if getattr(engine, "providers", None):
        detail["providers"] = list(engine.providers)
    gpu = getattr(engine, "gpu", None)
    if gpu is not None:
        detail.update(gpu=gpu.name, compute_capability=gpu.compute_capability, device=gpu.index)
    info = getattr(engine, "plan_info", None)
    if info is not None:
        detail.update(tensorrt=info.trt_version, plan=str(info.path), built_now=info.built)
    return detail


def run(args: argparse.Namespace) -> int:
    from sdk.capture import BagReplay, write_bag
    from sdk.engine import ModelBundle
    from sdk.session import LivenessSession, SessionConfig
    from sdk.sim import Simulator

    bundle = ModelBundle.load(args.model)
    total = args.frames + args.warmup
    with tempfile.TemporaryDirectory() as scratch:
        bag = Path(args.source) if args.source else Path(scratch) / "bench_live.bag"
        if not args.source:
            sim = Simulator("live", 424242)
            write_bag(bag, (frames for frames, _ in sim.frames(total)), sim.device_info, sim.intrinsics,
                      sim.depth_scale, sim.depth_to_color)
        options: dict = {"intra_op_threads": args.threads} if args.threads and args.engine == "onnxruntime" else {}
        if args.precision:
            options["precision"] = args.precision
        if args.engine == "tensorrt":
            options["device"] = args.device
        # --no-tta changes the decision rule; a benchmark times the path and decides nothing.
        config = SessionConfig(engine=args.engine, engine_options=options, tta=not args.no_tta,
                               allow_uncalibrated_rule=True)
        with LivenessSession(BagReplay(bag, loop=True), bundle, config) as session:
            samples = measure(session, args.frames, args.warmup)
            # the session keeps its engine private; read what ran for the report only
            detail = _engine_detail(getattr(session, "engine", None) or getattr(session, "_engine", None))
    report: dict = {stage: _summary(values) for stage, values in samples.items()}
    # Run details sit under "meta" so that no detail can shadow a stage key.
    report["meta"] = {
        "frames": args.frames,
        "scored_frames": int(sum(1 for v in samples["engine"] if v > 0)),
        "model": f"{bundle.name} {bundle.version}",
        "engine": args.engine,
        "engine_detail": detail,
        "tta": not args.no_tta,
        "threads": args.threads or "default",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{'stage':<12s} {'median ms':>10s} {'p95 ms':>10s}")
    for stage in (*STAGES, "end_to_end"):
        print(f"{stage:<12s} {report[stage]['median_ms']:>10.2f} {report[stage]['p95_ms']:>10.2f}")
    meta = report["meta"]
    print(f"{meta['frames']} frames, {meta['scored_frames']} scored, model {meta['model']}, engine {meta['engine']}, "
          f"TTA {'on' if meta['tta'] else 'off'}, {meta['machine']}")
    return 0
