"""Counterfactual checks of a liveness model: change one thing that should not matter, count flips.

Crops come from the simulator's scenes through the device's own crop path (sdk.preprocess.make_crops
on the rendered FrameSet and its face box); the simulator is only read here, to make inputs. Each
transform changes a sample's FrameSet or crops in one way a real camera or scene could, and the
model's decision (score >= the operating point's threshold) should not change:

* ``outline``      attack crops get a live person's head outline: everything outside a live crop's head
                   mask is replaced by that live crop's background (all three modalities);
* ``fill_background`` live crops get a flat background: outside the head mask colour and IR take the
                   background's median, depth is empty (nothing in range);
* ``ir_gain_0.7`` / ``ir_gain_1.3`` the IR image scaled (another emitter power / exposure);
* ``depth_noise_x2`` twice the depth sensor's noise (extra Gaussian noise of sqrt(3) sigma(z));
* ``align_holes_10`` 10 % of the pixels lose depth and colour, mostly where the NIR return is weak
                   (sdk.align_holes), as rs.align leaves a far or dark-haired face: the same holes
                   for live faces and attacks.
* ``colour_sharpen`` / ``colour_blur`` the colour crop unsharp-masked (sigma 1.5 px, amount 1: an
                   image processor's sharpening) or blurred (Gaussian sigma 1 px: focus, motion)
                   with sdk.colour_focus; holes stay black. A camera setting, not a liveness cue.

One check runs the other way (``relief_check``): live crops whose depth is made a relief-free
sheet at the face's depth (sdk.relief: outline and holes kept) show a print's shape with a live
face's colour and NIR, and should be rejected: at most MAX_RELIEF_KEEP of the accepted ones may
stay accepted. A model that keeps them accepts colour and NIR, not a face.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import cv2
import numpy as np

from sdk.align_holes import low_return_hole_mask, punch_holes
from sdk.colour_focus import refocus
from sdk.preprocess import make_crops
from sdk.relief import flatten_relief
from sdk.types import FaceBox, FaceCrops, FrameSet

LIVE_SCENARIO = "live"
ATTACK_SCENARIOS = ("cut_eyes_flat", "cut_eyes_curved", "cut_eyes_nose_flat", "cut_eyes_nose_curved",
                    "cut_eyes_nose_mouth_flat", "cut_eyes_nose_mouth_curved", "print_flat", "print_curved",
                    "screen_replay", "mask_3d")
TRANSFORMS = ("outline", "fill_background", "ir_gain_0.7", "ir_gain_1.3", "depth_noise_x2", "align_holes_10",
              "colour_sharpen", "colour_blur")
#: Share of the pixels the align_holes transform empties.
ALIGN_HOLES_FRACTION = 0.10
#: (sigma px, amount) of sdk.colour_focus.refocus for the two colour-focus transforms.
COLOUR_FOCUS = {"colour_sharpen": (1.5, 1.0), "colour_blur": (1.0, -1.0)}
#: Largest share of crops whose decision a transform may change.
MAX_FLIP_RATE = 0.02
#: Largest share of accepted live crops that may stay accepted once their depth has no relief.
MAX_RELIEF_KEEP = 0.02
SEED_BASE = 7_300_000  # subjects none of the simulator's dataset splits use


@dataclass(frozen=True)
class Sample:
    """A rendered frame, its face box and the device's crops of it."""

    scenario: str
    seed: int
    frames: FrameSet
    box: FaceBox
    crops: FaceCrops

    @property
    def live(self) -> bool:
        return self.scenario == LIVE_SCENARIO


def make_samples(live_subjects: int = 50, frames_per_live: int = 2, attack_subjects: int = 12,
                 seed: int = 0) -> list[Sample]:
    """Live crops (subjects x frames) and attack crops (attack_subjects per attack scenario)."""
    from sdk.sim.simulator import Simulator

    jobs = [(LIVE_SCENARIO, s, frames_per_live) for s in range(live_subjects)]
    jobs += [(name, s, 1) for name in ATTACK_SCENARIOS for s in range(attack_subjects)]
    samples = []
    for scenario, subject, n in jobs:
        sim_seed = SEED_BASE + 100_000 * int(seed) + subject
        sim = Simulator(scenario, sim_seed, distance_range_m=(0.3, 0.9))
        for k in range(n):
            frames, truth = sim.render(k * 11)
            if truth.face_box is None:
                continue
            samples.append(Sample(scenario, sim_seed, frames, truth.face_box, make_crops(frames, truth.face_box)))
    return samples


# ---- the head mask ---------------------------------------------------------------------------
def head_mask(crops: FaceCrops) -> np.ndarray:
    """Where the person is in a crop: depth within the normalisation window, holes closed, filled.

    The device's depth crop maps everything more than 10 cm behind the face to 0, so its non-zero
    part is the head (and shoulders in range); closing and hole filling remove sensor dropouts.
    """
    near = (crops.depth > 0).astype(np.uint8)
    near = cv2.morphologyEx(near, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(near, connectivity=8)
    if count <= 1:
        return np.zeros(near.shape, bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = (labels == largest).astype(np.uint8)
    # fill enclosed holes (eyes, brows where depth dropped out)
    flood = mask.copy()
    border = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), np.uint8)
    cv2.floodFill(flood, border, (0, 0), 1)
    return (mask | (1 - flood)).astype(bool)


def _with(crops: FaceCrops, rgb: np.ndarray, ir: np.ndarray, depth: np.ndarray) -> FaceCrops:
    return replace(crops, rgb=np.ascontiguousarray(rgb), ir=np.ascontiguousarray(ir), depth=np.ascontiguousarray(depth))


def paste_outline(attack: FaceCrops, live: FaceCrops) -> FaceCrops:
    """The attack's crops inside a live crop's head mask, the live crop everywhere else."""
    inside = head_mask(live)
    rgb = np.where(inside[..., None], attack.rgb, live.rgb)
    return _with(attack, rgb, np.where(inside, attack.ir, live.ir), np.where(inside, attack.depth, live.depth))


def fill_background(live: FaceCrops) -> FaceCrops:
    """Outside the head: flat colour and IR (the background's median), no depth."""
    inside = head_mask(live)
    outside = ~inside
    if not outside.any():
        return live
    rgb = live.rgb.copy()
    rgb[outside] = np.median(live.rgb[outside], axis=0).astype(np.uint8)
    ir = live.ir.copy()
    ir[outside] = np.uint8(np.median(live.ir[outside]))
    depth = live.depth.copy()
    depth[outside] = 0
    return _with(live, rgb, ir, depth)


def align_holes(crops: FaceCrops, fraction: float, rng: np.random.Generator) -> FaceCrops:
    """Depth holes with black colour on ``fraction`` of the pixels (sdk.align_holes); IR untouched."""
    hole = low_return_hole_mask(crops.ir, fraction, rng)
    rgb, depth = punch_holes(crops.rgb, crops.depth, hole)
    return _with(crops, rgb, crops.ir, depth)


def _frames_with(frames: FrameSet, **arrays: np.ndarray) -> FrameSet:
    return FrameSet(color=arrays.get("color", frames.color), ir=arrays.get("ir", frames.ir),
                    depth=arrays.get("depth", frames.depth), depth_scale=frames.depth_scale,
                    intrinsics=frames.intrinsics, timestamp_ms=frames.timestamp_ms,
                    frame_number=frames.frame_number, device=frames.device, grid=frames.grid)


def ir_gain(frames: FrameSet, gain: float) -> FrameSet:
    """The IR image times gain (rounded, clipped to 8 bits as the sensor would)."""
    ir = np.clip(np.round(frames.ir.astype(np.float32) * np.float32(gain)), 0, 255).astype(np.uint8)
    return _frames_with(frames, ir=ir)


def depth_noise(frames: FrameSet, factor: float, rng: np.random.Generator) -> FrameSet:
    """Depth noise times factor: extra Gaussian noise of sqrt(factor^2 - 1) sigma(z) on valid pixels.

    sigma(z) is the simulator's own depth-noise model (sdk.sim.sensor.depth_sigma_m), so the total
    noise is ``factor`` times what the sensor model gave. Holes stay holes.
    """
    from sdk.sim.sensor import depth_sigma_m

    valid = frames.depth > 0
    z = frames.depth.astype(np.float64) * frames.depth_scale
    extra = rng.standard_normal(z.shape) * np.sqrt(max(factor * factor - 1.0, 0.0)) * depth_sigma_m(z)
    units = np.clip(np.round((z + extra) / frames.depth_scale), 1, 65535).astype(np.uint16)
    return _frames_with(frames, depth=np.where(valid, units, 0).astype(np.uint16))


# ---- running them ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FlipResult:
    transform: str
    applies_to: str  # "live", "attack" or "all"
    n: int
    flips: int
    live_to_not: int  # live decisions that became not-live
    attack_to_live: int  # attack decisions that became live
    base_accepted: int  # crops (of those it applies to) accepted as live before the transform
    by_scenario: tuple[tuple[str, int, int], ...] = ()  # (scenario, flips, n)

    @property
    def rate(self) -> float:
        return self.flips / self.n if self.n else 0.0

    def to_dict(self) -> dict:
        return {"transform": self.transform, "applies_to": self.applies_to, "n": self.n, "flips": self.flips,
                "rate": self.rate, "live_to_not": self.live_to_not, "attack_to_live": self.attack_to_live,
                "base_accepted": self.base_accepted,
                "by_scenario": {name: {"flips": f, "n": n} for name, f, n in self.by_scenario}}


def transformed_crops(name: str, samples: list[Sample], seed: int = 0) -> tuple[list[int], list[FaceCrops]]:
    """(indices into samples, new crops) of one transform."""
    rng = np.random.default_rng([seed, TRANSFORMS.index(name)])
    live = [i for i, s in enumerate(samples) if s.live]
    attack = [i for i, s in enumerate(samples) if not s.live]
    if name == "outline":
        if not live:
            return [], []
        donors = rng.integers(0, len(live), len(attack))
        return attack, [paste_outline(samples[i].crops, samples[live[d]].crops) for i, d in zip(attack, donors)]
    if name == "fill_background":
        return live, [fill_background(samples[i].crops) for i in live]
    everyone = list(range(len(samples)))
    if name.startswith("ir_gain_"):
        gain = float(name.rsplit("_", 1)[1])
        return everyone, [make_crops(ir_gain(s.frames, gain), s.box) for s in samples]
    if name == "depth_noise_x2":
        return everyone, [make_crops(depth_noise(s.frames, 2.0, rng), s.box) for s in samples]
    if name == "align_holes_10":
        return everyone, [align_holes(s.crops, ALIGN_HOLES_FRACTION, rng) for s in samples]
    if name in COLOUR_FOCUS:
        sigma, amount = COLOUR_FOCUS[name]
        return everyone, [replace(s.crops, rgb=refocus(s.crops.rgb, sigma, amount)) for s in samples]
    raise ValueError(f"unknown transform {name!r}; known: {', '.join(TRANSFORMS)}")


def flip_rates(samples: list[Sample], score: Callable[[list[FaceCrops]], np.ndarray], threshold: float,
               transforms: tuple[str, ...] = TRANSFORMS, seed: int = 0) -> tuple[np.ndarray, list[FlipResult]]:
    """(base scores, one FlipResult per transform) for a scorer of crop batches."""
    base = np.asarray(score([s.crops for s in samples]), dtype=np.float64)
    accepted = base >= threshold
    results = []
    for name in transforms:
        indices, crops = transformed_crops(name, samples, seed)
        if not indices:
            results.append(FlipResult(name, "none", 0, 0, 0, 0, 0))
            continue
        after = np.asarray(score(crops), dtype=np.float64) >= threshold
        before = accepted[indices]
        live = np.array([samples[i].live for i in indices])
        changed = before != after
        applies = "attack" if name == "outline" else "live" if name == "fill_background" else "all"
        names = [samples[i].scenario for i in indices]
        by = tuple((sc, int(sum(c for c, n in zip(changed, names) if n == sc)), names.count(sc))
                   for sc in dict.fromkeys(names))
        results.append(FlipResult(name, applies, len(indices), int(changed.sum()),
                                  int((changed & live & before).sum()), int((changed & ~live & after).sum()),
                                  int(before.sum()), by))
    return base, results


def relief_check(samples: list[Sample], score: Callable[[list[FaceCrops]], np.ndarray], threshold: float,
                 base: np.ndarray | None = None) -> dict:
    """How many accepted live crops stay accepted with their depth flattened (should be none).

    ``base``: the samples' untouched scores when the caller has them already (flip_rates'), so
    they are not computed twice."""
    live = [s for s in samples if s.live]
    if not live:
        return {"accepted_live": 0, "still_accepted": 0, "rate": 0.0, "max_rate": MAX_RELIEF_KEEP}
    if base is None:
        before = np.asarray(score([s.crops for s in live]), dtype=np.float64) >= threshold
    else:
        before = np.asarray(base, dtype=np.float64)[[s.live for s in samples]] >= threshold
    flat = [replace(s.crops, depth=flatten_relief(s.crops.depth)) for s in live]
    after = np.asarray(score(flat), dtype=np.float64) >= threshold
    kept = int((before & after).sum())
    accepted = int(before.sum())
    return {"accepted_live": accepted, "still_accepted": kept, "rate": kept / accepted if accepted else 0.0,
            "max_rate": MAX_RELIEF_KEEP}


def run(model: str | None = None, live_subjects: int = 50, frames_per_live: int = 2, attack_subjects: int = 12,
        seed: int = 0, operating_point: str | None = None) -> dict:
    """Everything the CLI prints: the model, the threshold, crop counts and the flip rates."""
    from sdk.engine import ModelBundle, create_engine

    bundle = ModelBundle.load(model)
    point = bundle.operating_point(operating_point)
    samples = make_samples(live_subjects, frames_per_live, attack_subjects, seed)
    engine = create_engine("onnxruntime", bundle.model_path)
    try:
        def score(crops: list[FaceCrops]) -> np.ndarray:
            return np.concatenate([engine.score_crops(crops[i:i + 64], tta=True) for i in range(0, len(crops), 64)])

        base, results = flip_rates(samples, score, point.threshold, seed=seed)
        relief = relief_check(samples, score, point.threshold, base=base)
    finally:
        engine.close()
    live = np.array([s.live for s in samples])
    return {
        "model": bundle.name, "model_version": bundle.version, "operating_point": point.name,
        "threshold": point.threshold, "seed": seed, "live_crops": int(live.sum()), "attack_crops": int((~live).sum()),
        "base_bpcer": float((base[live] < point.threshold).mean()) if live.any() else None,
        "base_apcer": float((base[~live] >= point.threshold).mean()) if (~live).any() else None,
        "max_flip_rate": MAX_FLIP_RATE,
        "transforms": [r.to_dict() for r in results],
        "relief_check": relief,
    }
