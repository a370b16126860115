"""Memory probe: is the soak's RSS growth a leak or the allocator keeping freed memory?

    python tools/memprobe.py --component session --seconds 600 --out memprobe_session.json [--trim] [--tracemalloc]

Runs one part of the device path in a loop on a few pre-rendered simulator frames (so the
simulator's own work is not measured) and samples, every ``--sample-s`` seconds:

* ``rss_mb``: resident memory (what the soak's slope is about);
* ``traced_mb`` (with --tracemalloc): bytes held by live Python objects: a Python-level leak
  grows it, native (mediapipe, ONNX Runtime) or allocator growth does not;
* ``rss_after_trim_mb`` (with --trim): RSS right after glibc's ``malloc_trim(0)``, which hands
  free heap pages back to the kernel: if RSS grows but the trimmed RSS is flat, the growth is
  memory the allocator kept after it was freed (arena fragmentation), not memory still in use.

Components: ``detector`` (BlazeFace + depth confirmation), ``engine`` (ONNX Runtime on fixed
crops, TTA), ``pipeline`` (detector + crops + gates), ``session`` (LivenessSession.process: the
whole per-frame path without capture), ``replay`` (BagReplay looping a recording, no analysis).
Run it under ``MALLOC_ARENA_MAX=2`` to see whether capping glibc's arenas flattens the slope.
The report (JSON, written atomically) holds the samples and least-squares slopes after --warmup-s.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools.soak import heap_mb, malloc_trim, rss_mb, slope_per_hour, thread_count, write_json_atomic  # noqa: E402

COMPONENTS = ("detector", "engine", "pipeline", "session", "replay")


def _frames(count: int) -> list[Any]:
    from sdk.capture import SimulatorSource

    return list(SimulatorSource("live", 1, n_frames=count))


def make_step(component: str, frames_count: int, bag: Path | None, work: Path) -> tuple[Callable[[int], None], Callable[[], None]]:
    """(one iteration, close) for the component."""
    if component == "replay":
        from sdk.capture.replay import BagReplay
        from sdk.cli.cmd_synth_bag import synth_bag

        recording = bag or work / "memprobe_live.bag"
        if not recording.is_file():
            synth_bag("live", 1, 60, recording)
        replay = BagReplay(recording, loop=True)
        iterator = iter(replay)
        return (lambda i: next(iterator)), replay.close
    frames = _frames(frames_count)
    if component in ("detector", "pipeline", "engine"):
        from sdk.pipeline import FacePipeline

        pipeline = FacePipeline()
        if component == "detector":
            return (lambda i: pipeline.detector.detect(frames[i % len(frames)])), pipeline.close
        if component == "pipeline":
            return (lambda i: pipeline.analyze(frames[i % len(frames)])), pipeline.close
        from sdk.engine import ModelBundle, create_engine

        crops = [c for c in (pipeline.analyze(f).crops for f in frames) if c is not None]
        pipeline.close()
        if not crops:
            raise RuntimeError("no frame of the probe subject passed the gates: no crops for the engine")
        engine = create_engine("onnxruntime", ModelBundle.load(None).model_path)
        return (lambda i: engine.score_crops([crops[i % len(crops)]], tta=True)), engine.close
    if component == "session":
        from sdk.session import LivenessSession

        session = LivenessSession(None)  # the source is never opened: process() needs none
        from sdk.engine import create_engine
        from sdk.pipeline import FacePipeline

        session._engine = create_engine(session.config.engine, session.bundle.model_path)
        session._pipeline = FacePipeline(detector=session.config.detector, quality=session.config.quality)
        return (lambda i: session.process(frames[i % len(frames)])), session.close
    raise ValueError(f"unknown component {component!r}; choose one of {', '.join(COMPONENTS)}")


def probe(component: str, seconds: float, sample_s: float, warmup_s: float, trim: bool, trace: bool,
          frames_count: int = 10, bag: Path | None = None, work: Path = Path("."), collect: bool = False) -> dict[str, Any]:
    step, close = make_step(component, frames_count, bag, work)
    if trace:
        tracemalloc.start(8)
    samples: list[dict[str, float]] = []
    started = time.monotonic()
    next_sample = 0.0
    iterations = 0
    can_trim = trim
    baseline: tracemalloc.Snapshot | None = None
    growth: list[str] = []
    try:
        while True:
            now = time.monotonic() - started
            if now >= next_sample:
                if collect:  # garbage in reference cycles is not a leak: free it before measuring
                    gc.collect()
                row: dict[str, float] = {"t_s": round(now, 2), "iterations": iterations, "rss_mb": round(rss_mb(), 2),
                                         "threads": thread_count()}
                heap = heap_mb()
                if heap is not None:
                    row["heap_in_use_mb"], row["heap_free_mb"] = round(heap[0], 2), round(heap[1], 2)
                if trace:
                    row["traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 3)
                if can_trim:
                    can_trim = malloc_trim()
                    if can_trim:
                        row["rss_after_trim_mb"] = round(rss_mb(), 2)
                samples.append(row)
                print(json.dumps(row), flush=True)
                next_sample += sample_s
                if trace and baseline is None and now >= warmup_s:
                    baseline = tracemalloc.take_snapshot()
                if now >= seconds:
                    if baseline is not None:  # where Python objects grew after the warm-up
                        diff = tracemalloc.take_snapshot().compare_to(baseline, "traceback")
                        growth = ["\n".join([str(d)] + d.traceback.format()[-6:]) for d in diff[:8]]
                    break
            step(iterations)
            iterations += 1
    finally:
        close()
        if trace:
            tracemalloc.stop()
    after = [s for s in samples if s["t_s"] >= warmup_s]
    slopes = {key: slope_per_hour([s["t_s"] for s in after], [s[key] for s in after])
              for key in ("rss_mb", "heap_in_use_mb", "heap_free_mb", "traced_mb", "rss_after_trim_mb") if after and key in after[0]}
    return {"component": component, "seconds": seconds, "iterations": iterations, "warmup_s": warmup_s,
            "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"), "trim": trim, "tracemalloc": trace, "gc_collect": collect,
            "slopes_per_h": slopes, "per_iteration_kb": {k: None if v is None or not iterations else
                                                        round(v / 3600 * seconds / max(1, iterations) * 1024, 4)
                                                        for k, v in slopes.items()},
            "load_average_end": os.getloadavg(), "python_growth_top": growth, "samples": samples}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--component", choices=COMPONENTS, required=True)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--warmup-s", type=float, default=60.0)
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) at each sample and log RSS after it")
    parser.add_argument("--tracemalloc", action="store_true", help="log bytes held by Python objects")
    parser.add_argument("--gc", action="store_true", help="gc.collect() before each sample")
    parser.add_argument("--frames", type=int, default=10, help="pre-rendered frames to cycle through")
    parser.add_argument("--bag", type=Path, help="recording for --component replay")
    parser.add_argument("--out", type=Path, required=True, help="report JSON")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.sample_s <= 0 or args.frames < 1:
        parser.error("--seconds and --sample-s must be > 0, --frames >= 1")
    report = probe(args.component, args.seconds, args.sample_s, args.warmup_s, args.trim, args.tracemalloc,
                   args.frames, args.bag, args.out.parent, args.gc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, report)
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
