"""Soak test: run the liveness session for a long time on a looping recording and watch for drift.

    python tools/soak.py --minutes 30 --out soak_run/

Checks run back to back on one LivenessSession whose source is a BagReplay with loop=True (the
recording starts over whenever it ends). Every frame's latency (capture + detect + crops + gates +
engine + fusion, measured around the session's own per-frame path) is logged; every
``--sample-s`` seconds the process's resident memory (RSS), open file descriptors, threads and
the machine's load average are logged. The report gives the least-squares slope of RSS (MB per
hour) and of frame latency (ms per hour) after a warm-up, p50/p95 latency per time slice, and
the fd range. Goal: RSS slope ~0, no fd growth, p95 flat.

Output (in --out): ``samples.csv`` and ``frames.csv`` (appended and flushed as the run goes,
so a killed run keeps its log), ``report.json`` (written atomically at the end), and the report
printed as text. Without --bag a live simulator recording is made first (synth-bag).
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import ctypes.util
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))


# -- process probes (Linux /proc; these are what a leak would move) ------------------------------
def rss_mb() -> float:
    """Resident set size of this process in MiB (VmRSS)."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found in /proc/self/status")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


_LIBC = _libc()


def heap_mb() -> tuple[float, float] | None:
    """(bytes the program holds, free bytes glibc keeps) in MiB, from glibc's mallinfo2 over all
    arenas; None without glibc >= 2.33. A leak grows the first; allocator retention (freed memory
    the arenas keep, fragmentation) grows only the second, and RSS with it."""
    if _LIBC is None or not hasattr(_LIBC, "mallinfo2"):
        return None
    _LIBC.mallinfo2.restype = _MallInfo2
    info = _LIBC.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20, info.fordblks / 2**20


def malloc_trim() -> bool:
    """glibc's malloc_trim(0): hand free heap pages back to the kernel. False without glibc."""
    if _LIBC is None or not hasattr(_LIBC, "malloc_trim"):
        return False
    _LIBC.malloc_trim(0)
    return True


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


# -- statistics ----------------------------------------------------------------------------------
def slope_per_hour(t_s: Sequence[float], values: Sequence[float]) -> float | None:
    """Least-squares slope of values over time, in units per hour (None with < 2 distinct times)."""
    t = np.asarray(t_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.size < 2 or np.ptp(t) == 0:
        return None
    slope_per_s = np.polyfit(t, v, 1)[0]
    return float(slope_per_s * 3600.0)


def _finite_slope(samples: Sequence[dict[str, float]], warmup: float, key: str) -> float | None:
    rows = [s for s in samples if s["t_s"] >= warmup and np.isfinite(s.get(key, float("nan")))]
    return slope_per_hour([s["t_s"] for s in rows], [s[key] for s in rows])


def slice_stats(t_s: np.ndarray, latency_ms: np.ndarray, slice_s: float) -> list[dict[str, float]]:
    """p50 / p95 / max latency and frame count per consecutive time slice."""
    rows = []
    if t_s.size == 0:
        return rows
    edges = np.arange(0.0, float(t_s.max()) + slice_s, slice_s)
    for start in edges:
        mask = (t_s >= start) & (t_s < start + slice_s)
        if not mask.any():
            continue
        chunk = latency_ms[mask]
        rows.append({
            "start_s": round(float(start), 1),
            "frames": int(mask.sum()),
            "p50_ms": round(float(np.percentile(chunk, 50)), 3),
            "p95_ms": round(float(np.percentile(chunk, 95)), 3),
            "max_ms": round(float(chunk.max()), 3),
        })
    return rows


@dataclass
class SoakLog:
    """The run's two CSV logs, flushed row by row so a killed run keeps what it measured."""

    out: Path

    def __post_init__(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self._samples_file = open(self.out / "samples.csv", "w", newline="", encoding="utf-8")
        self._frames_file = open(self.out / "frames.csv", "w", newline="", encoding="utf-8")
        self.samples = csv.writer(self._samples_file)
        self.frames = csv.writer(self._frames_file)
        self._checks_file = open(self.out / "checks.csv", "w", newline="", encoding="utf-8")
        self.checks = csv.writer(self._checks_file)
        self.samples.writerow(["t_s", "rss_mb", "open_fds", "threads", "load1", "frames", "checks", "heap_in_use_mb",
                               "heap_free_mb"])
        self.frames.writerow(["t_s", "latency_ms", "scored"])
        self.checks.writerow(["t_s", "decision", "reasons", "frames_used", "message"])

    def sample(self, row: Sequence[Any]) -> None:
        self.samples.writerow(row)
        self._samples_file.flush()
        self._frames_file.flush()

    def frame(self, row: Sequence[Any]) -> None:
        self.frames.writerow(row)

    def check(self, row: Sequence[Any]) -> None:
        self.checks.writerow(row)
        self._checks_file.flush()

    def close(self) -> None:
        for handle in (self._samples_file, self._frames_file, self._checks_file):
            handle.close()


def make_recording(folder: Path, scenario: str, seed: int, frames: int) -> Path:
    from sdk.cli.cmd_synth_bag import synth_bag

    bag = folder / f"soak_{scenario}_{seed}.bag"
    if not bag.is_file():
        synth_bag(scenario, seed, frames, bag)
    return bag


def write_json_atomic(path: Path, data: Any) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(temp, path)


def run_soak(
    minutes: float,
    out: Path,
    bag: Path | None = None,
    model: str | None = None,
    scenario: str = "live",
    seed: int = 1,
    bag_frames: int = 60,
    sample_s: float = 5.0,
    slice_s: float = 60.0,
    warmup_s: float | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    from tqdm import tqdm

    from sdk.capture.replay import BagReplay
    from sdk.session import LivenessSession, SessionConfig

    out.mkdir(parents=True, exist_ok=True)
    recording = bag if bag is not None else make_recording(out, scenario, seed, bag_frames)
    duration_s = minutes * 60.0
    # The first minutes hold one-off growth (allocator arenas, ONNX Runtime's memory planner,
    # mediapipe's graph): the slopes are taken after it.
    warmup = min(60.0, 0.1 * duration_s) if warmup_s is None else warmup_s
    options = {"intra_op_threads": threads} if threads else {}
    config = SessionConfig(timeout_s=30.0, max_frames=45, engine_options=options)
    log = SoakLog(out)
    decisions: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    frames_t: list[float] = []
    frames_ms: list[float] = []
    samples: list[dict[str, float]] = []
    load_start = os.getloadavg()
    started = time.monotonic()
    state = {"last": 0.0, "frames": 0}

    def elapsed() -> float:
        return time.monotonic() - started

    def take_sample(checks: int) -> None:
        heap = heap_mb()
        row = {"t_s": round(elapsed(), 3), "rss_mb": round(rss_mb(), 2), "open_fds": open_fds(),
               "threads": thread_count(), "load1": os.getloadavg()[0], "frames": state["frames"], "checks": checks,
               "heap_in_use_mb": round(heap[0], 2) if heap else float("nan"),
               "heap_free_mb": round(heap[1], 2) if heap else float("nan")}
        samples.append(row)
        log.sample(list(row.values()))

    def on_frame(_frames: Any, outcome: Any) -> None:
        now = time.monotonic()
        latency = (now - state["last"]) * 1e3  # from the previous frame's end: capture included
        state["last"] = now
        state["frames"] += 1
        t = now - started
        frames_t.append(t)
        frames_ms.append(latency)
        log.frame([round(t, 4), round(latency, 3), int(outcome.score is not None)])

    checks = 0
    restarts: list[dict[str, Any]] = []
    passes = 0
    bar = tqdm(total=int(duration_s), unit="s", desc="soak", disable=not progress)
    take_sample(0)
    next_sample = sample_s
    try:
        # at least one check, however short the run and slow the start (a loaded CI machine)
        while elapsed() < duration_s or checks == 0:
            # One session per source: when the source dies (a capture error, or it ends), the
            # soak does what an integrator would, it opens a new session, and logs the restart.
            source = BagReplay(recording, loop=True)
            with LivenessSession(source, model, config) as session:
                while elapsed() < duration_s or checks == 0:
                    state["last"] = time.monotonic()
                    result = session.check(on_frame=on_frame)
                    checks += 1
                    decisions[result.decision.value] += 1
                    reasons.update(r.value for r in result.reasons)
                    if result.decision.value != "LIVE" or result.message:
                        log.check([round(elapsed(), 3), result.decision.value, " ".join(r.value for r in result.reasons),
                                   result.frames_used, result.message[:300]])
                    if elapsed() >= next_sample:
                        take_sample(checks)
                        next_sample += sample_s
                    bar.n = min(int(elapsed()), int(duration_s))
                    bar.refresh()
                    if result.frames_used == 0 or any(r.value in ("DEVICE_ERROR", "INTERNAL_ERROR") for r in result.reasons) \
                            or "ran out of frames" in result.message:
                        restarts.append({"t_s": round(elapsed(), 1), "reasons": [r.value for r in result.reasons],
                                         "message": result.message[:300]})
                        break
            passes += source.passes
        take_sample(checks)
    finally:
        bar.close()
        log.close()
    load_end = os.getloadavg()
    t = np.asarray(frames_t)
    ms = np.asarray(frames_ms)
    after = t >= warmup
    s_t = [s["t_s"] for s in samples if s["t_s"] >= warmup]
    s_rss = [s["rss_mb"] for s in samples if s["t_s"] >= warmup]
    s_fds = [s["open_fds"] for s in samples]
    report = {
        "recording": str(recording),
        "minutes": minutes,
        "elapsed_s": round(elapsed(), 1),
        "warmup_s": warmup,
        "checks": checks,
        "frames": int(t.size),
        "passes_over_recording": passes,
        "session_restarts": len(restarts),
        "restart_events": restarts[:20],
        "decisions": dict(decisions),
        "reasons": dict(reasons),
        "rss_mb": {"start": samples[0]["rss_mb"], "after_warmup": s_rss[0] if s_rss else None,
                   "end": samples[-1]["rss_mb"], "max": max(s["rss_mb"] for s in samples)},
        "rss_slope_mb_per_h": slope_per_hour(s_t, s_rss),
        "heap_in_use_slope_mb_per_h": _finite_slope(samples, warmup, "heap_in_use_mb"),
        "heap_free_slope_mb_per_h": _finite_slope(samples, warmup, "heap_free_mb"),
        "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"),
        "open_fds": {"start": s_fds[0], "end": s_fds[-1], "min": min(s_fds), "max": max(s_fds)},
        "threads": {"start": samples[0]["threads"], "end": samples[-1]["threads"],
                    "max": max(s["threads"] for s in samples)},
        "latency_ms": {
            "p50": round(float(np.percentile(ms, 50)), 3) if ms.size else None,
            "p95": round(float(np.percentile(ms, 95)), 3) if ms.size else None,
            "max": round(float(ms.max()), 3) if ms.size else None,
        },
        "latency_slope_ms_per_h": slope_per_hour(t[after], ms[after]),
        "p95_slope_ms_per_h": None,
        "slices": slice_stats(t, ms, slice_s),
        "load_average": {"start_1_5_15": [round(x, 2) for x in load_start], "end_1_5_15": [round(x, 2) for x in load_end],
                         "mean_1min": round(float(np.mean([s["load1"] for s in samples])), 2)},
        "cpu_count": os.cpu_count(),
    }
    slices_after = [row for row in report["slices"] if row["start_s"] >= warmup]
    report["p95_slope_ms_per_h"] = slope_per_hour([r["start_s"] for r in slices_after], [r["p95_ms"] for r in slices_after])
    write_json_atomic(out / "report.json", report)
    return report


def report_text(report: dict[str, Any]) -> str:
    def fmt(value: float | None, unit: str) -> str:
        return "n/a" if value is None else f"{value:+.3f} {unit}"

    lines = [
        f"soak: {report['elapsed_s']:.0f} s, {report['checks']} checks, {report['frames']} frames, "
        f"{report['passes_over_recording']} passes over {Path(report['recording']).name}",
        f"decisions: {report['decisions']}; reasons {report['reasons']}",
        f"session restarts (source died): {report['session_restarts']} {report['restart_events'][:3]}",
        f"RSS MB: start {report['rss_mb']['start']:.1f}, after warm-up {report['rss_mb']['after_warmup']}, "
        f"end {report['rss_mb']['end']:.1f}, max {report['rss_mb']['max']:.1f}; "
        f"slope {fmt(report['rss_slope_mb_per_h'], 'MB/h')}",
        f"glibc heap slopes: in use {fmt(report.get('heap_in_use_slope_mb_per_h'), 'MB/h')}, "
        f"free but kept {fmt(report.get('heap_free_slope_mb_per_h'), 'MB/h')} "
        f"(MALLOC_ARENA_MAX={report.get('malloc_arena_max')})",
        f"open fds: start {report['open_fds']['start']}, end {report['open_fds']['end']}, "
        f"range {report['open_fds']['min']}-{report['open_fds']['max']}; threads {report['threads']}",
        f"frame latency ms: p50 {report['latency_ms']['p50']}, p95 {report['latency_ms']['p95']}, "
        f"max {report['latency_ms']['max']}; slope {fmt(report['latency_slope_ms_per_h'], 'ms/h')}, "
        f"p95 slope {fmt(report['p95_slope_ms_per_h'], 'ms/h')}",
        f"load average: start {report['load_average']['start_1_5_15']}, end {report['load_average']['end_1_5_15']}, "
        f"mean 1-min {report['load_average']['mean_1min']} on {report['cpu_count']} CPUs",
        "slice start_s  frames  p50_ms  p95_ms  max_ms",
    ]
    lines += [f"{r['start_s']:>13.0f} {r['frames']:>7d} {r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} {r['max_ms']:>7.1f}"
              for r in report["slices"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, required=True, help="how long to run")
    parser.add_argument("--out", type=Path, default=Path("soak_run"), help="folder for logs and report.json")
    parser.add_argument("--bag", type=Path, help="recording to loop (default: a live simulator bag made first)")
    parser.add_argument("--model", help="bundle folder (default: the shipped bundle)")
    parser.add_argument("--scenario", default="live", help="simulator scenario of the made recording")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed of the made recording")
    parser.add_argument("--bag-frames", type=int, default=60, help="frames in the made recording")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between RSS/fd samples")
    parser.add_argument("--slice-s", type=float, default=60.0, help="seconds per latency slice in the report")
    parser.add_argument("--warmup-s", type=float, help="seconds left out of the slopes (default min(60, 10%%))")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--malloc-arena-max", type=int, metavar="N",
                        help="run under MALLOC_ARENA_MAX=N (glibc reads it at start-up: the soak restarts itself "
                             "with it); 2 is what docs/reliability.md recommends for a long-running device")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.sample_s <= 0 or args.slice_s <= 0:
        parser.error("--minutes, --sample-s and --slice-s must be > 0")
    if args.malloc_arena_max is not None:
        if args.malloc_arena_max < 1:
            parser.error("--malloc-arena-max must be >= 1")
        if os.environ.get("MALLOC_ARENA_MAX") != str(args.malloc_arena_max):
            env = dict(os.environ, MALLOC_ARENA_MAX=str(args.malloc_arena_max))
            os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve()),
                                      *(sys.argv[1:] if argv is None else argv)], env)
    report = run_soak(args.minutes, args.out, bag=args.bag, model=args.model, scenario=args.scenario,
                      seed=args.seed, bag_frames=args.bag_frames, sample_s=args.sample_s, slice_s=args.slice_s,
                      warmup_s=args.warmup_s, threads=args.threads, progress=not args.no_progress)
    print(report_text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
