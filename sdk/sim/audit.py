"""Shortcut audit: can one simple number per crop tell live from an attack?

A fixed-seed set of simulator sessions (live and every attack scenario) is rendered, faces are
found by the device's own detector (BlazeFace, raw boxes: the crop a model would see, not the
simulator's truth box), the three 112x112 crops are cut with ``sdk.preprocess.make_crops``,
and single scalars are measured on each crop. For each scalar and each attack scenario the
audit reports the AUC of live against that attack (direction-free: max(AUC, 1 - AUC)).

Scalars are marked ``physics`` when a real SR300 separates the classes by them too (depth
relief of a flat sheet, NIR darkness of a screen, the metric size of a face on a phone); every
other scalar is a nuisance that must not separate them: ``failures`` lists any non-physics
scalar with AUC above ``MAX_NON_PHYSICS_AUC``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import cv2
import numpy as np

from sdk.preprocess import DEPTH_BACK_M, face_median_depth_m, make_crops, square_region
from sdk.sim.scenarios import SCENARIOS
from sdk.types import FaceBox, FrameSet, FrameTruth

#: CI fails when a non-physics scalar separates live from an attack better than this.
MAX_NON_PHYSICS_AUC = 0.9
#: Seeds of the audit set: far from every dataset split (1e6-4e6 + k*1e7) and holdout range.
AUDIT_SEED_BASE = 7_000_000
#: Attack scenarios audited (every attack the simulator renders).
AUDIT_ATTACKS = tuple(n for n, s in SCENARIOS.items() if s.label == 0 and n != "empty")
#: Frames of a session the audit looks at (one per session, spread over the motion).
FRAME_CHOICES = (0, 5, 11, 17)


@dataclass(frozen=True)
class Scalar:
    name: str
    physics: bool
    description: str


SCALARS: tuple[Scalar, ...] = (
    Scalar("zero_depth_share", False, "share of the depth crop that is 0 (holes or > 10 cm behind the face)"),
    Scalar("far_share", False, "share of the region with valid depth > 10 cm behind the face median"),
    Scalar("hole_share", False, "share of the region without depth (raw 0)"),
    Scalar("black_colour_share", False, "share of the colour crop that is black (colour zeroed without depth)"),
    Scalar("colour_mean", False, "mean grey level of the colour crop"),
    Scalar("colour_saturation", False, "mean HSV saturation of the colour crop"),
    Scalar("colour_sharpness", False, "variance of the Laplacian of the grey colour crop (centre)"),
    Scalar("colour_border_mean", False, "mean grey level of the crop's outer 12-pixel border"),
    Scalar("ir_border_mean", False, "mean IR level of the crop's outer 12-pixel border"),
    Scalar("ir_centre_std", True, "IR standard deviation in the central 56x56 (inkjet dyes are NIR-transparent: prints look blank in IR)"),
    Scalar("depth_edge_share", False, "share of neighbouring depth-crop pixels switching valid/invalid"),
    Scalar("yaw_deg", False, "|yaw| of the presented face (truth)"),
    Scalar("distance_m", False, "distance of the presented face (median depth in the box)"),
    Scalar("box_width_px", False, "width of the detector's box in pixels"),
    Scalar("detector_score", False, "BlazeFace confidence"),
    Scalar("ir_centre_mean", True, "IR mean in the central 56x56 (NIR albedo: screens are dark)"),
    Scalar("depth_relief", True, "p95 - p5 of valid depth (mm) in the central 56x56 (flat sheets)"),
    Scalar("depth_spread", True, "std of valid depth (mm) in the central 56x56"),
    Scalar("face_width_m", True, "box width in metres at the face's depth (phones show small faces)"),
)
SCALAR_NAMES = tuple(s.name for s in SCALARS)


def _centre(img: np.ndarray, half: int = 28) -> np.ndarray:
    h, w = img.shape[:2]
    return img[h // 2 - half : h // 2 + half, w // 2 - half : w // 2 + half]


def _border(img: np.ndarray, width: int = 12) -> np.ndarray:
    mask = np.ones(img.shape[:2], bool)
    mask[width:-width, width:-width] = False
    return img[mask]


def crop_scalars(frames: FrameSet, box: FaceBox, truth: FrameTruth) -> dict[str, float]:
    """Every audit scalar of one frame and one detector box."""
    crops = make_crops(frames, box)
    rgb, ir, depth = np.asarray(crops.rgb), np.asarray(crops.ir), np.asarray(crops.depth)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    x0, y0, side = square_region(box)
    h, w = frames.depth.shape
    region = frames.depth[max(0, y0):min(h, y0 + side), max(0, x0):min(w, x0 + side)].astype(np.float64) * frames.depth_scale
    median_m, _ = face_median_depth_m(frames, box)
    valid = region > 0
    far = valid & (region > (median_m + DEPTH_BACK_M if np.isfinite(median_m) else np.inf))
    area = max(region.size, 1)
    centre_depth = _centre(frames_depth_crop_m(frames, box))
    cv = centre_depth[centre_depth > 0] * 1000.0
    ok_d = depth > 0
    switches = (ok_d[:, 1:] != ok_d[:, :-1]).mean() + (ok_d[1:, :] != ok_d[:-1, :]).mean()
    distance = median_m if np.isfinite(median_m) else float("nan")
    return {
        "zero_depth_share": float((depth == 0).mean()),
        "far_share": float(far.sum() / area),
        "hole_share": float((~valid).sum() / area),
        "black_colour_share": float((rgb.max(axis=2) == 0).mean()),
        "colour_mean": float(grey.mean()),
        "colour_saturation": float(hsv[..., 1].mean()),
        "colour_sharpness": float(cv2.Laplacian(_centre(grey, 40), cv2.CV_64F).var()),
        "colour_border_mean": float(_border(grey).mean()),
        "ir_border_mean": float(_border(ir).mean()),
        "ir_centre_std": float(_centre(ir).std()),
        "depth_edge_share": float(switches / 2.0),
        "yaw_deg": float(abs(truth.yaw_deg)),
        "distance_m": float(distance),
        "box_width_px": float(box.width),
        "detector_score": float(box.score),
        "ir_centre_mean": float(_centre(ir).mean()),
        "depth_relief": float(np.percentile(cv, 95) - np.percentile(cv, 5)) if cv.size >= 20 else float("nan"),
        "depth_spread": float(cv.std()) if cv.size >= 20 else float("nan"),
        "face_width_m": float(box.width * distance / frames.intrinsics.depth.fx) if np.isfinite(distance) else float("nan"),
    }


def frames_depth_crop_m(frames: FrameSet, box: FaceBox, size: int = 112) -> np.ndarray:
    """Raw depth (metres, 0 = hole) of the crop's square region, nearest-resized to size x size."""
    x0, y0, side = square_region(box)
    h, w = frames.depth.shape
    out = np.zeros((side, side), np.float32)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = frames.depth[sy0:sy1, sx0:sx1] * frames.depth_scale
    return cv2.resize(out, (size, size), interpolation=cv2.INTER_NEAREST)


def auc(positive: Iterable[float], negative: Iterable[float]) -> float:
    """P(score of a positive > score of a negative) + half the ties (Mann-Whitney); NaNs dropped."""
    pos = np.asarray([v for v in positive if np.isfinite(v)], np.float64)
    neg = np.asarray([v for v in negative if np.isfinite(v)], np.float64)
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    values = np.concatenate([pos, neg])
    order = values.argsort(kind="mergesort")
    ranks = np.empty(values.size, np.float64)
    ranks[order] = np.arange(1, values.size + 1)
    # Average the ranks of ties.
    sorted_vals = values[order]
    i = 0
    while i < values.size:
        j = i
        while j + 1 < values.size and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        if j > i:
            ranks[order[i : j + 1]] = (i + j + 2) / 2.0
        i = j + 1
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


@dataclass
class AuditResult:
    per_scenario: int
    seed: int
    samples: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # scenario -> rows
    detected: dict[str, int] = field(default_factory=dict)
    rendered: dict[str, int] = field(default_factory=dict)

    def table(self) -> dict[str, dict[str, float]]:
        """scalar -> attack scenario -> separation AUC (max(AUC, 1 - AUC))."""
        live = self.samples.get("live", [])
        out: dict[str, dict[str, float]] = {}
        for scalar in SCALARS:
            row = {}
            for attack in AUDIT_ATTACKS:
                a = auc([r[scalar.name] for r in live], [r[scalar.name] for r in self.samples.get(attack, [])])
                row[attack] = a if not np.isfinite(a) else max(a, 1.0 - a)
            out[scalar.name] = row
        return out

    def failures(self) -> list[tuple[str, str, float]]:
        """(scalar, attack, AUC) of every non-physics scalar above MAX_NON_PHYSICS_AUC."""
        table = self.table()
        bad = []
        for scalar in SCALARS:
            if scalar.physics:
                continue
            for attack, value in table[scalar.name].items():
                if np.isfinite(value) and value > MAX_NON_PHYSICS_AUC:
                    bad.append((scalar.name, attack, float(value)))
        return bad

    def to_dict(self) -> dict:
        table = self.table()
        return {
            "per_scenario": self.per_scenario,
            "seed": self.seed,
            "max_non_physics_auc": MAX_NON_PHYSICS_AUC,
            "scalars": [{"name": s.name, "physics": s.physics, "description": s.description,
                         "auc": {k: (None if not np.isfinite(v) else round(v, 4)) for k, v in table[s.name].items()}}
                        for s in SCALARS],
            "detected": dict(self.detected),
            "rendered": dict(self.rendered),
            "failures": [{"scalar": s, "attack": a, "auc": round(v, 4)} for s, a, v in self.failures()],
            "passed": not self.failures(),
        }

    def markdown(self) -> str:
        return report_markdown(self.to_dict())


def report_markdown(report: dict) -> str:
    """The audit table (markdown) of a ``to_dict()`` / ``--json`` report."""
    short = {a: a.replace("cut_", "c_").replace("_curved", "_cv").replace("_flat", "_fl") for a in AUDIT_ATTACKS}
    lines = ["| scalar | physics | " + " | ".join(short[a] for a in AUDIT_ATTACKS) + " | max |",
             "| --- | --- | " + " | ".join("---" for _ in AUDIT_ATTACKS) + " | --- |"]
    for s in report["scalars"]:
        vals = [s["auc"].get(a) for a in AUDIT_ATTACKS]
        finite = [v for v in vals if v is not None]
        cells = ["-" if v is None else f"{v:.2f}" for v in vals]
        top = f"{max(finite):.2f}" if finite else "-"
        lines.append(f"| {s['name']} | {'yes' if s['physics'] else 'no'} | " + " | ".join(cells) + f" | {top} |")
    det = ", ".join(f"{k} {report['detected'].get(k, 0)}/{report['rendered'].get(k, 0)}" for k in ["live", *AUDIT_ATTACKS])
    lines.append("")
    lines.append(f"Faces found by the detector (used / rendered): {det}.")
    return "\n".join(lines)


def _session_job(args: tuple[str, int, int]) -> tuple[str, dict[str, float] | None]:
    scenario, seed, frame = args
    from sdk.sim.simulator import Simulator

    sim = Simulator(scenario, seed)
    frames, truth = sim.render(frame)
    box = _detector_box(frames, truth)
    if box is None:
        return scenario, None
    return scenario, crop_scalars(frames, box, truth)


_DETECTOR = None


def _detector_box(frames: FrameSet, truth: FrameTruth) -> FaceBox | None:
    """The raw BlazeFace box (every stage of the 'auto' mode) that overlaps the truth box best."""
    global _DETECTOR
    if _DETECTOR is None:
        from sdk.detect.blazeface import BlazeFaceDetector

        _DETECTOR = BlazeFaceDetector("auto")
    if truth.face_box is None:
        return None
    best, best_iou = None, 0.3
    for stage in _DETECTOR.detect_stages(frames):
        for det in stage.accepted:
            iou = det.box.iou(truth.face_box)
            if iou > best_iou:
                best, best_iou = det.box, iou
        if best is not None:
            break
    return best


def audit_jobs(per_scenario: int, seed: int = 0) -> list[tuple[str, int, int]]:
    jobs = []
    for k, scenario in enumerate(["live", *AUDIT_ATTACKS]):
        base = AUDIT_SEED_BASE + int(seed) * 100_000 + k * 1_000
        for i in range(per_scenario):
            jobs.append((scenario, base + i, FRAME_CHOICES[i % len(FRAME_CHOICES)]))
    return jobs


def run_audit(per_scenario: int = 40, seed: int = 0, workers: int = 1,
              progress: Callable[[int], None] | None = None) -> AuditResult:
    """Render the audit set and measure it (``workers`` processes)."""
    if per_scenario < 2:
        raise ValueError(f"per_scenario must be >= 2, got {per_scenario}")
    jobs = audit_jobs(per_scenario, seed)
    result = AuditResult(per_scenario=per_scenario, seed=seed)
    if workers > 1:
        import multiprocessing as mp
        import os

        ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()
        with ctx.Pool(workers) as pool:
            outputs = pool.imap_unordered(_session_job, jobs, chunksize=2)
            _collect(result, outputs, progress)
    else:
        _collect(result, map(_session_job, jobs), progress)
    for rows in result.samples.values():
        rows.sort(key=lambda r: tuple(r[n] if math.isfinite(r[n]) else -1.0 for n in SCALAR_NAMES))
    return result


def _collect(result: AuditResult, outputs: Iterable[tuple[str, dict[str, float] | None]],
             progress: Callable[[int], None] | None) -> None:
    for scenario, row in outputs:
        result.rendered[scenario] = result.rendered.get(scenario, 0) + 1
        if row is not None:
            result.detected[scenario] = result.detected.get(scenario, 0) + 1
            result.samples.setdefault(scenario, []).append(row)
        if progress is not None:
            progress(1)
