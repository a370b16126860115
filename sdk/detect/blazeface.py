"""BlazeFace through the mediapipe Tasks FaceDetector, on the colour image of a FrameSet.

mediapipe >= 0.10.30 ships no models, so the two BlazeFace .tflite files from the mediapipe
0.10.21 wheel (Apache-2.0, see models/NOTICE.md) are part of this package and resolved through
importlib.resources, which works from a checkout and from an installed wheel.

Models: "short" (128x128 input, meant for faces filling much of the image), "full" (sparse
full-range, 192x192, finds small faces beyond ~1 m at ~3x the cost) and "auto": short, then
full when short found nothing, then full on a contrast-equalised copy of the image when both
found nothing (dim or back-lit faces). The equalised copy only feeds the detector; crops and
quality gates always see the raw frame.
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from sdk.detect.base import Detection, Detections, Detector, DetectorModelError, DetectorModelNotFoundError
from sdk.errors import DependencyMissingError, InputValidationError
from sdk.types import FaceBox, FrameSet
from sdk.validate import check_finite

MODEL_FILES = {
    "short": "face_detection_short_range.tflite",
    "full": "face_detection_full_range_sparse.tflite",
}
MODES = ("short", "full", "auto", "auto+ir")
#: (model, image) attempts of each mode, cheapest first. Images: "colour"; "lowlight" (colour
#: with CLAHE on its lightness); "ir" (the IR frame as grey RGB). The SR300's IR is lit by its own
#: emitter and lies on the depth grid, so it keeps a face that the aligned colour loses in a dark
#: room or where rs.align blanks colour without depth ("auto+ir"; docs/independent_renderer.md).
STAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "short": (("short", "colour"),),
    "full": (("full", "colour"),),
    "auto": (("short", "colour"), ("full", "colour"), ("full", "lowlight")),
    "auto+ir": (("short", "colour"), ("full", "colour"), ("full", "lowlight"), ("short", "ir"), ("full", "ir")),
}
#: Keypoint order of BlazeFace (mediapipe FaceDetector).
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")


def model_path(model: str) -> Path:
    """Path of a shipped BlazeFace model ("short" or "full"); DetectorModelNotFoundError if absent."""
    if model not in MODEL_FILES:
        raise InputValidationError(f"BlazeFace model must be one of {tuple(MODEL_FILES)}, got {model!r}")
    resource = importlib.resources.files("sdk.detect").joinpath("models", MODEL_FILES[model])
    path = Path(str(resource))
    if not path.is_file():
        raise DetectorModelNotFoundError(path, "the sdk package was installed without its models; reinstall it")
    return path


def _low_light(rgb: np.ndarray) -> np.ndarray:
    """Contrast-limited histogram equalisation of lightness (CLAHE on L of L*a*b*).

    Local equalisation lifts a dim face and a face darker than a bright background alike;
    a global gain would not help the back-lit case.
    """
    import cv2

    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def _stage_name(model: str, image: str) -> str:
    """How Detections.stage names an attempt: "short", "full+lowlight", "short+ir"."""
    return model if image == "colour" else f"{model}+{image}"


class BlazeFaceDetector(Detector):
    """BlazeFace face boxes (+ 6 keypoints, in pixels) on the FrameSet's shared grid.

    ``min_score`` is BlazeFace's own confidence threshold. ``model_paths`` overrides the shipped
    files ({"short": path, "full": path}), e.g. for a newer BlazeFace build.
    """

    def __init__(self, model: str = "short", min_score: float = 0.5, *,
                 min_suppression_threshold: float = 0.3, model_paths: dict[str, str | Path] | None = None) -> None:
        if model not in MODES:
            raise InputValidationError(f"BlazeFaceDetector model must be one of {MODES}, got {model!r}")
        score = check_finite("min_score", min_score)
        if not 0.0 < score < 1.0:
            raise InputValidationError(f"min_score must lie in (0, 1), got {min_score}")
        self.model = model
        self.name = f"blazeface-{model}"
        self.min_score = score
        self._stages = STAGES[model]
        overrides = {k: Path(v) for k, v in (model_paths or {}).items()}
        needed = sorted({m for m, _ in self._stages})
        paths = {}
        for m in needed:  # resolve every file before loading any: a broken install fails at once
            p = overrides.get(m) or model_path(m)
            if not p.is_file():
                raise DetectorModelNotFoundError(p)
            paths[m] = p
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions
            from mediapipe.tasks.python.vision import FaceDetector, FaceDetectorOptions, RunningMode
        except ImportError as error:  # pragma: no cover - mediapipe is a hard dependency
            raise DependencyMissingError(f"mediapipe is needed for BlazeFace: pip install mediapipe==1.2.3 ({error})") from error
        self._mp = mp
        self._tasks: dict[str, Any] = {}
        try:
            for m, p in paths.items():
                options = FaceDetectorOptions(
                    base_options=BaseOptions(model_asset_path=str(p)),
                    running_mode=RunningMode.IMAGE,
                    min_detection_confidence=score,
                    min_suppression_threshold=float(min_suppression_threshold),
                )
                self._tasks[m] = FaceDetector.create_from_options(options)
        except Exception as error:
            self.close()
            raise DetectorModelError(f"mediapipe could not load BlazeFace model {p}: {error}") from error

    # -- Detector ---------------------------------------------------------------------------
    def detect(self, frames: FrameSet) -> Detections:
        last = Detections(stage="", image_size=(frames.shape[1], frames.shape[0]))
        for result in self.detect_stages(frames):
            if result.accepted:
                return result
            last = result
        return Detections(stage="", image_size=last.image_size)

    def detect_stages(self, frames: FrameSet) -> Iterator[Detections]:
        images: dict[str, np.ndarray] = {"colour": np.ascontiguousarray(frames.color)}
        for model, image in self._stages:
            if image not in images:  # made once, and only when an earlier stage found nothing
                images[image] = (_low_light(images["colour"]) if image == "lowlight"
                                 else np.ascontiguousarray(np.repeat(frames.ir[:, :, None], 3, axis=2)))
            yield self._run(model, images[image], stage=_stage_name(model, image))

    def detect_rgb(self, rgb: np.ndarray) -> Detections:
        """Detections on a plain HxWx3 uint8 RGB array (no FrameSet), every colour stage of the
        mode (an RGB array has no IR, so the IR stages are skipped)."""
        rgb = np.ascontiguousarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InputValidationError(f"detect_rgb needs an HxWx3 uint8 array, got {rgb.shape} {rgb.dtype}")
        result = Detections(image_size=(rgb.shape[1], rgb.shape[0]))
        for model, image in self._stages:
            if image == "ir":
                continue
            result = self._run(model, _low_light(rgb) if image == "lowlight" else rgb, stage=_stage_name(model, image))
            if result.accepted:
                return result
        return Detections(image_size=result.image_size)

    def close(self) -> None:
        tasks, self._tasks = getattr(self, "_tasks", {}), {}
        for task in tasks.values():
            task.close()

    def __del__(self) -> None:  # mediapipe's own finaliser fails at interpreter exit; close first
        try:
            self.close()
        except Exception:
            pass

    # -- internals --------------------------------------------------------------------------
    def _run(self, model: str, rgb: np.ndarray, stage: str) -> Detections:
        task = self._tasks.get(model)
        if task is None:
            raise DetectorModelError(f"{self.name} is closed")
        h, w = rgb.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        result = task.detect(image)
        found = []
        for det in result.detections:
            b = det.bounding_box
            if b.width <= 0 or b.height <= 0:
                continue
            score = float(det.categories[0].score) if det.categories else 0.0
            # Keypoints come normalised to the image; FaceBox keeps grid pixels.
            landmarks = tuple((float(k.x) * w, float(k.y) * h) for k in det.keypoints)
            box = FaceBox(float(b.origin_x), float(b.origin_y), float(b.origin_x + b.width),
                          float(b.origin_y + b.height), score, landmarks)
            found.append(Detection(box))
        found.sort(key=lambda d: -d.score)
        return Detections(accepted=tuple(found), stage=stage if found else "", image_size=(w, h))
