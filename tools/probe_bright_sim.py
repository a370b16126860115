"""Diagnosis only (sim): the shipped bundle on simulator sessions whose colour exposure is multiplied
by GAIN (auto-exposure over-exposing the scene), live and attacks alike, scored frame by frame with
the colour gates lifted (every other gate as the bundle's). It asks whether the model itself copes
with brighter faces than its calibration saw; nothing here trains or calibrates.

    python tools/probe_bright_sim.py [--gain 5] [--model BUNDLE] [--json]

Subjects are drawn from 650,100,000 on (the tests' seed range, never trained on).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdk.capture import SimulatorSource  # noqa: E402
from sdk.engine import ModelBundle, create_engine  # noqa: E402
from sdk.pipeline import FacePipeline  # noqa: E402
from sdk.session import quality_from_rule, stored_rule  # noqa: E402

SEED_BASE = 650_100_000
SUBJECTS = {"live": 16, "print_flat": 6, "print_curved": 6, "screen_replay": 6, "cut_eyes_curved": 6}
FRAMES = 4


def probe(bundle: ModelBundle, gain: float) -> dict[str, Any]:
    """Per scenario: frames, frames scored, frames at or above the default threshold, and the
    colour measurements and scores of the scored frames."""
    threshold = bundle.operating_point(None).threshold
    gates = quality_from_rule(stored_rule(bundle.decision_rule or {})["quality"], str(bundle.path))
    lifted = dataclasses.replace(gates, max_saturated_fraction=1.0, max_brightness=255.0)
    engine = create_engine("onnxruntime", bundle.model_path)
    rows: dict[str, list[tuple[float | None, dict[str, float], tuple[str, ...]]]] = defaultdict(list)
    try:
        with FacePipeline(quality=lifted) as pipeline:
            for scenario, count in SUBJECTS.items():
                for seed in range(SEED_BASE, SEED_BASE + count):
                    source = SimulatorSource(scenario, seed)
                    sim = source.simulator
                    sim.lighting = dataclasses.replace(sim.lighting, exposure=float(sim.lighting.exposure * gain))
                    for index, frames in enumerate(source):
                        if index >= FRAMES:
                            break
                        analysis = pipeline.analyze(frames)
                        measured = dict(analysis.quality.measurements)
                        reasons = tuple(r.value for r in analysis.quality.reasons)
                        score = None if analysis.crops is None else float(engine.score_crops([analysis.crops], tta=True)[0])
                        rows[scenario].append((score, measured, reasons))
                    source.close()
    finally:
        engine.close()
    table = {}
    for scenario, items in rows.items():
        scored = [(s, m) for s, m, _ in items if s is not None]
        def median(key: str) -> float | None:
            values = [m[key] for _, m in scored if key in m]
            return float(np.median(values)) if values else None
        table[scenario] = {
            "frames": len(items), "scored": len(scored), "at_or_above_threshold": sum(s >= threshold for s, _ in scored),
            "score_median": float(np.median([s for s, _ in scored])) if scored else None,
            "brightness_median": median("brightness"),
            "saturated_fraction_median": median("saturated_fraction"),
            "saturated_fraction_max": max((m.get("saturated_fraction", 0.0) for _, m in scored), default=None),
            "unscored_reasons": dict(Counter("+".join(r) or "NO_FACE" for s, _, r in items if s is None).most_common(3)),
        }
    return {"model": f"{bundle.name} {bundle.version}", "threshold": threshold, "gain": gain, "scenarios": table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gain", type=float, default=5.0, help="colour exposure multiplier (default 5)")
    parser.add_argument("--model", default=None, help="bundle folder (default: the shipped one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.gain > 0:
        print("error: --gain must be positive", file=sys.stderr)
        return 2
    report = probe(ModelBundle.load(args.model), args.gain)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['model']}, threshold {report['threshold']:.4f}, colour exposure x{report['gain']:g} (sim)")
    for name, row in report["scenarios"].items():
        fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        print(f"  {name:<16s} frames {row['frames']:>3d} scored {row['scored']:>3d} >= threshold "
              f"{row['at_or_above_threshold']:>3d}  score median {fmt(row['score_median'], '.3f')}  grey median "
              f"{fmt(row['brightness_median'], '.0f')}  saturated median {fmt(row['saturated_fraction_median'], '.3f')} "
              f"max {fmt(row['saturated_fraction_max'], '.3f')}  unscored {row['unscored_reasons']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
