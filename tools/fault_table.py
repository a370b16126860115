"""Inject every fault of sdk.faults many times and tabulate what the SDK answered.

    python tools/fault_table.py --repeat 10 --out docs/fault_table.md

Set-up per group (the strongest one for that fault):

- source / engine / detector faults: the virtual SR300 renders a live subject and the model is a
  real ONNX graph that says LIVE to anything, so without the fault every check is LIVE (the
  control row shows it) and any LIVE under a fault is a fault that went unnoticed. The fault
  strikes after 0-4 good frames (varied over the repetitions), subjects vary too.
- recordings: a live simulator .bag, damaged on the fly, checked with the same always-LIVE model;
  pixel damage (which no ROS bag can detect: it has no checksums) on an attack recording with the
  shipped model instead, where LIVE would mean the damage turned an attack into a pass.
- bundles: the shipped bundle copied and tampered with; loading it must fail with a typed error,
  or the check must fail closed.

Writes a markdown table (--out) and the same rows as JSON beside it (.json), atomically.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: live simulator subjects whose face BlazeFace finds on every frame (the control row checks it)
LIVE_SEEDS = (1, 2, 3, 5, 8)
#: source faults that strike once (the others stay on for the rest of the check)
ONE_SHOT_SOURCE = {"clock_back", "clock_forward", "device_swap"}


def outcome_of(result: Any) -> str:
    return f"{result.decision.value} {'+'.join(r.value for r in result.reasons) or '-'}"


def run_check(source: Any, bundle: Path | None, config: Any) -> tuple[str, bool]:
    """(outcome, is_live) of one check; a typed error raised by set-up counts as its class name."""
    from sdk.errors import LivenessError
    from sdk.session import LivenessSession

    try:
        session = LivenessSession(source, bundle, config)
    except LivenessError as error:
        if hasattr(source, "close"):
            source.close()
        return f"{type(error).__name__} (load)", False
    try:
        result = session.check()
    finally:
        session.close()
    return outcome_of(result), result.decision.value == "LIVE"


def always_live_bundle(folder: Path) -> Path:
    from sdk.engine.bundle import write_bundle
    from tests.conftest import tiny_onnx_model

    model = tiny_onnx_model(folder / "always_live.onnx", weights=(0.0, 0.0, 0.0), bias=5.0)
    return write_bundle(folder / "always_live", model, name="always-live", version="0.0.1",
                        operating_points={"default": {"threshold": 0.5}}, default_operating_point="default").path


class Table:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, group: str, fault: str, setup: str, trials: Callable[[int], tuple[str, bool]], repeat: int,
            progress: Any) -> None:
        outcomes: Counter[str] = Counter()
        live = 0
        started = time.perf_counter()
        for k in range(repeat):
            outcome, is_live = trials(k)
            outcomes[outcome] += 1
            live += is_live
            progress.update(1)
        self.rows.append({"group": group, "fault": fault, "setup": setup, "injected": repeat,
                          "outcomes": dict(outcomes.most_common()), "live": live,
                          "seconds": round(time.perf_counter() - started, 1)})

    def markdown(self) -> str:
        lines = ["| group | fault | set-up | times injected | outcome (count) | LIVE |", "| --- | --- | --- | --- | --- | --- |"]
        for row in self.rows:
            outcome = "; ".join(f"{k} ({v})" for k, v in row["outcomes"].items())
            live = str(row["live"])
            if row["live"] and row["group"] != "control":
                live = f"**{live}**"  # a fault that went unnoticed
            lines.append(f"| {row['group']} | `{row['fault']}` | {row['setup']} | {row['injected']} | {outcome} | {live} |")
        return "\n".join(lines)


def build(repeat: int, work: Path, only: Sequence[str] = (), faults: Sequence[str] = ()) -> Table:
    from tqdm import tqdm

    from sdk.capture import SimulatorSource
    from sdk.cli.cmd_synth_bag import synth_bag
    from sdk.detect.blazeface import BlazeFaceDetector
    from sdk.engine.bundle import DEFAULT_BUNDLE, SHIPPED_DIR
    from sdk.faults import (BAG_DAMAGE, BUNDLE_TAMPERING, DETECTOR_FAULTS, ENGINE_FAULTS, SOURCE_FAULTS, FaultPlan,
                            FaultyDetector, FaultySource, damage_bag, tamper_bundle, write_bag_with)
    from sdk.session import SessionConfig

    live_model = always_live_bundle(work)
    config = SessionConfig(max_frames=10, timeout_s=30)
    wanted = set(only) or {"control", "source", "engine", "detector", "recording", "bundle"}
    formats = {"missing_color": {"streams": ("depth", "ir")}, "missing_ir": {"streams": ("depth", "color")},
               "missing_depth": {"streams": ("ir", "color")}, "ir_y16": {"ir_format": "y16"},
               "depth_y16": {"depth_format": "y16"}, "color_yuyv": {"color_format": "yuyv"}}
    total = repeat * (("control" in wanted) + len(SOURCE_FAULTS) * ("source" in wanted)
                      + len(ENGINE_FAULTS) * ("engine" in wanted) + len(DETECTOR_FAULTS) * ("detector" in wanted)
                      + (len(BAG_DAMAGE) + len(formats)) * ("recording" in wanted)
                      + len(BUNDLE_TAMPERING) * ("bundle" in wanted))
    table = Table()
    live_setup = "live subject, always-LIVE model"
    with tqdm(total=total, unit="check", desc="faults") as bar:
        def seed(k: int) -> int:
            return LIVE_SEEDS[k % len(LIVE_SEEDS)]

        if "control" in wanted:
            table.add("control", "none", live_setup,
                      lambda k: run_check(SimulatorSource("live", seed(k)), live_model, config), repeat, bar)
        if "source" in wanted:
            for fault in SOURCE_FAULTS:
                if faults and fault not in faults:
                    continue
                one_shot = fault in ONE_SHOT_SOURCE
                # a one-shot fault needs a good frame before it: on the first frame it would
                # define the stream instead of breaking it
                table.add("source", fault, live_setup, lambda k, f=fault, o=one_shot: run_check(
                    FaultySource(SimulatorSource("live", seed(k)), f, after=1 + k % 4 if o else k % 5,
                                 times=1 if o else None), live_model, config),
                    repeat, bar)
        if "engine" in wanted:
            for fault in ENGINE_FAULTS:
                def engine_trial(k: int, f: str = fault) -> tuple[str, bool]:
                    plan = FaultPlan(f, after=k % 5, options={"seconds": 2.0})
                    cfg = SessionConfig(max_frames=10, timeout_s=1.5 if f == "slow" else 30,
                                        engine="faulty", engine_options={"plan": plan})
                    return run_check(SimulatorSource("live", seed(k)), live_model, cfg)
                table.add("engine", fault, live_setup, engine_trial, repeat, bar)
        if "detector" in wanted:
            for fault in DETECTOR_FAULTS:
                def detector_trial(k: int, f: str = fault) -> tuple[str, bool]:
                    detector = FaultyDetector(BlazeFaceDetector("auto"), f, after=k % 5)
                    cfg = SessionConfig(max_frames=10, timeout_s=30, detector=detector)
                    return run_check(SimulatorSource("live", seed(k)), live_model, cfg)
                table.add("detector", fault, live_setup, detector_trial, repeat, bar)
        if "recording" in wanted:
            live_bag = work / "live.bag"
            synth_bag("live", 1, 8, live_bag)
            attack_bag = work / "mask.bag"
            synth_bag("mask_3d", 7, 8, attack_bag)
            for damage in BAG_DAMAGE:
                pixels = damage == "zero_block"
                bag, model = (attack_bag, None) if pixels else (live_bag, live_model)
                setup = "mask_3d recording, shipped model" if pixels else "live recording, always-LIVE model"
                table.add("recording", damage, setup, lambda k, d=damage, b=bag, m=model: run_check(
                    damage_bag(b, work / f"{d}_{k}.bag", d, seed=k), m, config), repeat, bar)
            frames = list(SimulatorSource("live", 1, n_frames=4))
            for name, options in formats.items():
                bag = write_bag_with(work / f"{name}.bag", frames, **options)
                table.add("recording", name, "live recording, always-LIVE model",
                          lambda k, b=bag: run_check(b, live_model, config), repeat, bar)
        if "bundle" in wanted:
            shipped = SHIPPED_DIR / DEFAULT_BUNDLE
            for tampering in BUNDLE_TAMPERING:
                def bundle_trial(k: int, t: str = tampering) -> tuple[str, bool]:
                    folder = work / "bundles" / f"{t}_{k}"
                    bundle = tamper_bundle(shipped, folder / "bundle", t)
                    return run_check(SimulatorSource("live", seed(k)), bundle, SessionConfig(max_frames=10))
                table.add("bundle", tampering, "live subject, shipped bundle tampered", bundle_trial, repeat, bar)
    return table


def write_atomic(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="injections per fault (default 10)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "fault_table.md", help="markdown table to write")
    parser.add_argument("--only", nargs="*", default=[],
                        choices=["control", "source", "engine", "detector", "recording", "bundle"])
    parser.add_argument("--faults", nargs="*", default=[], help="only these source faults (with --only source)")
    parser.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON beside --out")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    started = time.perf_counter()
    previous = args.out.with_suffix(".json")
    load = os.getloadavg()[0]
    if args.render:
        table = Table()
        stored = json.loads(previous.read_text(encoding="utf-8"))
        table.rows = stored["rows"]
        found = re.search(r"load average ([0-9.]+)", stored.get("summary", ""))
        load = float(found.group(1)) if found else float("nan")  # the run's load, not the renderer's
        args.only = sorted({r["group"] for r in table.rows})
    else:
        with tempfile.TemporaryDirectory(prefix="faults_") as work:
            table = build(args.repeat, Path(work), args.only, args.faults)
    seconds = time.perf_counter() - started
    if args.only and previous.is_file():
        # a partial run replaces its groups' rows in the previous table and keeps the others
        old_rows = json.loads(previous.read_text(encoding="utf-8"))["rows"]
        fresh = {(r["group"], r["fault"]): r for r in table.rows}
        merged = [fresh.pop((r["group"], r["fault"]), r) for r in old_rows]
        table.rows = merged + list(fresh.values())
        seconds = sum(r.get("seconds", 0.0) for r in table.rows)  # the injections' own time, old and new
    faults = [r for r in table.rows if r["group"] != "control"]
    summary = (f"{sum(r['injected'] for r in faults)} injections of {len(faults)} faults in {seconds:.0f} s; "
               f"LIVE under a fault: {sum(r['live'] for r in faults)} (goal 0); "
               f"load average {load:.1f} on {os.cpu_count()} CPUs")
    text = f"<!-- written by tools/fault_table.py --repeat {args.repeat} -->\n{table.markdown()}\n\n{summary}\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, text)
    write_atomic(args.out.with_suffix(".json"), json.dumps({"summary": summary, "rows": table.rows}, indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
