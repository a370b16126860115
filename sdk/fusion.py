"""Temporal fusion: one decision from the frames of a check, built so that it cannot be gamed.

A single frame can be fooled (a lucky angle of a print, a glint on a mask), so no single frame,
and no average that a few lucky frames can lift, decides LIVE. The rule (docs/decisions.md):

* **Track.** Scored frames count only while they show the same face: the box overlaps the
  previous one (IoU >= ``min_track_iou``) and the face depth moved less than
  ``max_track_depth_jump_m``. A change of face, a frame that fails a quality gate or a missing
  modality resets the evidence: an attacker cannot pick lucky frames out of a long stream.
* **LIVE** needs ``min_frames_live`` (k) consecutive scored frames of the track that EACH pass
  the threshold, and the window statistic passing too.
* **Window statistic**: the geometric mean of the last ``window`` scores of the track. A log
  mean is bounded above by 0 and unbounded below, so one frame far below the threshold pulls
  it down more than one frame far above can lift it (scores are floored at ``score_floor``).
* **SPOOF**: the statistic over a full window is below the threshold, or, after
  ``min_frames_spoof`` frames, below threshold minus ``early_spoof_margin``.

Every condition is monotone in the threshold (a lower threshold only makes LIVE easier and
SPOOF harder) and everything else (tracks, resets, statistics) does not depend on it, so a
recorded check has one "check score": the highest threshold at which it would have been LIVE
(``check_score``). Calibration sets thresholds on exactly that number, so an operating point's
APCER is the share of attack checks the device would have accepted.
"""
from __future__ import annotations

import math
import struct
from collections import Counter, deque
from dataclasses import dataclass
from typing import Iterable

from sdk.errors import InputValidationError
from sdk.types import Decision, FaceBox, FrameOutcome, Reason

#: Gate reasons that are themselves evidence of an attack: a face on a phone is physically small,
#: a face measured flat has a sheet's shape.
SPOOF_CUES = frozenset({Reason.IMPLAUSIBLE_FACE_SIZE, Reason.FLAT_FACE})


@dataclass(frozen=True)
class FusionConfig:
    #: Scored frames of the current track the window statistic covers.
    window: int = 8
    #: k: consecutive scored frames of one track, each passing the threshold, needed for LIVE.
    min_frames_live: int = 5
    #: Scored frames after which a statistic far below threshold may end the check as SPOOF.
    min_frames_spoof: int = 3
    #: "Far below": the statistic is under threshold minus this margin.
    early_spoof_margin: float = 0.25
    #: Box overlap with the previous scored frame under which the face counts as a new one.
    min_track_iou: float = 0.3
    #: Face depth change (metres) between consecutive scored frames that starts a new track.
    max_track_depth_jump_m: float = 0.10
    #: Scores are floored here inside the log mean (a 0.0 frame still weighs heavily, not infinitely).
    score_floor: float = 1e-4

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise InputValidationError(f"FusionConfig.window must be a positive integer, got {self.window!r}")
        if not 1 <= self.min_frames_spoof <= self.window or not 1 <= self.min_frames_live <= self.window:
            raise InputValidationError("FusionConfig: min_frames_* must lie in 1..window")
        for name in ("early_spoof_margin", "min_track_iou", "max_track_depth_jump_m", "score_floor"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InputValidationError(f"FusionConfig.{name} must be a finite number >= 0, got {value!r}")
        if not 0.0 < self.score_floor < 1.0 or self.min_track_iou > 1.0:
            raise InputValidationError("FusionConfig: score_floor must lie in (0, 1) and min_track_iou in [0, 1]")

    def to_dict(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class FusedState:
    score: float  # window statistic (geometric mean of P(live)); nan when the window is empty
    frames: int  # scored frames in the window
    decision: Decision | None  # None while not yet confident
    run: int = 0  # consecutive scored frames of the track at or above the threshold


def _check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
        math.isfinite(threshold) and 0.0 <= threshold <= 1.0
    ):
        raise InputValidationError(f"threshold must lie in [0, 1], got {threshold}")
    return float(threshold)


class TemporalFusion:
    """The window of one face track and the decision it supports at ``threshold``."""

    def __init__(self, threshold: float, config: FusionConfig = FusionConfig()) -> None:
        self.threshold = _check_threshold(threshold)
        self.config = config
        self._logs: deque[float] = deque(maxlen=config.window)
        self._run = 0
        self._box: FaceBox | None = None
        self._depth = float("nan")

    def reset(self) -> None:
        """Forget the evidence (a gate failure, a missing modality, a new face)."""
        self._logs.clear()
        self._run = 0
        self._box = None
        self._depth = float("nan")

    def same_track(self, box: FaceBox | None, depth_m: float) -> bool:
        """Whether a frame with this box and depth continues the current track."""
        if self._box is not None and box is not None and self._box.iou(box) < self.config.min_track_iou:
            return False
        if math.isfinite(self._depth) and math.isfinite(depth_m):
            return abs(depth_m - self._depth) <= self.config.max_track_depth_jump_m
        return True

    def add(self, score: float, box: FaceBox | None = None, depth_m: float = float("nan")) -> FusedState:
        """Add one scored frame; ``box`` and ``depth_m`` (when given) keep the track honest."""
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not (
            math.isfinite(score) and 0.0 <= score <= 1.0
        ):
            raise InputValidationError(f"score must be a finite probability, got {score}")
        if self._logs and not self.same_track(box, depth_m):
            self.reset()
        self._logs.append(math.log(max(float(score), self.config.score_floor)))
        self._run = self._run + 1 if score >= self.threshold else 0
        if box is not None:
            self._box = box
        if math.isfinite(depth_m):
            self._depth = float(depth_m)
        return self.state()

    def state(self) -> FusedState:
        n = len(self._logs)
        if n == 0:
            return FusedState(float("nan"), 0, None, 0)
        statistic = math.exp(sum(self._logs) / n)
        cfg = self.config
        decision: Decision | None = None
        if self._run >= cfg.min_frames_live and statistic >= self.threshold:
            decision = Decision.LIVE
        elif n >= cfg.window and statistic < self.threshold:
            decision = Decision.SPOOF
        elif n >= cfg.min_frames_spoof and statistic < self.threshold - cfg.early_spoof_margin:
            decision = Decision.SPOOF
        return FusedState(statistic, n, decision, self._run)


@dataclass(frozen=True)
class Verdict:
    """How a check ended (the session turns it into a LivenessResult)."""

    decision: Decision
    score: float
    reasons: tuple[Reason, ...]
    face_box: FaceBox | None
    message: str = ""


class CheckDecider:
    """The whole per-check decision rule over frame outcomes; ``LivenessSession.check`` and
    calibration both use it, so a calibrated threshold means what the device does.

    * a DEVICE_ERROR outcome (stuck stream) ends the check at once (UNCERTAIN);
    * ``missing_modality_frames`` MISSING_MODALITY outcomes in a row end it (UNCERTAIN);
    * ``spoof_cue_frames`` frames with a spoof cue (IMPLAUSIBLE_FACE_SIZE, FLAT_FACE) end it as SPOOF;
    * any unscored frame resets the fusion's evidence; scored frames go to TemporalFusion.
    """

    def __init__(self, threshold: float, config: FusionConfig = FusionConfig(), *, spoof_cue_frames: int = 3,
                 missing_modality_frames: int = 3) -> None:
        if spoof_cue_frames < 1 or missing_modality_frames < 1:
            raise InputValidationError("spoof_cue_frames and missing_modality_frames must be >= 1")
        self.fusion = TemporalFusion(threshold, config)
        self.spoof_cue_frames = int(spoof_cue_frames)
        self.missing_modality_frames = int(missing_modality_frames)
        self.gate_reasons: Counter[Reason] = Counter()
        self._missing_in_a_row = 0
        self.last_box: FaceBox | None = None

    @property
    def threshold(self) -> float:
        return self.fusion.threshold

    def add(self, outcome: FrameOutcome) -> Verdict | None:
        """One frame's outcome; a Verdict when the check is over, else None."""
        if Reason.DEVICE_ERROR in outcome.reasons:
            return Verdict(Decision.UNCERTAIN, float("nan"), (Reason.DEVICE_ERROR,), None,
                           outcome.message or "the camera stream is stuck")
        if Reason.MISSING_MODALITY in outcome.reasons:
            self._missing_in_a_row += 1
            self.fusion.reset()
            if self._missing_in_a_row >= self.missing_modality_frames:
                return Verdict(Decision.UNCERTAIN, float("nan"), (Reason.MISSING_MODALITY,), None,
                               outcome.message or f"a modality had no signal for {self._missing_in_a_row} frames")
            return None
        self._missing_in_a_row = 0
        if outcome.score is None:
            self.fusion.reset()  # a gate failure breaks the run: frames cannot be picked out of a stream
            self.gate_reasons.update(outcome.reasons)
            cues = sum(self.gate_reasons[r] for r in SPOOF_CUES)
            if cues >= self.spoof_cue_frames:
                # The cue seen on most frames first, ties by name: iterating the frozenset would give
                # an order that changes with Python's per-process string hashing.
                seen = sorted((r for r in SPOOF_CUES if self.gate_reasons[r]),
                              key=lambda r: (-self.gate_reasons[r], r.value))
                return Verdict(Decision.SPOOF, float("nan"), tuple(seen),
                               outcome.face_box, "the face is not physically plausible")
            return None
        self.last_box = outcome.face_box
        state = self.fusion.add(outcome.score, outcome.face_box, outcome.face_depth_m)
        if state.decision is Decision.LIVE:
            return Verdict(Decision.LIVE, state.score, (), outcome.face_box)
        if state.decision is Decision.SPOOF:
            return Verdict(Decision.SPOOF, state.score, (Reason.SPOOF_SCORE,), outcome.face_box)
        return None

    def undecided(self, why: Reason, message: str = "", frames: int = 0) -> Verdict:
        """The UNCERTAIN verdict when the check runs out of time or frames."""
        state = self.fusion.state()
        # The most frequent gate failures tell the user what to change (move closer, more light).
        reasons = (why,) + tuple(r for r, _ in self.gate_reasons.most_common(3))
        if state.frames and state.score < self.threshold:
            reasons += (Reason.LOW_CONFIDENCE,)
        return Verdict(Decision.UNCERTAIN, state.score, reasons, self.last_box,
                       message or f"no confident decision within {frames} frames")


def decide(outcomes: Iterable[FrameOutcome], threshold: float, config: FusionConfig = FusionConfig(), *,
           spoof_cue_frames: int = 3, missing_modality_frames: int = 3) -> tuple[Verdict, int]:
    """Replay a check over recorded outcomes: (verdict, frames read). Running out of outcomes
    gives UNCERTAIN (TIMEOUT), as the session does when its frame budget ends."""
    decider = CheckDecider(threshold, config, spoof_cue_frames=spoof_cue_frames,
                           missing_modality_frames=missing_modality_frames)
    seen = 0
    for outcome in outcomes:
        seen += 1
        verdict = decider.add(outcome)
        if verdict is not None:
            return verdict, seen
    return decider.undecided(Reason.TIMEOUT, frames=seen), seen


def _bits(value: float) -> int:
    return struct.unpack("<q", struct.pack("<d", value))[0]


def _float(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<q", bits))[0]


def check_score(outcomes: Iterable[FrameOutcome], config: FusionConfig = FusionConfig(), *,
                spoof_cue_frames: int = 3, missing_modality_frames: int = 3) -> float:
    """The highest threshold in [0, 1] at which this check ends LIVE (0.0 when none above 0 does).

    LIVE(t) is monotone (module docstring), so for every threshold t > 0: the check is LIVE at t
    exactly when ``check_score >= t``. Found by bisection over the bit patterns of the
    non-negative doubles (ordered like the numbers), so the result is exact, not approximate.
    """
    items = list(outcomes)
    options = {"spoof_cue_frames": spoof_cue_frames, "missing_modality_frames": missing_modality_frames}

    def live(t: float) -> bool:
        return decide(items, t, config, **options)[0].decision is Decision.LIVE

    if live(1.0):
        return 1.0
    if not live(0.0):
        return 0.0
    low, high = _bits(0.0), _bits(1.0)  # live(low), not live(high)
    while high - low > 1:
        mid = (low + high) // 2
        if live(_float(mid)):
            low = mid
        else:
            high = mid
    return _float(low)
