"""Typed errors of the SDK. Every failure a user can cause or meet has its own class.

All derive from LivenessError so an integrator can catch the SDK's errors in one place;
InputValidationError is also a ValueError so generic callers keep working.
"""
from __future__ import annotations


class LivenessError(Exception):
    """Base class of every error the SDK raises on purpose."""


class InputValidationError(LivenessError, ValueError):
    """An array, number or file content does not have the shape, dtype or range required."""


class DependencyMissingError(LivenessError, ImportError):
    """An optional package or system library is missing; the message says how to install it."""


# --- capture -------------------------------------------------------------------------------
class CaptureError(LivenessError):
    """Base of the capture layer's errors."""


class CameraNotFoundError(CaptureError):
    """No (suitable) RealSense camera is connected."""


class UnsupportedDeviceError(CaptureError):
    """A camera was found but is not an SR300 (and the caller did not opt in)."""


class BagFormatError(CaptureError):
    """A .bag file is missing, truncated, unindexed or not a RealSense recording."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class ShortPlaybackError(BagFormatError):
    """A replay ended before every frame its index promises arrived. Either the file is damaged
    or, on an intact file, librealsense's playback lost a frame while starved of CPU
    (docs/reliability.md): replaying the same file again tells the two apart."""


class MissingStreamError(CaptureError):
    """A recording or device lacks one of the colour, IR and depth streams."""

    def __init__(self, stream: str, where: object) -> None:
        super().__init__(f"{where}: no {stream} stream (colour, IR and depth are all required)")
        self.stream = stream


class FrameTimeoutError(CaptureError):
    """Frames stopped arriving for longer than the configured timeout."""


class DeviceDisconnectedError(CaptureError):
    """The camera went away in the middle of a stream."""


# --- models and engines --------------------------------------------------------------------
class ModelError(LivenessError):
    """A model bundle cannot be loaded or run."""


class ModelIntegrityError(ModelError):
    """A model file does not match the SHA-256 in its manifest, or the manifest is malformed."""


class EngineError(ModelError):
    """An inference engine failed to build or to run."""


class DetectorModelError(ModelError):
    """A face-detector model cannot be loaded or run."""


class DetectorModelNotFoundError(DetectorModelError, FileNotFoundError):
    """The face-detector model file is not where it should be (a broken install or a wrong path)."""

    def __init__(self, path: object, hint: str = "") -> None:
        message = f"face detector model not found: {path}"
        super().__init__(message + (f" ({hint})" if hint else ""))
        self.path = str(path)


class InvalidScoreError(EngineError):
    """The model produced NaN, infinite or out-of-range scores."""


# --- simulator -----------------------------------------------------------------------------
class UnknownScenarioError(LivenessError, KeyError):
    """A simulator scenario name that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


# --- hardware-in-the-loop suites -------------------------------------------------------------
class HilSuiteError(LivenessError, ValueError):
    """A hardware-in-the-loop suite folder or its suite.json is missing or malformed."""


class RecordingIntegrityError(HilSuiteError):
    """A suite recording (or its sidecar) is missing or its SHA-256 differs from suite.json."""


# --- operating points (appended by the decisions work) ---------------------------------------
class UnsupportedOperatingPointError(InputValidationError):
    """A target APCER that the calibration set has too few attack presentations to support
    (rule of three: claiming APCER <= t with 95 % confidence needs about 3/t attacks)."""

    def __init__(self, name: str, target_apcer: float, n_attack: int, needed: float) -> None:
        need = "infinitely many" if needed == float("inf") else f"at least {int(needed)}"
        super().__init__(
            f"operating point {name!r} (target APCER {target_apcer:g}) needs {need} attack presentations "
            f"(rule of three: 3/{target_apcer:g}); the calibration set has {n_attack}. Record more attacks "
            "or choose a larger target APCER"
        )
        self.name = name
        self.target_apcer = target_apcer
        self.n_attack = n_attack
        self.needed = needed


class DecisionRuleMismatchError(ModelError):
    """The session's decision rule (fusion, gates, TTA, detector) differs from the one the bundle's
    operating points were calibrated with, so their APCER / BPCER would not hold."""

    def __init__(self, bundle: str, calibrated: dict, session: dict) -> None:
        differing = sorted(k for k in set(calibrated) | set(session) if calibrated.get(k) != session.get(k))
        super().__init__(
            f"{bundle}: its operating points were calibrated with another decision rule (differs in "
            f"{', '.join(differing)}: calibrated {[calibrated.get(k) for k in differing]}, session "
            f"{[session.get(k) for k in differing]}); recalibrate (sr300-liveness calibrate), use the "
            "calibrated settings, or pass SessionConfig(allow_uncalibrated_rule=True) to accept "
            "thresholds whose error rates are unknown"
        )
        self.differing = differing


# --- reliability (issue 14) ------------------------------------------------------------------
class StreamChangedError(CaptureError):
    """The device, depth scale or pixel grid changed in the middle of a stream."""


class StreamIntegrityError(CaptureError):
    """Frames no working camera sends: a clock that runs backwards, a frozen IR or depth image."""


# --- training runs ---------------------------------------------------------------------------
class RunFolderBusyError(LivenessError, RuntimeError):
    """Another process is writing the same training run folder (train, distill, an ensemble member)."""
