"""Quality gates: is this frame fit to be scored for liveness at all?

``assess`` turns a frame, its detections (or a face selection) and the face crops into a frozen
QualityReport. ``passed`` is False whenever any gate fails, and the session never scores such a
frame: a gate failure means "do not score", never "live". Every threshold lives in one frozen
QualityConfig whose defaults are documented next to each field and in docs/detection.md.

Gates on the chosen face: NO_DEPTH, FACE_TOO_CLOSE / FACE_TOO_FAR, IMPLAUSIBLE_FACE_SIZE,
MULTIPLE_FACES, FACE_PARTLY_OUT_OF_FRAME, FACE_OFF_CENTER, TOO_DARK / OVEREXPOSED (colour),
IR_TOO_DARK / IR_OVEREXPOSED, DEPTH_HOLES, MOTION_BLUR, and (when configured) NO_RELIEF and the
spoof cue FLAT_FACE.
Without a confirmed face: NO_FACE, or the reason depth gave for turning a confident detection
down (so a user hears "move closer" rather than "no face"), plus whole-frame darkness / glare hints.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from sdk.detect.depth import DepthCheckConfig, measure_face_depth, size_plausible
from sdk.detect.select import SIMILAR_DEPTH_M, select_face
from sdk.errors import InputValidationError
from sdk.preprocess import make_crops, square_region
from sdk.relief import face_relief_mm
from sdk.types import Detection, Detections, FaceBox, FaceCrops, FaceSelection, FrameSet, QualityReport, Reason
from sdk.validate import check_finite

MULTIPLE_FACES_POLICIES = ("ignore", "similar", "any")


@dataclass(frozen=True)
class QualityConfig:
    """Every threshold of detection confirmation and the quality gates, with its default."""

    #: Depth confirmation of detections (working range, physical face width).
    depth_check: DepthCheckConfig = field(default_factory=DepthCheckConfig)
    # -- distance: the range the liveness model is trained on (the simulator's default range).
    min_distance_m: float = 0.25
    max_distance_m: float = 1.1
    # -- several faces. "similar" (default): fail only when another face is within
    #    similar_depth_m of the chosen one (two people side by side: whose liveness is it?);
    #    a face further back (a poster, a passer-by) is reported but does not fail.
    #    "any": fail on any second face. "ignore": never fail.
    multiple_faces: str = "similar"
    similar_depth_m: float = SIMILAR_DEPTH_M
    # -- detections depth turned down, when no face was confirmed: below rejected_min_score a
    #    rejected box is treated as detector noise (plain NO_FACE: on simulator empty scenes
    #    full-range BlazeFace fires at 0.50-0.62 on far walls); IMPLAUSIBLE_FACE_SIZE (a
    #    spoof cue for the session) needs size_cue_min_score, since BlazeFace fires at ~0.5-0.6
    #    on textures and noise but at > 0.8 on a face picture.
    rejected_min_score: float = 0.7
    size_cue_min_score: float = 0.75
    # -- framing: share of the face box area outside the frame; share of the square crop
    #    region (box x 1.3, sdk.preprocess) outside the frame (zero padding in the crops);
    #    face-centre offset from the frame centre, as a fraction of the half width / height.
    max_box_outside_fraction: float = 0.05
    #: mediapipe clips boxes to the image, so a box within this many pixels of the frame
    #: border is taken as a face cut by the border.
    border_margin_px: float = 2.0
    max_region_outside_fraction: float = 0.25
    max_center_offset: float = 0.7
    # -- colour exposure over the inner face box: mean grey level (0-255) and share of
    #    saturated pixels (>= 250). Simulator live faces: grey mean 31-157 (1st pct 43).
    min_brightness: float = 30.0
    max_brightness: float = 220.0
    max_saturated_fraction: float = 0.25
    # -- IR (the SR300's own emitter lights the face, falling off as 1/d^2): same measures on
    #    the IR image. Simulator live faces: mean 10-225; near faces (0.3 m) saturate up to
    #    half the face, as a real SR300 does, so only a mostly saturated face fails.
    min_ir_brightness: float = 8.0
    max_ir_brightness: float = 235.0
    max_ir_saturated_fraction: float = 0.6
    # -- depth holes: share of zero-depth pixels in the inner face box.
    max_depth_hole_fraction: float = 0.3
    # -- motion blur: variance of the Laplacian of the grey colour crop at 56x56 (scale
    #    normalised by the crop, noise averaged by the halving) over the crop's grey variance,
    #    so dim and bright faces compare. Sharp simulator faces measure >= 0.3 (noise adds to
    #    it), the real astronaut photo 0.18-0.44 (0.18 for a 62 px face whose crop is upscaled);
    #    a Gaussian blur of sigma 4 px gives 0.03, a 21 px motion smear 0.09. It catches strong
    #    blur only; mild smear passes (simulator faces smeared by 15 px: median 0.18).
    min_sharpness: float = 0.12
    #: Without a face, whole-frame darkness / glare hints need at least this share of the
    #: frame to lie in the depth working range (else there is nothing to judge).
    min_hint_fraction: float = 0.05
    #: Inner part of the face box (per axis) that exposure and hole measures look at.
    inner_box: float = 0.7
    # -- relief no sheet has (sdk.relief.face_relief_mm, mm): what is left of the face box's depth
    #    once the best flat or bent sheet (a developable surface: paper and screens bend but do
    #    not stretch) is subtracted. Simulator calibration frames: live faces 1st percentile 5.0 mm,
    #    prints on the print median 1.3 (docs/decisions.md, candidate O). 0 (the default): the gate is
    #    off and nothing is measured; a bundle calibrated with it records it. When on, a frame
    #    whose relief cannot be measured (too little face depth) fails: it shows no face shape.
    min_relief_mm: float = 0.0
    # -- a face measured flat is an attack, not a bad frame: a frame whose relief was measured
    #    (enough face depth) and lies below this many mm also carries FLAT_FACE, a spoof cue
    #    (sdk.fusion.SPOOF_CUES), so a flat print ends a check SPOOF and counts toward the
    #    lock-out instead of timing out UNCERTAIN. Relief that cannot be measured (missing depth)
    #    is never a cue. 0 (the default): off; when on it needs the relief gate, at or above it.
    flat_face_mm: float = 0.0

    def __post_init__(self) -> None:
        if self.multiple_faces not in MULTIPLE_FACES_POLICIES:
            raise InputValidationError(f"QualityConfig.multiple_faces must be one of {MULTIPLE_FACES_POLICIES}")
        for name, value in vars(self).items():
            if isinstance(value, float):
                check_finite(f"QualityConfig.{name}", value)
        if not 0.0 < self.min_distance_m < self.max_distance_m:
            raise InputValidationError("QualityConfig needs 0 < min_distance_m < max_distance_m")
        if not 0.0 < self.inner_box <= 1.0:
            raise InputValidationError("QualityConfig.inner_box must lie in (0, 1]")
        if self.min_relief_mm < 0.0:
            raise InputValidationError("QualityConfig.min_relief_mm must be >= 0 (0: the relief gate is off)")
        if self.flat_face_mm < 0.0:
            raise InputValidationError("QualityConfig.flat_face_mm must be >= 0 (0: the flat-face cue is off)")
        if self.flat_face_mm > 0.0 and not self.flat_face_mm <= self.min_relief_mm:
            # a frame measured flat must also fail the relief gate, or it could be scored as well
            raise InputValidationError("QualityConfig.flat_face_mm needs the relief gate on and at or above it "
                                       f"(min_relief_mm {self.min_relief_mm} >= flat_face_mm {self.flat_face_mm})")


@dataclass(frozen=True)
class Gate:
    """One QualityConfig limit: the measurement (a key of QualityReport.measurements) it bounds,
    and whether frames fail above it (a ceiling) or below it (a floor)."""

    field: str
    measurement: str
    ceiling: bool


#: Every numeric gate of `assess` that bounds a measurement of a face frame. Calibration reports
#: how far its scored frames reached along each (calibration/envelope.py) and the session holds
#: frames to that reach (sdk/coverage.py).
def _exposure_gates(prefix: str) -> tuple[Gate, ...]:
    """The three exposure limits `_exposure` applies to the colour ("") or IR ("ir_") image."""
    return (Gate(f"min_{prefix}brightness", f"{prefix}brightness", False),
            Gate(f"max_{prefix}brightness", f"{prefix}brightness", True),
            Gate(f"max_{prefix}saturated_fraction", f"{prefix}saturated_fraction", True))


GATES: tuple[Gate, ...] = (
    Gate("min_distance_m", "face_depth_m", False),
    Gate("max_distance_m", "face_depth_m", True),
    Gate("max_box_outside_fraction", "box_outside_fraction", True),
    Gate("max_region_outside_fraction", "region_outside_fraction", True),
    Gate("max_center_offset", "center_offset", True),
    *_exposure_gates(""),
    *_exposure_gates("ir_"),
    Gate("max_depth_hole_fraction", "depth_hole_fraction", True),
    Gate("min_sharpness", "sharpness", False),
    Gate("min_relief_mm", "relief_mm", False),
)


def _inner(box: FaceBox, share: float, width: int, height: int) -> tuple[slice, slice] | None:
    cx, cy = box.center
    hw, hh = box.width * share / 2.0, box.height * share / 2.0
    x0, x1 = max(0, int(round(cx - hw))), min(width, int(round(cx + hw)))
    y0, y1 = max(0, int(round(cy - hh))), min(height, int(round(cy + hh)))
    if x1 <= x0 or y1 <= y0:
        return None
    return slice(y0, y1), slice(x0, x1)


def _outside_fraction(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> float:
    area = (x1 - x0) * (y1 - y0)
    ix = max(0.0, min(x1, width) - max(x0, 0.0))
    iy = max(0.0, min(y1, height) - max(y0, 0.0))
    return 1.0 - ix * iy / area if area > 0 else 1.0


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian over the grey variance, at half the crop's resolution.

    The crop is already scale-normalised (112 px per face); halving it averages sensor noise
    away, which otherwise inflates the Laplacian of dim, noisy faces more than blur lowers it;
    dividing by the grey variance makes dim and bright faces comparable.
    """
    half = (max(1, grey.shape[1] // 2), max(1, grey.shape[0] // 2))
    g = cv2.resize(grey, half, interpolation=cv2.INTER_AREA).astype(np.float32)
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=1)
    var = float(g.var())
    return float(lap.var()) / var if var > 1e-6 else 0.0


def _exposure(values: np.ndarray, low: float, high: float, saturated_max: float,
              dark: Reason, bright: Reason, prefix: str, out: dict[str, float]) -> list[Reason]:
    mean = float(values.mean()) if values.size else 0.0
    saturated = float(np.count_nonzero(values >= 250)) / values.size if values.size else 0.0
    out[f"{prefix}brightness"] = mean
    out[f"{prefix}saturated_fraction"] = saturated
    reasons = []
    if mean < low:
        reasons.append(dark)
    if mean > high or saturated > saturated_max:
        reasons.append(bright)
    return reasons


def _no_face(frames: FrameSet, selection: FaceSelection, config: QualityConfig, out: dict[str, float]) -> list[Reason]:
    """Reasons for a frame without a confirmed face."""
    reasons: list[Reason] = []
    best: tuple[float, Reason] | None = None
    for det in selection.rejected:
        reason = _reportable(det, config)
        if reason is not None and (best is None or det.score > best[0]):
            best = (det.score, reason)
    reasons.append(best[1] if best is not None else Reason.NO_FACE)
    out["rejected_detections"] = float(len(selection.rejected))
    # Whole-frame hints, judged only where something lies in the working range: colour is
    # zeroed where depth has no value (rs.align) and nothing beyond range reflects the IR
    # emitter, so an empty room would otherwise read as "too dark". Subsampled; percentiles
    # because they only need to see that nearly everything is dark or blown out.
    depth = frames.depth[::4, ::4]
    lo = config.depth_check.min_depth_m / frames.depth_scale
    hi = config.depth_check.max_depth_m / frames.depth_scale
    near = (depth >= lo) & (depth <= hi)
    out["frame_in_range_fraction"] = float(np.count_nonzero(near)) / near.size
    if out["frame_in_range_fraction"] < config.min_hint_fraction:
        return reasons
    mask = near.astype(np.uint8)
    grey_p50, grey_p99 = _percentiles(_grey(frames.color[::4, ::4]), mask)
    ir_p50, ir_p99 = _percentiles(np.ascontiguousarray(frames.ir[::4, ::4]), mask)
    out.update(frame_brightness_p99=grey_p99, frame_ir_p99=ir_p99)
    if grey_p99 < config.min_brightness:
        reasons.append(Reason.TOO_DARK)
    if grey_p50 >= 250:
        reasons.append(Reason.OVEREXPOSED)
    if ir_p99 < config.min_ir_brightness:
        reasons.append(Reason.IR_TOO_DARK)
    if ir_p50 >= 250:
        reasons.append(Reason.IR_OVEREXPOSED)
    return reasons


def _percentiles(image: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """(50th, 99th) percentile of a uint8 image (where mask != 0) from its histogram."""
    hist = cv2.calcHist([image], [0], mask, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist) / max(float(hist.sum()), 1.0)
    return float(np.searchsorted(cdf, 0.5)), float(np.searchsorted(cdf, 0.99))


def _reportable(det: Detection, config: QualityConfig) -> Reason | None:
    """The reason a rejected detection is reported under, or None if it looks like noise."""
    if det.rejection is None or det.score < config.rejected_min_score:
        return None
    if det.rejection in (Reason.FACE_TOO_FAR, Reason.FACE_TOO_CLOSE):
        # Out of range, but with a person-sized face at that depth: a real face, badly placed.
        return det.rejection if det.depth is not None and size_plausible(det.depth, config.depth_check) else None
    if det.rejection is Reason.IMPLAUSIBLE_FACE_SIZE:
        return det.rejection if det.score >= config.size_cue_min_score else None
    return det.rejection


def assess(frames: FrameSet, detections: Detections | FaceSelection, crops: FaceCrops | None = None,
           config: QualityConfig | None = None) -> QualityReport:
    """Run every gate. ``detections`` may be a Detections (the face is chosen with
    sdk.detect.select's policy) or a FaceSelection. ``crops`` of the chosen face are made with
    sdk.preprocess.make_crops when not given."""
    config = config or QualityConfig()
    selection = detections if isinstance(detections, FaceSelection) else select_face(frames, detections, config.similar_depth_m)
    out: dict[str, float] = {"faces": float(selection.face_count)}
    notes: list[Reason] = []
    primary = selection.primary
    if primary is None:
        return QualityReport(False, tuple(_no_face(frames, selection, config, out)), out)

    reasons: list[Reason] = []
    box = primary.box
    height, width = frames.shape
    # -- depth, distance, physical size
    depth = primary.depth if primary.depth is not None else measure_face_depth(frames, box)
    out.update(face_depth_m=depth.depth_m, face_width_m=depth.width_m, depth_valid_fraction=depth.valid_fraction,
               detector_score=box.score)
    if not depth.has_depth or depth.valid_fraction < config.depth_check.min_valid_fraction:
        reasons.append(Reason.NO_DEPTH)
    else:
        if depth.depth_m < config.min_distance_m:
            reasons.append(Reason.FACE_TOO_CLOSE)
        elif depth.depth_m > config.max_distance_m:
            reasons.append(Reason.FACE_TOO_FAR)
        if not size_plausible(depth, config.depth_check):
            reasons.append(Reason.IMPLAUSIBLE_FACE_SIZE)
    # -- several faces
    out["similar_faces"] = float(selection.similar_others)
    if selection.others:
        fails = config.multiple_faces == "any" or (config.multiple_faces == "similar" and selection.similar_others > 0)
        (reasons if fails else notes).append(Reason.MULTIPLE_FACES)
    # -- framing
    out["box_outside_fraction"] = _outside_fraction(*box.as_tuple(), width, height)
    rx0, ry0, side = square_region(box)
    out["region_outside_fraction"] = _outside_fraction(rx0, ry0, rx0 + side, ry0 + side, width, height)
    m = config.border_margin_px
    touches = box.x0 <= m or box.y0 <= m or box.x1 >= width - m or box.y1 >= height - m
    out["touches_border"] = float(touches)
    if (touches or out["box_outside_fraction"] > config.max_box_outside_fraction
            or out["region_outside_fraction"] > config.max_region_outside_fraction):
        reasons.append(Reason.FACE_PARTLY_OUT_OF_FRAME)
    cx, cy = box.center
    out["center_offset"] = max(abs(cx - width / 2.0) / (width / 2.0), abs(cy - height / 2.0) / (height / 2.0))
    if out["center_offset"] > config.max_center_offset:
        reasons.append(Reason.FACE_OFF_CENTER)
    # -- exposure and holes over the inner face box of the frame
    inner = _inner(box, config.inner_box, width, height)
    if inner is None:  # the box lies outside the frame altogether
        reasons.append(Reason.FACE_PARTLY_OUT_OF_FRAME)
    else:
        reasons += _exposure(_grey(frames.color[inner]), config.min_brightness, config.max_brightness,
                             config.max_saturated_fraction, Reason.TOO_DARK, Reason.OVEREXPOSED, "", out)
        reasons += _exposure(frames.ir[inner], config.min_ir_brightness, config.max_ir_brightness,
                             config.max_ir_saturated_fraction, Reason.IR_TOO_DARK, Reason.IR_OVEREXPOSED, "ir_", out)
        window = frames.depth[inner]
        out["depth_hole_fraction"] = float(np.count_nonzero(window == 0)) / window.size
        if out["depth_hole_fraction"] > config.max_depth_hole_fraction:
            reasons.append(Reason.DEPTH_HOLES)
    # -- face shape: relief that no flat or bent sheet has (measured only when the gate is on)
    if config.min_relief_mm > 0.0:
        out["relief_mm"] = face_relief_mm(frames.depth, frames.depth_scale, box.as_tuple(),
                                          depth.depth_m if depth.has_depth else float("nan"))
        if not out["relief_mm"] >= config.min_relief_mm:  # nan (not measurable) fails too
            reasons.append(Reason.NO_RELIEF)
        if out["relief_mm"] < config.flat_face_mm:  # measured and flat; nan compares False
            reasons.append(Reason.FLAT_FACE)
    # -- motion blur on the scale-normalised colour crop
    crops = crops if crops is not None else make_crops(frames, box)
    out["sharpness"] = sharpness(_grey(crops.rgb))
    if out["sharpness"] < config.min_sharpness:
        reasons.append(Reason.MOTION_BLUR)
    return QualityReport(not reasons, tuple(reasons), out, tuple(notes))
