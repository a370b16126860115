"""Frozen result and frame types shared by every stage of the data flow.

Every value that crosses a package boundary (capture -> detect -> preprocess -> engine ->
session) is one of these dataclasses. They validate at construction, so a stage that receives
one can trust its shapes, dtypes and units without checking again.
"""
from __future__ import annotations

import enum
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

from sdk.errors import InputValidationError
from sdk.validate import check_array, check_finite, check_integer, check_positive, check_real

#: Model input side in pixels (the paper's 112x112 crops).
CROP_SIZE = 112
#: Side the square face region is resized to before the centre crop (paper: 125 -> 112).
REGION_SIZE = 125

SR300_NAME = "Intel RealSense SR300"
#: SR300 depth unit in metres (1/8 mm); always read the real one from the device.
SR300_DEPTH_SCALE = 0.000125

DISTORTION_MODELS = (
    "none",
    "brown_conrady",
    "modified_brown_conrady",
    "inverse_brown_conrady",
    "ftheta",
    "kannala_brandt4",
)


class Stream(str, enum.Enum):
    """The three SR300 streams. Values are the names used in files and manifests."""

    COLOR = "color"
    IR = "ir"
    DEPTH = "depth"


class Decision(str, enum.Enum):
    LIVE = "LIVE"
    SPOOF = "SPOOF"
    UNCERTAIN = "UNCERTAIN"


class Reason(str, enum.Enum):
    """Reason codes a LivenessResult can carry. Values are stable strings for JSON and logs."""

    # quality gates
    NO_FACE = "NO_FACE"
    MULTIPLE_FACES = "MULTIPLE_FACES"
    FACE_TOO_FAR = "FACE_TOO_FAR"
    FACE_TOO_CLOSE = "FACE_TOO_CLOSE"
    FACE_OFF_CENTER = "FACE_OFF_CENTER"
    FACE_PARTLY_OUT_OF_FRAME = "FACE_PARTLY_OUT_OF_FRAME"
    IMPLAUSIBLE_FACE_SIZE = "IMPLAUSIBLE_FACE_SIZE"
    TOO_DARK = "TOO_DARK"
    OVEREXPOSED = "OVEREXPOSED"
    IR_TOO_DARK = "IR_TOO_DARK"
    IR_OVEREXPOSED = "IR_OVEREXPOSED"
    DEPTH_HOLES = "DEPTH_HOLES"
    NO_DEPTH = "NO_DEPTH"
    MOTION_BLUR = "MOTION_BLUR"
    #: The face's depth is as flat as a sheet: nothing is left once the best flat or bent sheet
    #: is subtracted (QualityConfig.min_relief_mm; a print or a screen, or too little face depth).
    NO_RELIEF = "NO_RELIEF"
    #: The face's relief was measured and is below QualityConfig.flat_face_mm: the shape of a
    #: sheet, not of a face with missing depth. A spoof cue: enough such frames end a check SPOOF.
    FLAT_FACE = "FLAT_FACE"
    #: Scored beyond how far the calibration's frames reached along a gate's measurement
    #: (sdk.coverage), refused because SessionConfig.outside_calibration is "refuse".
    OUTSIDE_CALIBRATION = "OUTSIDE_CALIBRATION"
    # decisions and faults
    SPOOF_SCORE = "SPOOF_SCORE"
    LOW_CONFIDENCE = "LOW_CONFIDENCE"
    TIMEOUT = "TIMEOUT"
    MISSING_MODALITY = "MISSING_MODALITY"
    DEVICE_ERROR = "DEVICE_ERROR"
    MODEL_ERROR = "MODEL_ERROR"
    INVALID_SCORE = "INVALID_SCORE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    #: Too many SPOOF decisions in a short time: the session answers without scoring for a while.
    LOCKED_OUT = "LOCKED_OUT"


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of one stream, as librealsense reports them."""

    width: int
    height: int
    fx: float
    fy: float
    ppx: float
    ppy: float
    model: str = "none"
    coeffs: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        check_positive("Intrinsics.width", self.width)
        check_positive("Intrinsics.height", self.height)
        check_positive("Intrinsics.fx", self.fx)
        check_positive("Intrinsics.fy", self.fy)
        check_finite("Intrinsics.ppx", self.ppx)
        check_finite("Intrinsics.ppy", self.ppy)
        if self.model not in DISTORTION_MODELS:
            raise InputValidationError(f"Intrinsics.model {self.model!r} is not one of {DISTORTION_MODELS}")
        coeffs = tuple(float(c) for c in self.coeffs)
        if len(coeffs) != 5 or not all(math.isfinite(c) for c in coeffs):
            raise InputValidationError(f"Intrinsics.coeffs must be 5 finite numbers, got {self.coeffs!r}")
        object.__setattr__(self, "coeffs", coeffs)

    def project(self, x: float, y: float, z: float) -> tuple[float, float]:
        """Pixel of a camera-space point in metres (distortion ignored: SR300 depth has none)."""
        return self.fx * x / z + self.ppx, self.fy * y / z + self.ppy

    def deproject(self, u: float, v: float, z: float) -> tuple[float, float, float]:
        """Camera-space point in metres of pixel (u, v) at depth z metres."""
        return (u - self.ppx) * z / self.fx, (v - self.ppy) * z / self.fy, z

    def metres_per_pixel(self, z: float) -> float:
        """Physical size of one pixel at depth z (mean of both axes)."""
        return z * 0.5 * (1.0 / self.fx + 1.0 / self.fy)


@dataclass(frozen=True)
class Extrinsics:
    """Rigid transform between two streams: rotation as 9 numbers, column-major (librealsense)."""

    rotation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    translation: tuple[float, ...] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        rotation = tuple(float(v) for v in self.rotation)
        translation = tuple(float(v) for v in self.translation)
        if len(rotation) != 9 or len(translation) != 3:
            raise InputValidationError("Extrinsics needs 9 rotation and 3 translation values")
        if not all(math.isfinite(v) for v in rotation + translation):
            raise InputValidationError("Extrinsics values must be finite")
        matrix = np.array(rotation).reshape(3, 3)
        if not np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-4):
            raise InputValidationError("Extrinsics.rotation is not a rotation matrix")
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "translation", translation)

    @property
    def matrix(self) -> np.ndarray:
        """3x3 rotation matrix R such that p_to = R @ p_from + t."""
        return np.array(self.rotation, dtype=np.float64).reshape(3, 3).T

    def inverse(self) -> "Extrinsics":
        r = self.matrix
        t = np.array(self.translation)
        r_inv = r.T
        return Extrinsics(tuple(r_inv.T.reshape(-1)), tuple(-r_inv @ t))


@dataclass(frozen=True)
class DeviceInfo:
    """Identity of the camera (or simulator, or recording) that produced the frames."""

    name: str
    serial: str
    firmware: str = ""
    product_line: str = ""
    #: "camera", "bag" or "simulator": where the frames physically came from.
    origin: str = "camera"

    def __post_init__(self) -> None:
        if not self.name:
            raise InputValidationError("DeviceInfo.name must not be empty")
        if self.origin not in ("camera", "bag", "simulator"):
            raise InputValidationError(f"DeviceInfo.origin {self.origin!r} must be camera, bag or simulator")

    @property
    def is_sr300(self) -> bool:
        return "SR300" in self.name or "SR305" in self.name


@dataclass(frozen=True)
class StreamIntrinsics:
    """Native intrinsics of each stream (colour before alignment keeps its own)."""

    color: Intrinsics
    ir: Intrinsics
    depth: Intrinsics

    def of(self, stream: Stream | str) -> Intrinsics:
        return getattr(self, Stream(stream).value)


@dataclass(frozen=True, eq=False)
class FrameSet:
    """One instant from the SR300: colour, IR and depth on ONE pixel grid.

    ``grid`` names the stream whose pixel grid all three arrays share (the depth grid after
    ``rs.align(rs.stream.depth)``; IR is registered to depth on the SR300). The arrays are made
    read-only: a FrameSet owns its pixels and nothing downstream may change them.
    """

    color: np.ndarray  # HxWx3 uint8, RGB order
    ir: np.ndarray  # HxW uint8
    depth: np.ndarray  # HxW uint16, raw device units
    depth_scale: float  # metres per depth unit
    intrinsics: StreamIntrinsics
    timestamp_ms: float
    frame_number: int
    device: DeviceInfo
    grid: Stream = Stream.DEPTH
    #: Optional colour frame at its native resolution, for display only.
    color_native: np.ndarray | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "grid", Stream(self.grid))
        except ValueError:
            raise InputValidationError(
                f"FrameSet.grid {self.grid!r} is not one of {[s.value for s in Stream]}"
            ) from None
        if not isinstance(self.intrinsics, StreamIntrinsics):
            raise InputValidationError(
                f"FrameSet.intrinsics must be a StreamIntrinsics, got {type(self.intrinsics).__name__}"
            )
        grid = self.intrinsics.of(self.grid)
        shape = (grid.height, grid.width)
        check_array("FrameSet.color", self.color, shape=shape + (3,), dtype=np.uint8)
        check_array("FrameSet.ir", self.ir, shape=shape, dtype=np.uint8)
        check_array("FrameSet.depth", self.depth, shape=shape, dtype=np.uint16)
        if self.color_native is not None:
            check_array("FrameSet.color_native", self.color_native, shape=(None, None, 3), dtype=np.uint8)
        # Numbers are stored as plain float/int so a string or a fractional frame number
        # cannot travel downstream (check_real refuses text, check_integer refuses 1.7).
        depth_scale = check_real("FrameSet.depth_scale", self.depth_scale)
        if depth_scale <= 0:
            raise InputValidationError(f"FrameSet.depth_scale must be > 0, got {self.depth_scale!r}")
        if depth_scale > 0.01:
            raise InputValidationError(f"FrameSet.depth_scale {depth_scale} m/unit is implausible (>1 cm)")
        object.__setattr__(self, "depth_scale", depth_scale)
        object.__setattr__(self, "timestamp_ms", check_real("FrameSet.timestamp_ms", self.timestamp_ms))
        frame_number = check_integer("FrameSet.frame_number", self.frame_number)
        if frame_number < 0:
            raise InputValidationError("FrameSet.frame_number must be >= 0")
        object.__setattr__(self, "frame_number", frame_number)
        for name in ("color", "ir", "depth", "color_native"):
            array = getattr(self, name)
            if array is not None and array.flags.writeable:
                array.flags.writeable = False

    @property
    def shape(self) -> tuple[int, int]:
        return self.depth.shape  # type: ignore[return-value]

    @property
    def grid_intrinsics(self) -> Intrinsics:
        return self.intrinsics.of(self.grid)

    def depth_m(self) -> np.ndarray:
        """Depth in metres as float32; holes are 0."""
        return self.depth.astype(np.float32) * np.float32(self.depth_scale)


@dataclass(frozen=True)
class FaceBox:
    """A face on the shared grid: corners in pixels, detector confidence, optional landmarks."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        for name in ("x0", "y0", "x1", "y1", "score"):
            check_finite(f"FaceBox.{name}", getattr(self, name))
        if not (self.x1 > self.x0 and self.y1 > self.y0):
            raise InputValidationError(f"FaceBox corners must satisfy x1 > x0 and y1 > y0, got {self.as_tuple()}")
        object.__setattr__(
            self, "landmarks", tuple((float(x), float(y)) for x, y in self.landmarks)
        )

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0

    @property
    def area(self) -> float:
        return self.width * self.height

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    def iou(self, other: "FaceBox") -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True, eq=False)
class FaceCrops:
    """The three square crops of one face, as the model (or a dataset) sees them.

    rgb is SxSx3 uint8, ir and depth SxS uint8 (depth already normalised around the face's own
    median depth: near is bright, background and holes are 0). ``face_depth_m`` is that median
    in metres (nan when the face had no valid depth).
    """

    rgb: np.ndarray
    ir: np.ndarray
    depth: np.ndarray
    face_depth_m: float
    depth_valid_fraction: float
    preprocess_version: str

    def __post_init__(self) -> None:
        side = self.rgb.shape[0] if self.rgb.ndim == 3 else -1
        check_array("FaceCrops.rgb", self.rgb, shape=(side, side, 3), dtype=np.uint8)
        check_array("FaceCrops.ir", self.ir, shape=(side, side), dtype=np.uint8)
        check_array("FaceCrops.depth", self.depth, shape=(side, side), dtype=np.uint8)
        if not 0.0 <= self.depth_valid_fraction <= 1.0:
            raise InputValidationError("FaceCrops.depth_valid_fraction must lie in [0, 1]")
        for name in ("rgb", "ir", "depth"):
            array = getattr(self, name)
            if array.flags.writeable:
                array.flags.writeable = False

    @property
    def size(self) -> int:
        return int(self.rgb.shape[0])


@dataclass(frozen=True)
class FrameTruth:
    """Ground truth the simulator knows about one frame (sidecars and tests use it)."""

    frame_number: int
    face_box: FaceBox | None
    scenario: str
    label: int  # 1 = live (bona fide), 0 = attack
    attack_type: int | None  # CASIA-SURF type 1-6, or None
    distance_m: float
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    roll_deg: float = 0.0


# --- detect stage -------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceDepth:
    """What the depth stream says about one face box.

    ``depth_m`` is the median of valid depth over the central part of the box
    (sdk.preprocess.face_median_depth_m), nan without valid depth; ``width_m`` is the box width
    in metres at that depth (box width x depth / fx of the grid intrinsics).
    """

    depth_m: float
    valid_fraction: float
    width_m: float

    @property
    def has_depth(self) -> bool:
        return math.isfinite(self.depth_m)


@dataclass(frozen=True)
class Detection:
    """One detector output: the box, its depth measurement (None if not measured) and, when
    depth rejected it, why (NO_DEPTH, FACE_TOO_CLOSE, FACE_TOO_FAR or IMPLAUSIBLE_FACE_SIZE)."""

    box: FaceBox
    depth: FaceDepth | None = None
    rejection: Reason | None = None

    def __post_init__(self) -> None:
        if self.rejection is not None:
            object.__setattr__(self, "rejection", Reason(self.rejection))

    @property
    def score(self) -> float:
        return self.box.score


@dataclass(frozen=True)
class Detections:
    """Everything one detector call found in one FrameSet.

    ``accepted``: faces the detector stands behind (for a plain detector: every box; behind
    depth confirmation: the confirmed ones), highest score first. ``rejected``: boxes depth
    confirmation turned down, with the reason. ``stage`` names what produced ``accepted``
    (e.g. "short", "full", "full+lowlight"; "" when nothing was found).
    """

    accepted: tuple[Detection, ...] = ()
    rejected: tuple[Detection, ...] = ()
    stage: str = ""
    image_size: tuple[int, int] = (0, 0)  # (width, height) of the grid the boxes live on

    def __post_init__(self) -> None:
        object.__setattr__(self, "accepted", tuple(self.accepted))
        object.__setattr__(self, "rejected", tuple(self.rejected))
        if any(d.rejection is not None for d in self.accepted):
            raise InputValidationError("Detections.accepted must not hold rejected detections")
        if any(d.rejection is None for d in self.rejected):
            raise InputValidationError("Detections.rejected needs a rejection reason for each detection")

    @property
    def faces(self) -> tuple[FaceBox, ...]:
        """The accepted boxes (what most callers want)."""
        return tuple(d.box for d in self.accepted)

    def __len__(self) -> int:
        return len(self.accepted)

    def __bool__(self) -> bool:
        return bool(self.accepted)


@dataclass(frozen=True)
class FaceSelection:
    """The face chosen for analysis, the other accepted faces and the rejected boxes."""

    primary: Detection | None
    others: tuple[Detection, ...] = ()
    #: Others at a depth within similar_depth_m of the primary (or with unknown depth).
    similar_others: int = 0
    rejected: tuple[Detection, ...] = ()

    @property
    def face_count(self) -> int:
        return (self.primary is not None) + len(self.others)


# --- quality gates ------------------------------------------------------------------------
@dataclass(frozen=True)
class QualityReport:
    """Result of the gates. ``passed`` False: do not score this frame. ``reasons`` are the
    failing gates (in Reason order); ``notes`` are informational (e.g. MULTIPLE_FACES under the
    "similar" policy when the other face is further away)."""

    passed: bool
    reasons: tuple[Reason, ...]
    measurements: Mapping[str, float]
    notes: tuple[Reason, ...] = ()

    def __post_init__(self) -> None:
        order = list(Reason)
        object.__setattr__(self, "reasons", tuple(sorted({Reason(r) for r in self.reasons}, key=order.index)))
        object.__setattr__(self, "notes", tuple(sorted({Reason(r) for r in self.notes}, key=order.index)))
        object.__setattr__(self, "measurements", dict(self.measurements))
        if self.passed and self.reasons:
            raise InputValidationError("a passed QualityReport cannot carry failing reasons")
        if not self.passed and not self.reasons:
            raise InputValidationError("a failed QualityReport needs at least one reason")


@dataclass(frozen=True, eq=False)
class FaceAnalysis:
    """What the pipeline made of one frame.

    ``crops`` are the model's crops of ``box`` only when every gate passed (so a frame that
    failed a gate cannot be scored by accident); ``box`` is the chosen face even then, for
    display and hints.
    """

    box: FaceBox | None
    crops: FaceCrops | None
    quality: QualityReport
    detections: Detections
    selection: FaceSelection
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    detail_ms: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timings_ms", dict(self.timings_ms))
        object.__setattr__(self, "detail_ms", dict(self.detail_ms))


@dataclass(frozen=True)
class FrameOutcome:
    """What one frame contributed to a check: a score, or the reasons it was not scored.

    ``face_depth_m`` is the chosen face's median depth (nan without a face), which temporal
    fusion uses to tell one face from another. ``message`` explains a fault (a stuck stream).
    ``quality`` holds the gates' measurements of the frame (``QualityReport.measurements``;
    empty when the frame never reached the gates), so calibration can say which part of each
    gate's range its scored frames covered. ``outside_calibration`` names the gates along whose
    measurement the frame lies beyond the bundle's calibration (sdk.coverage).
    """

    frame_number: int
    score: float | None
    reasons: tuple[Reason, ...]
    face_box: FaceBox | None
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    face_depth_m: float = float("nan")
    message: str = ""
    quality: Mapping[str, float] = field(default_factory=dict)
    outside_calibration: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", tuple(Reason(r) for r in self.reasons))
        object.__setattr__(self, "timings_ms", dict(self.timings_ms))
        object.__setattr__(self, "quality", dict(self.quality))
        object.__setattr__(self, "outside_calibration", tuple(str(g) for g in self.outside_calibration))
        if self.score is not None:
            if isinstance(self.score, bool) or not isinstance(self.score, (int, float)):
                raise InputValidationError(f"FrameOutcome.score must be a number or None, got {self.score!r}")
            if self.reasons:
                raise InputValidationError("a scored FrameOutcome cannot carry gate reasons")
        elif not self.reasons:
            raise InputValidationError("an unscored FrameOutcome needs at least one reason")

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame_number": int(self.frame_number),
            "score": None if self.score is None or not math.isfinite(self.score) else float(self.score),
            "reasons": [r.value for r in self.reasons],
            "face_box": None if self.face_box is None else [round(v, 2) for v in self.face_box.as_tuple()],
            "face_depth_m": None if not math.isfinite(self.face_depth_m) else round(float(self.face_depth_m), 4),
            # JSON has no nan: a measurement that could not be taken is left out. Not rounded:
            # calibration's reach (sdk.coverage) is compared with live frames' exact values.
            "quality": {k: float(v) for k, v in self.quality.items() if math.isfinite(v)},
            "outside_calibration": list(self.outside_calibration),
        }


@dataclass(frozen=True)
class LivenessResult:
    """What `LivenessSession.check()` returns. Never LIVE unless every stage succeeded."""

    decision: Decision
    score: float  # fused P(live); nan when no frame was scored
    threshold: float
    operating_point: str
    reasons: tuple[Reason, ...]
    face_box: FaceBox | None
    frames_used: int
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    model_name: str = ""
    model_version: str = ""
    message: str = ""
    #: Gates along whose measurement a frame of this check lay beyond how far the bundle's
    #: calibration reached (sdk.coverage): the operating point's APCER / BPCER were not measured
    #: on frames like it. Empty also when the bundle records no calibration coverage.
    outside_calibration: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "decision", Decision(self.decision))
        object.__setattr__(self, "outside_calibration", tuple(str(g) for g in self.outside_calibration))
        object.__setattr__(self, "reasons", tuple(Reason(r) for r in self.reasons))
        object.__setattr__(self, "timings_ms", dict(self.timings_ms))
        if self.decision is Decision.LIVE:
            # Fail closed by construction: a LIVE result needs a finite score over threshold
            # and a face; anything else is a programming error upstream.
            if not (math.isfinite(self.score) and self.score >= self.threshold):
                raise InputValidationError("a LIVE result needs a finite score at or above the threshold")
            if self.face_box is None:
                raise InputValidationError("a LIVE result needs a face box")

    @property
    def is_live(self) -> bool:
        return self.decision is Decision.LIVE

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["decision"] = self.decision.value
        data["reasons"] = [r.value for r in self.reasons]
        data["score"] = None if not math.isfinite(self.score) else self.score
        data["face_box"] = None if self.face_box is None else list(self.face_box.as_tuple())
        data["outside_calibration"] = list(self.outside_calibration)
        return data

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)
