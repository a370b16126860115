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
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from sdk.engine import Engine, ModelBundle, create_engine
from sdk.errors import CaptureError, InvalidScoreError, LivenessError, ModelError
from sdk.fusion import FusionConfig, TemporalFusion
from sdk.types import Decision, FaceBox, FrameSet, LivenessResult, Reason

#: Gate reasons that are themselves evidence of an attack (a face on a phone is physically small).
SPOOF_CUES = frozenset({Reason.IMPLAUSIBLE_FACE_SIZE})
STAGES = ("capture", "detect", "crops", "quality", "engine", "fusion")


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
    detector: str = "auto"
    tta: bool = True
    #: Frames with a spoof cue (e.g. implausible physical face size) that end a check as SPOOF.
    spoof_cue_frames: int = 3
    quality: Any = None  # sdk.quality.QualityConfig; None: its defaults


@dataclass(frozen=True)
class FrameOutcome:
    """What one frame contributed: a score, or the gate reasons it failed."""

    frame_number: int
    score: float | None
    reasons: tuple[Reason, ...]
    face_box: FaceBox | None
    timings_ms: dict[str, float]


class LivenessSession:
    def __init__(self, source: Any = None, model: Any = None, config: SessionConfig | None = None) -> None:
        self.config = config or SessionConfig()
        # The model is loaded and verified up front: a broken bundle is a typed error now, not a
        # silent LIVE later.
        self.bundle = model if isinstance(model, ModelBundle) else ModelBundle.load(model)
        point = self.bundle.operating_point(self.config.operating_point)
        self.operating_point = point.name if self.config.threshold is None else "custom"
        self.threshold = point.threshold if self.config.threshold is None else float(self.config.threshold)
        if not (math.isfinite(self.threshold) and 0.0 < self.threshold <= 1.0):
            raise ModelError(f"threshold must lie in (0, 1], got {self.threshold}")
        self._source_spec = source
        self._source: Any = None
        self._frames: Iterator[FrameSet] | None = None
        self._engine: Engine | None = None
        self._pipeline: Any = None

    # -- lifecycle --------------------------------------------------------------------------
    def open(self) -> "LivenessSession":
        from sdk.capture import open_source
        from sdk.detect.pipeline import FacePipeline

        if self._engine is None:
            self._engine = create_engine(self.config.engine, self.bundle.model_path, **self.config.engine_options)
        if self._pipeline is None:
            self._pipeline = FacePipeline(detector=self.config.detector, quality=self.config.quality)
        if self._source is None:
            self._source = open_source(self._source_spec)
            self._frames = iter(self._source)
        return self

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
        if analysis.box is not None and _missing_modalities(frames, analysis.box):
            return FrameOutcome(frames.frame_number, None, (Reason.MISSING_MODALITY,), analysis.box, timings)
        if not analysis.quality.passed or analysis.crops is None:
            reasons = tuple(analysis.quality.reasons) or (Reason.NO_FACE,)
            return FrameOutcome(frames.frame_number, None, reasons, analysis.box, timings)
        start = time.perf_counter()
        score = float(self._engine.score_crops([analysis.crops], tta=self.config.tta)[0])
        timings["engine"] = (time.perf_counter() - start) * 1e3
        return FrameOutcome(frames.frame_number, score, (), analysis.box, timings)

    # -- public API -------------------------------------------------------------------------
    def check(
        self,
        timeout_s: float | None = None,
        on_frame: Callable[[FrameSet, FrameOutcome], None] | None = None,
    ) -> LivenessResult:
        """Read frames until the fused decision is confident, or until the timeout.

        ``on_frame`` (optional) sees every frame and what it contributed, e.g. to draw it.
        """
        timeout = self.config.timeout_s if timeout_s is None else float(timeout_s)
        max_frames = self.config.max_frames or max(1, int(round(timeout * 30)))
        fusion = TemporalFusion(self.threshold, self.config.fusion)
        started = time.perf_counter()
        seen = 0
        gate_reasons: Counter[Reason] = Counter()
        totals: Counter[str] = Counter()
        last_box: FaceBox | None = None
        try:
            if self._source is None:
                self.open()
            while True:
                if seen >= max_frames or time.perf_counter() - started > timeout:
                    return self._undecided(fusion, gate_reasons, Reason.TIMEOUT, seen, totals, last_box)
                t0 = time.perf_counter()
                frames = self.next_frames()
                totals["capture"] += (time.perf_counter() - t0) * 1e3
                if frames is None:
                    return self._undecided(fusion, gate_reasons, Reason.TIMEOUT, seen, totals, last_box,
                                           message="the source ran out of frames before a decision")
                seen += 1
                outcome = self.process(frames)
                totals.update(outcome.timings_ms)
                if on_frame is not None:
                    on_frame(frames, outcome)
                if outcome.score is None:
                    gate_reasons.update(outcome.reasons)
                    cues = sum(gate_reasons[r] for r in SPOOF_CUES)
                    if cues >= self.config.spoof_cue_frames:
                        return self._result(Decision.SPOOF, fusion.state().score, tuple(r for r in SPOOF_CUES if gate_reasons[r]),
                                            outcome.face_box, seen, totals, "the face is not physically plausible")
                    continue
                last_box = outcome.face_box
                t0 = time.perf_counter()
                state = fusion.add(outcome.score)
                totals["fusion"] += (time.perf_counter() - t0) * 1e3
                if state.decision is Decision.LIVE:
                    return self._result(Decision.LIVE, state.score, (), last_box, seen, totals)
                if state.decision is Decision.SPOOF:
                    return self._result(Decision.SPOOF, state.score, (Reason.SPOOF_SCORE,), last_box, seen, totals)
        except Exception as error:  # fail closed on anything, expected or not
            return self._failure(error, seen, totals)

    def stream(self) -> Iterator[LivenessResult]:
        """A result per frame: the fused decision so far (UNCERTAIN until it is confident)."""
        fusion = TemporalFusion(self.threshold, self.config.fusion)
        try:
            if self._source is None:
                self.open()
        except Exception as error:
            yield self._failure(error, 0, Counter())
            return
        while True:
            try:
                t0 = time.perf_counter()
                frames = self.next_frames()
                capture_ms = (time.perf_counter() - t0) * 1e3
                if frames is None:
                    return
                outcome = self.process(frames)
            except Exception as error:
                yield self._failure(error, 0, Counter())
                return
            timings = Counter(outcome.timings_ms)
            timings["capture"] += capture_ms
            if outcome.score is None:
                yield self._result(Decision.UNCERTAIN, float("nan"), outcome.reasons, outcome.face_box, 1, timings)
                continue
            state = fusion.add(outcome.score)
            decision = state.decision or Decision.UNCERTAIN
            reasons = {Decision.SPOOF: (Reason.SPOOF_SCORE,), Decision.UNCERTAIN: (Reason.LOW_CONFIDENCE,)}.get(decision, ())
            yield self._result(decision, state.score, reasons, outcome.face_box, state.frames, timings)

    # -- results ----------------------------------------------------------------------------
    def _result(self, decision: Decision, score: float, reasons: tuple[Reason, ...], box: FaceBox | None,
                frames_used: int, totals: Counter[str], message: str = "") -> LivenessResult:
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
        )

    def _undecided(self, fusion: TemporalFusion, gate_reasons: Counter[Reason], why: Reason, seen: int,
                   totals: Counter[str], box: FaceBox | None, message: str = "") -> LivenessResult:
        state = fusion.state()
        # The most frequent gate failures tell the user what to change (move closer, more light).
        reasons = (why,) + tuple(r for r, _ in gate_reasons.most_common(3))
        if state.frames and state.score < self.threshold:
            reasons += (Reason.LOW_CONFIDENCE,)
        text = message or f"no confident decision within {seen} frames"
        return self._result(Decision.UNCERTAIN, state.score, reasons, box, seen, totals, text)

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


def _missing_modalities(frames: FrameSet, box: FaceBox) -> list[str]:
    """Streams with no signal at all where the face is (a dead sensor yields all-zero frames)."""
    h, w = frames.shape
    x0, y0 = max(0, int(box.x0)), max(0, int(box.y0))
    x1, y1 = min(w, int(box.x1) + 1), min(h, int(box.y1) + 1)
    window = (slice(y0, y1), slice(x0, x1))
    return [name for name in ("color", "ir", "depth") if not getattr(frames, name)[window].any()]
