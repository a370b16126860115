"""`sr300-liveness synth-bag`: record simulator frames as an SR300 .bag plus a JSON sidecar."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth-bag",
        help="record a simulator scenario as a RealSense .bag (with a ground-truth .json sidecar)",
        description=(
            "Render a scenario with the virtual SR300 and record it through librealsense's recorder. "
            "Writes PATH.bag and PATH.json (scenario, label, attack type, seed, face box per frame)."
        ),
    )
    parser.add_argument("--list", action="store_true", help="list the scenario names and exit")
    parser.add_argument("--scenario", help="scenario name (see --list)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    parser.add_argument("--frames", type=int, default=30, help="number of frames (default 30)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    parser.add_argument("--out", help="output .bag path")
    parser.set_defaults(handler=run)


def list_text() -> str:
    from sdk.sim import get_scenario, list_scenarios

    lines = []
    for name in list_scenarios():
        spec = get_scenario(name)
        label = "live" if spec.label == 1 else "attack"
        attack = "-" if spec.attack_type is None else str(spec.attack_type)
        lines.append(f"{name:28s} {label:6s} attack_type={attack:2s} {spec.description}")
    return "\n".join(lines)


def sidecar_path(bag: Path) -> Path:
    return bag.with_suffix(".json")


def synth_bag(scenario: str, seed: int, frames: int, out: Path, fps: float = 30.0,
              exposure_scale: float = 1.0) -> dict[str, Any]:
    """Render, record and write the sidecar; return the sidecar's content. ``exposure_scale``
    scales the colour auto-exposure (sdk.sim.Simulator; the sidecar records it when not 1)."""
    from sdk.capture.bag_writer import write_bag
    from sdk.sim import Simulator, get_scenario
    from sdk.sim.holdout import session_families
    from sdk.types import FrameSet

    spec = get_scenario(scenario)
    sim = Simulator(scenario, seed, fps=fps, exposure_scale=exposure_scale)
    rows: list[dict[str, Any]] = []

    def rendered() -> Iterator[FrameSet]:
        for index in range(frames):
            frameset, truth = sim.render(index)
            box = truth.face_box
            rows.append(
                {
                    "frame_number": int(frameset.frame_number),
                    "face_box": None if box is None else [float(v) for v in box.as_tuple()],
                    "timestamp_ms": round(float(frameset.timestamp_ms), 6),
                    "distance_m": float(truth.distance_m),
                    "yaw_deg": round(float(truth.yaw_deg), 3),
                }
            )
            yield frameset

    write_bag(out, rendered(), sim.device_info, sim.intrinsics, sim.depth_scale, sim.depth_to_color, fps=fps)
    sidecar = {
        "scenario": scenario,
        "attack_type": spec.attack_type,
        "label": int(spec.label),
        "seed": int(seed),
        "fps": fps,
        "bag": out.name,
        "device": {"name": sim.device_info.name, "serial": sim.device_info.serial},
        # Held-out generator families this session falls into ([]: in-distribution), so that
        # evaluations report in-distribution and held-out figures apart.
        "holdout_families": list(session_families(sim, [r["yaw_deg"] for r in rows], [r["distance_m"] for r in rows])),
        "frames": rows,
    }
    if sim.exposure_scale != 1.0:
        sidecar["exposure_scale"] = sim.exposure_scale
    path = sidecar_path(out)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(sidecar, indent=1) + "\n", encoding="utf-8")
    os.replace(temp, path)
    return sidecar


def run(args: argparse.Namespace) -> int:
    if args.list:
        print(list_text())
        return 0
    if not args.scenario or not args.out:
        print("sr300-liveness synth-bag: error: --scenario and --out are required (or --list)", file=sys.stderr)
        return 2
    if args.frames < 1:
        print("sr300-liveness synth-bag: error: --frames must be >= 1", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.suffix.lower() != ".bag":
        print("sr300-liveness synth-bag: error: --out must end in .bag", file=sys.stderr)
        return 2
    sidecar = synth_bag(args.scenario, args.seed, args.frames, out, fps=args.fps)
    print(f"wrote {out} ({len(sidecar['frames'])} frames, {out.stat().st_size} bytes) and {sidecar_path(out)}")
    return 0
