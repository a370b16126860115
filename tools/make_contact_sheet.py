"""Render every simulator scenario x modality (colour, IR, depth colour-mapped) into one PNG.

    python tools/make_contact_sheet.py [--out docs/contact_sheet.png] [--seed 3] [--frame 0]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdk.sim import Simulator, list_scenarios  # noqa: E402


def depth_colour(depth: np.ndarray, scale: float, near_m: float = 0.2, far_m: float = 2.0) -> np.ndarray:
    """Depth -> BGR: near red, far blue, holes black (near_m..far_m)."""
    z = depth.astype(np.float32) * scale
    level = np.clip((far_m - z) / (far_m - near_m), 0.0, 1.0)
    out = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET)
    out[depth == 0] = 0
    return out


#: Extra rows: nuisances every class shares (label, scenario, seed offset, Simulator options).
EXTRAS = (
    ("sunlight", "live", 0, {"sunlight": True}),
    ("glasses or beard", "live", 1, {"appearance": "glasses_or_beard"}),
    ("turned > 20 deg", "cut_eyes_nose_flat", 2, {"min_yaw_deg": 20.0}),
    ("sunlight", "print_flat", 3, {"sunlight": True}),
)


def tile(scenario: str, seed: int, frame: int, width: int, note: str = "", **options) -> np.ndarray:
    sim = Simulator(scenario, seed, distance_range_m=(0.35, 0.75), **options)
    fs, truth = sim.render(frame)
    colour = cv2.cvtColor(np.ascontiguousarray(fs.color), cv2.COLOR_RGB2BGR)
    if truth.face_box is not None:
        b = truth.face_box
        cv2.rectangle(colour, (int(b.x0), int(b.y0)), (int(b.x1), int(b.y1)), (0, 255, 0), 1)
    ir = cv2.cvtColor(np.ascontiguousarray(fs.ir), cv2.COLOR_GRAY2BGR)
    row = np.hstack([colour, ir, depth_colour(fs.depth, fs.depth_scale)])
    h = int(row.shape[0] * width / row.shape[1])
    row = cv2.resize(row, (width, h), interpolation=cv2.INTER_AREA)
    extra = getattr(sim.scene, "shape", None)
    label = (f"{scenario}{' [' + note + ']' if note else ''}  (label {truth.label}, type {truth.attack_type}, "
             f"{truth.distance_m:.2f} m{', ' + extra + ' print' if extra else ''})")
    cv2.rectangle(row, (0, 0), (width, 18), (0, 0, 0), -1)
    cv2.putText(row, label, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "contact_sheet.png"))
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--frame", type=int, default=0)
    parser.add_argument("--width", type=int, default=720, help="width of each row in pixels")
    args = parser.parse_args()
    rows = [tile(name, args.seed + i, args.frame, args.width) for i, name in enumerate(list_scenarios())]
    rows += [tile(scenario, args.seed + 100 + k, args.frame, args.width, note, **options)
             for note, scenario, k, options in EXTRAS]
    write_sheet(args.out, np.vstack(rows))
    return 0


def write_sheet(out: str, sheet: np.ndarray) -> None:
    """Write a sheet as a PNG (folders made as needed); exit with a message if it cannot."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(out, sheet, [int(cv2.IMWRITE_PNG_COMPRESSION), 9]):
        raise SystemExit(f"could not write {out}")
    print(f"wrote {out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    raise SystemExit(main())
