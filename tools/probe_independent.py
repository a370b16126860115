"""Diagnosis only: which crop transform moves a model's score on the independent renderer's faces.

Renders frame 0 (or --frames) of chosen sessions (live by default, --kind for attacks) of `calibration/independent`, runs them through
the device's `FacePipeline` (BlazeFace, depth confirmation, crops; gates reported, not enforced) and
scores each crop with a bundle (ONNX Runtime, flip TTA) as it is and after each probe transform.
Nothing here trains or calibrates a model: the renderer stays an evaluation instrument.

    python tools/probe_independent.py --seeds 9100002 9100011 --reference 9100004 [--model BUNDLE]

Transforms: colour blur (Gaussian sigma 1 and 2 px on the 112 crop), colour at half resolution,
colour unsharp-masked, colour with Gaussian grain (sigma 6 levels), colour to grey, depth without relief (every valid pixel
at the crop's median), and the crop of each modality swapped in from the reference
session (an accepted live session of another person).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.independent.evaluate import PEOPLE, SEED_BASE  # noqa: E402
from calibration.independent.scene import Scene  # noqa: E402
from sdk.engine import create_engine  # noqa: E402
from sdk.engine.bundle import ModelBundle  # noqa: E402
from sdk.pipeline import FacePipeline  # noqa: E402
from sdk.preprocess import make_crops  # noqa: E402
from sdk.types import FaceCrops  # noqa: E402


def _person_of(seed: int) -> str:
    # eval-independent's plan: session i of run seed r is SEED_BASE + 1000 r + i, person i mod 3
    return PEOPLE[((seed - SEED_BASE) % 1000) % len(PEOPLE)]


def _blur(sigma: float) -> Callable[[FaceCrops], FaceCrops]:
    return lambda c: replace(c, rgb=cv2.GaussianBlur(c.rgb, (0, 0), sigma))


def _half_resolution(c: FaceCrops) -> FaceCrops:
    small = cv2.resize(c.rgb, (56, 56), interpolation=cv2.INTER_AREA)
    return replace(c, rgb=cv2.resize(small, (112, 112), interpolation=cv2.INTER_LINEAR))


def _unsharp(c: FaceCrops) -> FaceCrops:
    soft = cv2.GaussianBlur(c.rgb, (0, 0), 1.5).astype(np.float32)
    sharp = np.clip(c.rgb.astype(np.float32) * 2.0 - soft, 0, 255)
    return replace(c, rgb=sharp.astype(np.uint8))


def _noise(c: FaceCrops) -> FaceCrops:
    # fixed seed: the probe is a pure function of the crops
    grain = np.random.default_rng(0).normal(0.0, 6.0, c.rgb.shape)
    return replace(c, rgb=np.clip(c.rgb.astype(np.float32) + grain, 0, 255).astype(np.uint8))


def _flat_depth(c: FaceCrops) -> FaceCrops:
    # no relief: every valid depth pixel at the crop's median (holes stay holes)
    valid = c.depth > 0
    flat = np.where(valid, np.uint8(np.median(c.depth[valid])) if valid.any() else 0, 0).astype(np.uint8)
    return replace(c, depth=flat)


def _grey(c: FaceCrops) -> FaceCrops:
    grey = cv2.cvtColor(c.rgb, cv2.COLOR_RGB2GRAY)
    return replace(c, rgb=np.repeat(grey[:, :, None], 3, axis=2))


TRANSFORMS: dict[str, Callable[[FaceCrops], FaceCrops]] = {
    "blur1": _blur(1.0), "blur2": _blur(2.0), "half_res": _half_resolution, "unsharp": _unsharp, "noise6": _noise,
    "grey": _grey, "flat_depth": _flat_depth,
}


def session_crops(seed: int, frames: int, pipeline: FacePipeline, kind: str = "live") -> list[tuple[FaceCrops, float, str]]:
    """(crops, face depth m, failed gates) per rendered frame with a face."""
    scene = Scene(kind, _person_of(seed), seed)
    out = []
    for i in range(frames):
        frameset = scene.render(i)
        analysis = pipeline.analyze(frameset)
        if analysis.box is None:
            continue
        crops = make_crops(frameset, analysis.box)
        failed = ",".join(r.name for r in analysis.quality.reasons) if not analysis.quality.passed else ""
        out.append((crops, crops.face_depth_m, failed))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="live sessions to probe (9100000+)")
    parser.add_argument("--reference", type=int, required=True, help="an accepted live session to swap crops from")
    parser.add_argument("--model", default=None, help="bundle folder (default: the shipped model)")
    parser.add_argument("--frames", type=int, default=1)
    parser.add_argument("--kind", default="live", help="presentation kind of --seeds (live, print_flat, print_curved, ...)")
    args = parser.parse_args(argv)

    bundle = ModelBundle.load(args.model)
    engine = create_engine("onnxruntime", bundle)
    pipeline = FacePipeline()
    ref = session_crops(args.reference, 1, pipeline)
    if not ref:
        raise SystemExit(f"no face in reference session {args.reference}")
    ref_crops = ref[0][0]
    print(f"model {bundle.version}; reference {args.reference} ({_person_of(args.reference)}) "
          f"score {engine.score_crops([ref_crops])[0]:.3f} at {ref_crops.face_depth_m:.2f} m")
    swaps = {f"ref_{m}": (lambda c, m=m: replace(c, **{m: getattr(ref_crops, m)})) for m in ("rgb", "ir", "depth")}
    names = ["as_is", *TRANSFORMS, *swaps]
    print("seed     person     z_m   gates            " + " ".join(f"{n:>9}" for n in names))
    for seed in args.seeds:
        for crops, depth_m, failed in session_crops(seed, args.frames, pipeline, args.kind):
            variants = [crops] + [t(crops) for t in TRANSFORMS.values()] + [s(crops) for s in swaps.values()]
            scores = engine.score_crops(variants)
            print(f"{seed} {_person_of(seed):10} {depth_m:4.2f}  {failed or '-':16} " + " ".join(f"{s:9.3f}" for s in scores))
    pipeline.close()
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
