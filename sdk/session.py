"""LivenessSession: the integrator's API over the whole device path.

    with LivenessSession() as session:          # first SR300, shipped model
        result = session.check(timeout_s=5)
        if result.decision is Decision.LIVE: unlock()

The session fails closed: an exception anywhere, a missing modality, a broken model or a NaN
score ends in SPOOF or UNCERTAIN with a reason, never in LIVE.
"""
from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator

from sdk.coverage import calibrated_edges, outside_calibration
from sdk.engine import Engine, ModelBundle, create_engine
from sdk.errors import (CaptureError, DecisionRuleMismatchError, InputValidationError, InvalidScoreError, LivenessError,
                        ModelError)
from sdk.fusion import SPOOF_CUES, CheckDecider, FusionConfig, TemporalFusion, Verdict
from sdk.lockout import LockoutConfig, SpoofLockout
from sdk.stream_guard import StreamGuard, StreamGuardConfig
from sdk.types import Decision, FaceBox, FrameOutcome, FrameSet, LivenessResult, Reason
from sdk.validate import check_positive

__all__ = ["FrameOutcome", "LivenessSession", "SessionConfig", "SPOOF_CUES", "STAGES", "decision_rule_matches",
           "quality_from_rule", "quality_rule", "reason_for", "stored_rule", "with_bundle_gates"]

STAGES = ("capture", "detect", "crops", "quality", "engine", "fusion")


OUTSIDE_CALIBRATION_POLICIES = ("note", "refuse")
#: The detector of a session that picks none, for a bundle that records none.
DEFAULT_DETECTOR = "auto"


@dataclass(frozen=True)
class SessionConfig:
    """Everything a session can be told; defaults suit an SR300 at arm's length."""

    #: Named operating point of the bundle (None: the manifest's default).
    operating_point: str | None = None
    #: Explicit threshold on P(live); overrides the operating point's when set.
    threshold: float | None = None
    timeout_s: float = 5.0
    #: Frame budget of one check (None: timeout_s x 30 fps), so recordings end deterministically.
    max_frames: int | None = None
    fusion: FusionConfig = field(default_factory=FusionConfig)
    engine: str = "onnxruntime"
    engine_options: dict[str, Any] = field(default_factory=dict)
    #: BlazeFace mode ("short", "full", "auto", "auto+ir") or a sdk.detect Detector; None: the
    #: detector the bundle was calibrated with ("auto" for a bundle that records none).
    detector: Any = None
    tta: bool = True
    #: Frames with a spoof cue (e.g. implausible physical face size) that end a check as SPOOF.
    spoof_cue_frames: int = 3
    #: sdk.quality.QualityConfig; None: the gates the bundle was calibrated with (its defaults
    #: for a bundle that records none).
    quality: Any = None
    #: SPOOF decisions that lock the session for a while (sdk.lockout).
    lockout: LockoutConfig = field(default_factory=LockoutConfig)
    #: Stuck-stream detection (sdk.stream_guard).
    stream_guard: StreamGuardConfig = field(default_factory=StreamGuardConfig)
    #: MISSING_MODALITY frames in a row that end a check.
    missing_modality_frames: int = 3
    #: Use a calibrated bundle's operating points with another decision rule (their APCER and
    #: BPCER then do not hold: experiments only). False: such a session is refused.
    allow_uncalibrated_rule: bool = False
    #: A frame that passes the gates but lies beyond how far the bundle's calibration reached
    #: along a gate's measurement (sdk.coverage): "note" scores it and names the gate in
    #: LivenessResult.outside_calibration; "refuse" does not score it (OUTSIDE_CALIBRATION).
    #: Not part of the decision rule: no calibration frame lies beyond, so the bundle's operating
    #: points hold under either.
    outside_calibration: str = "note"

    def __post_init__(self) -> None:
        # int(round(timeout_s * 30)) sizes a check's frame budget: nan/inf would end in a traceback.
        object.__setattr__(self, "timeout_s", check_positive("SessionConfig.timeout_s", self.timeout_s))
        from sdk.quality import QualityConfig

        if self.quality is not None and not isinstance(self.quality, QualityConfig):
            raise InputValidationError(f"SessionConfig.quality must be a sdk.quality.QualityConfig or None, "
                                       f"got {type(self.quality).__name__}")
        if self.outside_calibration not in OUTSIDE_CALIBRATION_POLICIES:
            raise InputValidationError(f"SessionConfig.outside_calibration must be one of "
                                       f"{OUTSIDE_CALIBRATION_POLICIES}, got {self.outside_calibration!r}")

    def decision_rule(self) -> dict[str, Any]:
        """What a calibrated threshold depends on (stored in a calibrated bundle's manifest).

        The quality gates are part of it: they decide which frames are scored at all, so a
        looser gate lets frames through that the calibration never saw."""
        return {"fusion": self.fusion.to_dict(), "spoof_cue_frames": self.spoof_cue_frames,
                "missing_modality_frames": self.missing_modality_frames, "tta": self.tta,
                "detector": self.detector if self.detector is not None else DEFAULT_DETECTOR,
                "stream_guard_max_repeats": self.stream_guard.max_repeats,
                "quality": quality_rule(self.quality)}


def quality_rule(quality: Any = None) -> dict[str, Any]:
    """The gate thresholds of ``quality`` (None: the defaults) as plain JSON values."""
    from sdk.quality import QualityConfig

    return asdict(quality if quality is not None else QualityConfig())


def decision_rule_matches(calibrated: Any, config: SessionConfig) -> bool:
    """Whether a bundle's calibrated decision rule (None: uncalibrated) is ``config``'s.

    Bundles calibrated before the gates were recorded (up to 2.18.0) store no "quality": their
    calibrations ran the default gates, which have not changed since they were written
    (2026-11-28, before the first calibration), so they match the default gates only."""
    return calibrated is None or stored_rule(calibrated) == config.decision_rule()


def quality_from_rule(data: Any, where: str) -> Any:
    """A QualityConfig from the "quality" of a stored decision rule (ModelError if unreadable:
    a bundle whose gates cannot be read must not run with some other gates)."""
    from sdk.detect.depth import DepthCheckConfig
    from sdk.quality import QualityConfig

    try:
        values = dict(data)
        if "depth_check" in values:
            values["depth_check"] = DepthCheckConfig(**dict(values["depth_check"]))
        return QualityConfig(**values)
    except (TypeError, ValueError, LivenessError) as error:
        raise ModelError(f"{where}: the calibrated quality gates cannot be read ({error})") from None


def with_bundle_gates(config: SessionConfig, bundle: ModelBundle) -> SessionConfig:
    """``config`` with the bundle's calibrated gates and detector where it chooses none
    (``quality=None``, ``detector=None``).

    Both are part of what a bundle's points were calibrated with, so a session that does not pick
    its own runs the bundle's; a bundle that records none (uncalibrated, or calibrated up to
    2.18.0) runs the default gates and the "auto" detector."""
    rule = bundle.decision_rule
    if config.detector is None:
        recorded = rule.get("detector") if rule is not None else None
        config = replace(config, detector=recorded if isinstance(recorded, str) else DEFAULT_DETECTOR)
    if config.quality is not None:
        return config
    stored = rule.get("quality") if rule is not None else None
    if stored is None:
        return config
    return replace(config, quality=quality_from_rule(stored, f"{bundle.name} {bundle.version}"))


#: QualityConfig fields added after bundles began recording their gates (2.19.0), each with the
#: value that leaves a bundle recorded without it running as it was calibrated (the gate off).
LATER_QUALITY_FIELDS: dict[str, Any] = {"min_relief_mm": 0.0, "flat_face_mm": 0.0}


def stored_rule(calibrated: Any) -> dict[str, Any]:
    """A bundle's calibrated rule with the default gates filled in where it predates them (all of
    them before 2.19.0; the LATER_QUALITY_FIELDS after)."""
    rule = dict(calibrated)
    stored = rule.get("quality")
    rule["quality"] = quality_rule(None) if stored is None else {**LATER_QUALITY_FIELDS, **dict(stored)}
    return rule


class LivenessSession:
    def __init__(self, source: Any = None, model: Any = None, config: SessionConfig | None = None, *,
                 lockout: SpoofLockout | None = None) -> None:
        # The model is loaded and verified up front: a broken bundle is a typed error now, not a
        # silent LIVE later.
        self.bundle = model if isinstance(model, ModelBundle) else ModelBundle.load(model)
        self.config = with_bundle_gates(config or SessionConfig(), self.bundle)
        point = self.bundle.operating_point(self.config.operating_point)
        self.operating_point = point.name if self.config.threshold is None else "custom"
        self.threshold = point.threshold if self.config.threshold is None else float(self.config.threshold)
        if not (math.isfinite(self.threshold) and 0.0 < self.threshold <= 1.0):
            raise ModelError(f"threshold must lie in (0, 1], got {self.threshold}")
        # The bundle's thresholds were calibrated for one decision rule (fusion, gates, TTA); with
        # another they do not mean what the manifest says, so a named operating point is refused
        # unless the caller opts in (an explicit threshold is the caller's own responsibility).
        calibrated_rule = self.bundle.decision_rule
        self.decision_rule_matches = decision_rule_matches(calibrated_rule, self.config)
        if not self.decision_rule_matches and self.config.threshold is None:
            if not self.config.allow_uncalibrated_rule:
                raise DecisionRuleMismatchError(f"{self.bundle.name} {self.bundle.version}", stored_rule(calibrated_rule),
                                                self.config.decision_rule())
            warnings.warn(f"{self.bundle.name} {self.bundle.version}: its operating points were calibrated with the "
                          f"decision rule {stored_rule(calibrated_rule)}, this session uses {self.config.decision_rule()}",
                          stacklevel=2)
        #: Shared across sessions when passed in, so opening a new session does not reset it.
        self.lockout = lockout if lockout is not None else SpoofLockout(self.config.lockout)
        self._source_spec = source
        self._source: Any = None
        self._frames: Iterator[FrameSet] | None = None
        self._engine: Engine | None = None
        self._pipeline: Any = None
        self._guard = StreamGuard(self.config.stream_guard)
        #: How far the calibration's scored frames reached along each gate (sdk.coverage).
        self.calibrated_edges = calibrated_edges(self.bundle.provenance)

    # -- lifecycle --------------------------------------------------------------------------
    def open(self) -> "LivenessSession":
        from sdk.capture import open_source
        from sdk.pipeline import FacePipeline

        # A part that fails to open (e.g. a missing recording) must not leak the parts this
        # call opened before it (the detector holds native resources): close them, re-raise.
        opened: list[str] = []
        try:
            if self._engine is None:
                self._engine = create_engine(self.config.engine, self.bundle.model_path, **self.config.engine_options)
                opened.append("_engine")
            if self._pipeline is None:
                self._pipeline = FacePipeline(detector=self.config.detector, quality=self.config.quality)
                opened.append("_pipeline")
            if self._source is None:
                self._source = open_source(self._source_spec)
                opened.append("_source")
                self._frames = iter(self._source)
                self._guard.reset(_profiles_of(self._source))
        except BaseException:
            for name in reversed(opened):
                try:
                    getattr(self, name).close()
                except Exception:  # closing must not mask the error that brought us here
                    pass
                setattr(self, name, None)
            if "_source" in opened:
                self._frames = None
            raise
        return self

    def use_source(self, source: Any) -> None:
        """Switch to another source, keeping the loaded engine and detector (e.g. the next
        recording of a calibration set). The old source is closed; the new one opens now if
        the session is open, else with open()."""
        self.release_source()
        self._source_spec = source
        if self._engine is not None:
            self.open()

    def release_source(self) -> None:
        """Close the current source (e.g. to delete its recording), keeping engine and detector."""
        if self._source is not None:
            try:
                self._source.close()
            except Exception:  # the old source's trouble is not the new one's
                pass
        self._source = self._frames = None
        self._guard.reset()

    def close(self) -> None:
        for part in (self._source, self._pipeline, self._engine):
            if part is not None:
                try:
                    part.close()
                except Exception:  # closing must not mask the error that brought us here
                    pass
        self._source = self._frames = self._engine = self._pipeline = None

    def __enter__(self) -> "LivenessSession":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one frame --------------------------------------------------------------------------
    def next_frames(self) -> FrameSet | None:
        """The source's next FrameSet (None at the end of a finite source); the session must be open."""
        if self._frames is None:
            raise LivenessError("the session is not open: use it as a context manager or call open()")
        return next(self._frames, None)

    def process(self, frames: FrameSet) -> FrameOutcome:
        """Detection, gates, crops and the engine on one FrameSet."""
        if self._pipeline is None or self._engine is None:
            raise LivenessError("the session is not open: use it as a context manager or call open()")
        analysis = self._pipeline.analyze(frames)
        timings = dict(analysis.timings_ms)
        primary = analysis.selection.primary
        depth_m = primary.depth.depth_m if primary is not None and primary.depth is not None else float("nan")
        measured = analysis.quality.measurements
        if analysis.box is not None and _missing_modalities(frames, analysis.box):
            return FrameOutcome(frames.frame_number, None, (Reason.MISSING_MODALITY,), analysis.box, timings, depth_m,
                                f"no signal in the face box: {', '.join(_missing_modalities(frames, analysis.box))}",
                                quality=measured)
        if not analysis.quality.passed or analysis.crops is None:
            reasons = tuple(analysis.quality.reasons) or (Reason.NO_FACE,)
            return FrameOutcome(frames.frame_number, None, reasons, analysis.box, timings, depth_m, quality=measured)
        beyond = outside_calibration(self.calibrated_edges, measured)
        if beyond and self.config.outside_calibration == "refuse":
            return FrameOutcome(frames.frame_number, None, (Reason.OUTSIDE_CALIBRATION,), analysis.box, timings, depth_m,
                                f"beyond the calibration's frames along {', '.join(beyond)}", quality=measured,
                                outside_calibration=beyond)
        start = time.perf_counter()
        score = float(self._engine.score_crops([analysis.crops], tta=self.config.tta)[0])
        timings["engine"] = (time.perf_counter() - start) * 1e3
        return FrameOutcome(frames.frame_number, score, (), analysis.box, timings, depth_m, quality=measured,
                            outside_calibration=beyond)

    def step(self) -> tuple[FrameSet, FrameOutcome] | None:
        """The per-frame path of check() and stream(): read a frame, check the stream is not
        stuck, then process it. None at the end of a finite source.

        A frame whose colour image repeats the previous one bit for bit carries no fresh colour
        evidence: it is skipped here (read, never scored, not seen by check()'s callers), so it
        neither counts towards the fusion's k consecutive frames nor breaks them; the stream
        guard ends the check (DEVICE_ERROR) when more repeat in a row than the rates explain."""
        t0 = time.perf_counter()
        while True:
            frames = self.next_frames()
            if frames is None:
                return None
            fault = self._guard.observe(frames)
            if fault is not None or not self._guard.stale_color:
                break
        capture_ms = (time.perf_counter() - t0) * 1e3
        if fault is not None:
            reason, message = fault
            return frames, FrameOutcome(frames.frame_number, None, (reason,), None, {"capture": capture_ms},
                                        message=message)
        outcome = self.process(frames)
        timings = dict(outcome.timings_ms)
        timings["capture"] = timings.get("capture", 0.0) + capture_ms
        return frames, FrameOutcome(outcome.frame_number, outcome.score, outcome.reasons, outcome.face_box,
                                    timings, outcome.face_depth_m, outcome.message, outcome.quality,
                                    outcome.outside_calibration)

    def outcomes(self, max_frames: int | None = None) -> list[FrameOutcome]:
        """Every frame's outcome up to ``max_frames`` (default: a check's frame budget) or the
        end of the source, through exactly check()'s per-frame path; calibration replays the
        decision rule (sdk.fusion.check_score) over them. Errors propagate."""
        budget = max_frames or self.config.max_frames or max(1, int(round(self.config.timeout_s * 30)))
        if self._source is None:
            self.open()
        collected: list[FrameOutcome] = []
        while len(collected) < budget:
            item = self.step()
            if item is None:
                break
            collected.append(item[1])
            if Reason.DEVICE_ERROR in item[1].reasons:
                break  # a stuck stream ends every check
        return collected

    def new_decider(self) -> CheckDecider:
        """The decision rule of this session's checks at its threshold."""
        return CheckDecider(self.threshold, self.config.fusion, spoof_cue_frames=self.config.spoof_cue_frames,
                            missing_modality_frames=self.config.missing_modality_frames)

    # -- public API -------------------------------------------------------------------------
    def check(
        self,
        timeout_s: float | None = None,
        on_frame: Callable[[FrameSet, FrameOutcome], None] | None = None,
    ) -> LivenessResult:
        """Read frames until the fused decision is confident, or until the timeout.

        ``on_frame`` (optional) sees every frame and what it contributed, e.g. to draw it.
        While the session is locked out (too many SPOOF decisions) it answers at once, without
        reading or scoring a frame.
        """
        locked = self._locked_result()
        if locked is not None:
            return locked
        timeout = self.config.timeout_s if timeout_s is None else check_positive("timeout_s", timeout_s)
        max_frames = self.config.max_frames or max(1, int(round(timeout * 30)))
        decider = self.new_decider()
        started = time.perf_counter()
        seen = 0
        totals: Counter[str] = Counter()
        beyond: set[str] = set()
        try:
            if self._source is None:
                self.open()
            while True:
                if seen >= max_frames or time.perf_counter() - started > timeout:
                    return self._finish(decider.undecided(Reason.TIMEOUT, frames=seen), seen, totals, beyond)
                item = self.step()
                if item is None:
                    return self._finish(decider.undecided(Reason.TIMEOUT, "the source ran out of frames before a decision"),
                                        seen, totals, beyond)
                frames, outcome = item
                seen += 1
                totals.update(outcome.timings_ms)
                beyond.update(outcome.outside_calibration)
                if on_frame is not None:
                    on_frame(frames, outcome)
                t0 = time.perf_counter()
                verdict = decider.add(outcome)
                totals["fusion"] += (time.perf_counter() - t0) * 1e3
                if verdict is not None:
                    return self._finish(verdict, seen, totals, beyond)
        except Exception as error:  # fail closed on anything, expected or not
            return self._failure(error, seen, totals)

    def stream(self) -> Iterator[LivenessResult]:
        """A result per frame: the fused decision so far (UNCERTAIN until it is confident).

        The evidence keeps accumulating after a decision (LIVE stays LIVE while every new frame
        of the same face passes); a gate failure or a new face resets it. SPOOF decisions count
        towards the lock-out (each time the stream turns SPOOF); while locked, frames are read
        but not scored and every result is UNCERTAIN (LOCKED_OUT).
        """
        fusion = TemporalFusion(self.threshold, self.config.fusion)
        was_spoof = False
        try:
            if self._source is None:
                self.open()
        except Exception as error:
            yield self._failure(error, 0, Counter())
            return
        while True:
            if self.lockout.locked:
                try:
                    if self.next_frames() is None:
                        return
                except Exception as error:
                    yield self._failure(error, 0, Counter())
                    return
                fusion.reset()
                yield self._locked_result() or self._result(Decision.UNCERTAIN, float("nan"), (Reason.LOCKED_OUT,),
                                                            None, 0, Counter())
                continue
            try:
                item = self.step()
                if item is None:
                    return
                _, outcome = item
            except Exception as error:
                yield self._failure(error, 0, Counter())
                return
            timings = Counter(outcome.timings_ms)
            if Reason.DEVICE_ERROR in outcome.reasons:
                yield self._result(Decision.UNCERTAIN, float("nan"), outcome.reasons, None, 1, timings, outcome.message)
                return
            if outcome.score is None:
                fusion.reset()
                was_spoof = False
                yield self._result(Decision.UNCERTAIN, float("nan"), outcome.reasons, outcome.face_box, 1, timings,
                                   outcome.message, outcome.outside_calibration)
                continue
            state = fusion.add(outcome.score, outcome.face_box, outcome.face_depth_m)
            decision = state.decision or Decision.UNCERTAIN
            if decision is Decision.SPOOF and not was_spoof:
                self.lockout.record_spoof()
            was_spoof = decision is Decision.SPOOF
            reasons = {Decision.SPOOF: (Reason.SPOOF_SCORE,), Decision.UNCERTAIN: (Reason.LOW_CONFIDENCE,)}.get(decision, ())
            yield self._result(decision, state.score, reasons, outcome.face_box, state.frames, timings,
                               outside=outcome.outside_calibration)

    # -- results ----------------------------------------------------------------------------
    def _locked_result(self) -> LivenessResult | None:
        remaining = self.lockout.remaining_s()
        if remaining <= 0.0:
            return None
        return self._result(Decision.UNCERTAIN, float("nan"), (Reason.LOCKED_OUT,), None, 0, Counter(),
                            f"locked out after repeated spoof decisions; try again in {remaining:.0f} s")

    def _finish(self, verdict: Verdict, seen: int, totals: Counter[str], beyond: Iterable[str] = ()) -> LivenessResult:
        message = verdict.message
        if verdict.decision is Decision.SPOOF and self.lockout.record_spoof():
            message = (message + "; " if message else "") + (
                f"locked out for {self.lockout.config.duration_s:.0f} s after {self.lockout.config.max_spoofs} spoof decisions")
        return self._result(verdict.decision, verdict.score, verdict.reasons, verdict.face_box, seen, totals, message,
                            beyond)

    def _result(self, decision: Decision, score: float, reasons: tuple[Reason, ...], box: FaceBox | None,
                frames_used: int, totals: Counter[str], message: str = "", outside: Iterable[str] = ()) -> LivenessResult:
        order = [edge.gate for edge in self.calibrated_edges]
        timings = {stage: round(totals.get(stage, 0.0) / max(frames_used, 1), 3) for stage in STAGES}
        timings["total"] = round(sum(totals.values()), 3)
        return LivenessResult(
            decision=decision,
            score=score,
            threshold=self.threshold,
            operating_point=self.operating_point,
            reasons=reasons,
            face_box=box,
            frames_used=frames_used,
            timings_ms=timings,
            model_name=self.bundle.name,
            model_version=self.bundle.version,
            message=message,
            outside_calibration=tuple(sorted(set(outside), key=lambda g: order.index(g) if g in order else len(order))),
        )

    def _failure(self, error: BaseException, seen: int, totals: Counter[str]) -> LivenessResult:
        return self._result(Decision.UNCERTAIN, float("nan"), (reason_for(error),), None, seen, totals,
                            f"{type(error).__name__}: {error}")


def reason_for(error: BaseException) -> Reason:
    """The reason code a failure is reported under (most specific class first)."""
    if isinstance(error, CaptureError):
        return Reason.DEVICE_ERROR
    if isinstance(error, InvalidScoreError):
        return Reason.INVALID_SCORE
    if isinstance(error, ModelError):
        return Reason.MODEL_ERROR
    return Reason.INTERNAL_ERROR


def _profiles_of(source: Any) -> Any:
    """The source's stream profiles (the stream guard's colour repeat limit depends on their
    rates); None when a source cannot tell, and the guard then assumes equal rates, the
    strictest limit."""
    try:
        return list(source.profiles)
    except Exception:  # a custom source without profiles: fall back to the strict limit
        return None


def _missing_modalities(frames: FrameSet, box: FaceBox) -> list[str]:
    """Streams with no signal at all where the face is (a dead sensor yields all-zero frames)."""
    h, w = frames.shape
    x0, y0 = max(0, int(box.x0)), max(0, int(box.y0))
    x1, y1 = min(w, int(box.x1) + 1), min(h, int(box.y1) + 1)
    window = (slice(y0, y1), slice(x0, x1))
    return [name for name in ("color", "ir", "depth") if not getattr(frames, name)[window].any()]
