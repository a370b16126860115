"""Faces of the simulator's people: age, make-up, fringes, hair over the cheeks, expressions.

    python tools/make_people_sheet.py [--out docs/people_sheet.png] [--start 0]

Each tile is a drawn session (no feature is forced): the first live seed from ``--start`` whose
identity or expression has the feature; colour, IR and depth (near red, far blue, holes black)
cropped around the face.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdk.sim import Simulator  # noqa: E402
from sdk.sim.live import identity_for  # noqa: E402
from tools.make_contact_sheet import depth_colour, write_sheet  # noqa: E402

OPTIONS = {"distance_range_m": (0.35, 0.55), "max_yaw_deg": 15.0}

#: (label, test on the identity, test on the session's expression, frames to show).
ROWS = (
    ("young, no make-up", lambda i: i.looks.age < 30 and not i.looks.makeup and not i.looks.fringe, lambda e: e.max_drop == 0 and e.smile == 0, (0,)),
    ("over 65: wrinkles, spots, grey", lambda i: i.looks.age > 65 and i.looks.spots >= 3, lambda e: e.max_drop == 0, (0,)),
    ("make-up", lambda i: i.looks.lipstick > 0.5 and i.looks.eye_makeup > 0.4, lambda e: e.max_drop == 0, (0,)),
    ("fringe", lambda i: i.looks.fringe and i.looks.fringe_bottom < 0.035, lambda e: e.max_drop == 0, (0,)),
    ("hair over the cheeks", lambda i: i.looks.hair_over_cheeks > 0, lambda e: e.max_drop == 0, (0,)),
    ("smile", lambda i: True, lambda e: e.smile > 0.7 and e.max_drop == 0, (0,)),
    ("open mouth", lambda i: True, lambda e: e.open_drop > 0.015, (0,)),
    ("talking", lambda i: True, lambda e: e.talking, (0, 3, 6, 9)),
)


def face_tile(sim: Simulator, frame: int, size: int) -> np.ndarray:
    fs, truth = sim.render(frame)
    b = truth.face_box
    cx, cy, half = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2, max(b.width, b.height) * 0.75
    x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
    x1, y1 = int(min(cx + half, 640)), int(min(cy + half, 480))
    parts = [cv2.cvtColor(np.ascontiguousarray(fs.color[y0:y1, x0:x1]), cv2.COLOR_RGB2BGR),
             cv2.cvtColor(np.ascontiguousarray(fs.ir[y0:y1, x0:x1]), cv2.COLOR_GRAY2BGR),
             depth_colour(fs.depth[y0:y1, x0:x1], fs.depth_scale, near_m=0.2, far_m=1.0)]
    return np.hstack([cv2.resize(p, (size, size), interpolation=cv2.INTER_AREA) for p in parts])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "people_sheet.png"))
    parser.add_argument("--start", type=int, default=0, help="first live seed searched")
    parser.add_argument("--size", type=int, default=120, help="tile side in pixels")
    args = parser.parse_args()
    cells, used = [], set()
    for label, idn_ok, expr_ok, frames in ROWS:
        seed = args.start
        while True:
            if seed not in used and idn_ok(identity_for(seed)):
                sim = Simulator("live", seed, **OPTIONS)
                if expr_ok(sim.scene.rig.expression):
                    break
            seed += 1
        used.add(seed)  # a different person in every cell
        for f in frames:
            cell = face_tile(sim, f, args.size)
            text = f"{label} (seed {seed}" + (f", frame {f})" if len(frames) > 1 else ")")
            cv2.rectangle(cell, (0, 0), (cell.shape[1], 16), (0, 0, 0), -1)
            cv2.putText(cell, text, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
            cells.append(cell)
            print(text, flush=True)
    per_row = 4
    cells += [np.zeros_like(cells[0])] * (-len(cells) % per_row)
    rows = [np.hstack(cells[k : k + per_row]) for k in range(0, len(cells), per_row)]
    write_sheet(args.out, np.vstack(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
