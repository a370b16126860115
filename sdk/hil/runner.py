"""`hil run`: every suite recording through `LivenessSession.check()`, scored against its label.

A recording passes when an attack is not LIVE and a live face is LIVE within the timeout. The
timeout counts recording time (a frame budget of timeout x 30 fps, what the person in front of
the camera spent), so a verdict does not depend on how loaded the rig is; the wall clock only
guards against a hung replay (WALL_CLOCK_FACTOR x the timeout). A
recording whose bag or sidecar differs from the SHA-256 in suite.json is an error, never a
pass; so is a check that ended on a device, model or internal error (the recording was not
actually examined).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from sdk.errors import RecordingIntegrityError
from sdk.hil.suite import Suite, SuiteRecording

PASS, FAIL, ERROR = "pass", "fail", "error"
#: Frames per second of the recording time the timeout counts (the SR300's rate).
RECORDING_FPS = 30
#: The wall-clock guard of a replayed check, as a multiple of the timeout.
WALL_CLOCK_FACTOR = 10.0
#: Reasons saying the check never looked at the recording: the outcome is an error, not a pass.
ERROR_REASONS = frozenset({"DEVICE_ERROR", "MODEL_ERROR", "INTERNAL_ERROR", "INVALID_SCORE"})


@dataclass(frozen=True)
class RecordingResult:
    """What one recording gave."""

    id: str
    scenario: str
    species: str
    label: int
    attack_type: int | None
    expected: str
    sha256: str
    status: str  # pass / fail / error
    decision: str | None
    score: float | None
    reasons: tuple[str, ...]
    frames_used: int
    seconds: float
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    detail: str = ""
    #: The check alone (``seconds`` also counts the hash check and opening the session).
    check_seconds: float = 0.0
    #: Checks run: more than 1 when a check that ended on an error was repeated (--retries).
    attempts: int = 1
    #: Gates along which a frame of the check lay beyond the bundle's calibration (sdk.coverage).
    outside_calibration: tuple[str, ...] = ()
    #: The suite's digest of the frames (None for suites written before it existed).
    content_sha256: str | None = None

    @property
    def is_attack(self) -> bool:
        return self.label == 0

    @property
    def accepted(self) -> bool:
        return self.decision == "LIVE"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "scenario": self.scenario, "species": self.species, "label": self.label,
            "attack_type": self.attack_type, "expected": self.expected, "sha256": self.sha256,
            "status": self.status, "decision": self.decision, "score": self.score, "reasons": list(self.reasons),
            "frames_used": self.frames_used, "seconds": round(self.seconds, 4),
            "check_seconds": round(self.check_seconds, 4), "attempts": self.attempts, "timings_ms": dict(self.timings_ms), "detail": self.detail,
            "outside_calibration": list(self.outside_calibration), "content_sha256": self.content_sha256,
        }


def judge(recording: SuiteRecording, decision: str, reasons: tuple[str, ...]) -> tuple[str, str]:
    """(status, detail) of a finished check against the recording's label."""
    if ERROR_REASONS.intersection(reasons):
        return ERROR, f"the check ended on an error ({', '.join(sorted(ERROR_REASONS.intersection(reasons)))})"
    if recording.is_attack:
        if decision == "LIVE":
            return FAIL, f"attack ({recording.species}) accepted as LIVE"
        return PASS, ""
    if decision == "LIVE":
        return PASS, ""
    return FAIL, f"live face not accepted within the timeout: {decision} ({', '.join(reasons) or '-'})"


def check_recording(
    suite: Suite,
    recording: SuiteRecording,
    bundle: Any,
    operating_point: str | None = None,
    timeout_s: float | None = None,
    engine: str = "onnxruntime",
    retries: int = 0,
) -> RecordingResult:
    """Verify the recording's hashes, then check it; a check that ended on an error (a replay that
    lost frames on a loaded machine, say) is repeated up to ``retries`` times. A hash mismatch is
    never retried, and a retried recording says so (``attempts``): errors are reported, not hidden."""
    result = _check_once(suite, recording, bundle, operating_point, timeout_s, engine)
    attempts = 1
    while result.status == ERROR and result.decision is not None and attempts <= retries:
        earlier = result.detail
        result = _check_once(suite, recording, bundle, operating_point, timeout_s, engine)
        attempts += 1
        note = f"check {attempts} after: {earlier}"
        result = replace(result, attempts=attempts, detail=f"{result.detail}; {note}" if result.detail else note)
    return result


def _check_once(
    suite: Suite,
    recording: SuiteRecording,
    bundle: Any,
    operating_point: str | None,
    timeout_s: float | None,
    engine: str,
) -> RecordingResult:
    from sdk.session import LivenessSession, SessionConfig

    started = time.perf_counter()
    base = dict(id=recording.id, scenario=recording.scenario, species=recording.species, label=recording.label,
                attack_type=recording.attack_type, expected=recording.expected, sha256=recording.sha256,
                content_sha256=recording.content_sha256)
    try:
        suite.verify(recording)
    except RecordingIntegrityError as error:
        return RecordingResult(**base, status=ERROR, decision=None, score=None, reasons=(), frames_used=0,
                               seconds=time.perf_counter() - started, detail=str(error))
    timeout = float(timeout_s if timeout_s is not None else suite.timeout_s)
    wall_clock = timeout * WALL_CLOCK_FACTOR
    config = SessionConfig(operating_point=operating_point, timeout_s=wall_clock, engine=engine,
                           max_frames=max(1, int(round(timeout * RECORDING_FPS))))
    session = LivenessSession(str(suite.path_of(recording.bag)), bundle, config)
    try:
        # check() opens the source itself and fails closed (DEVICE_ERROR) on a recording it
        # cannot replay; close() releases the engine and detectors whatever happened.
        check_started = time.perf_counter()
        result = session.check(timeout_s=wall_clock)
        check_seconds = time.perf_counter() - check_started
    finally:
        session.close()
    data = result.to_dict()
    reasons = tuple(data["reasons"])
    status, detail = judge(recording, data["decision"], reasons)
    if data.get("message") and status != PASS:
        detail = f"{detail}; {data['message']}" if detail else data["message"]
    return RecordingResult(**base, status=status, decision=data["decision"], score=data["score"], reasons=reasons,
                           frames_used=int(data["frames_used"]), seconds=time.perf_counter() - started,
                           timings_ms=dict(data.get("timings_ms") or {}), detail=detail, check_seconds=check_seconds,
                           outside_calibration=tuple(data.get("outside_calibration") or ()))


def run_suite(
    suite: Suite,
    model: Any = None,
    operating_point: str | None = None,
    timeout_s: float | None = None,
    engine: str = "onnxruntime",
    progress: bool = True,
    retries: int = 0,
    on_result: Callable[[RecordingResult], None] | None = None,
) -> "HilReport":
    """Check every recording of the suite; the model is loaded (and hash-verified) once."""
    from sdk.engine import ModelBundle
    from sdk.hil.report import HilReport

    bundle = model if isinstance(model, ModelBundle) else ModelBundle.load(model)
    point = bundle.operating_point(operating_point)
    started = time.perf_counter()
    results: list[RecordingResult] = []
    iterator: Any = suite.recordings
    if progress:
        from tqdm import tqdm

        iterator = tqdm(suite.recordings, unit="recording", desc="hil run")
    for recording in iterator:
        result = check_recording(suite, recording, bundle, point.name, timeout_s, engine, retries=retries)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return HilReport(
        suite_root=str(suite.root),
        bpcer_budget=float(suite.bpcer_budget),
        model_name=bundle.name,
        model_version=bundle.version,
        operating_point=point.name,
        threshold=float(point.threshold),
        results=tuple(results),
        seconds=time.perf_counter() - started,
    )
