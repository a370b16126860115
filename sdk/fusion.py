"""Temporal fusion: one decision from the scores of a short window of frames.

A single frame can be fooled (a lucky angle of a print, a blink); averaging a few consecutive
scored frames makes the decision steadier. The fusion never turns a missing or invalid score
into evidence for LIVE: such frames are simply not added, and the caller reports why.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from sdk.errors import InputValidationError
from sdk.types import Decision


@dataclass(frozen=True)
class FusionConfig:
    #: Scored frames averaged into the fused score.
    window: int = 5
    #: Scored frames needed before LIVE can be declared.
    min_frames_live: int = 5
    #: Scored frames after which a fused score far below threshold may end the check as SPOOF.
    min_frames_spoof: int = 3
    #: "Far below": the fused score is under threshold minus this margin.
    early_spoof_margin: float = 0.25

    def __post_init__(self) -> None:
        if not 1 <= self.min_frames_spoof <= self.window or not 1 <= self.min_frames_live <= self.window:
            raise InputValidationError("FusionConfig: min_frames_* must lie in 1..window")


@dataclass(frozen=True)
class FusedState:
    score: float  # mean P(live) over the window; nan when empty
    frames: int  # scored frames in the window
    decision: Decision | None  # None while not yet confident


class TemporalFusion:
    def __init__(self, threshold: float, config: FusionConfig = FusionConfig()) -> None:
        if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
            raise InputValidationError(f"threshold must lie in [0, 1], got {threshold}")
        self.threshold = threshold
        self.config = config
        self._scores: deque[float] = deque(maxlen=config.window)

    def reset(self) -> None:
        self._scores.clear()

    def add(self, score: float) -> FusedState:
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise InputValidationError(f"score must be a finite probability, got {score}")
        self._scores.append(float(score))
        return self.state()

    def state(self) -> FusedState:
        n = len(self._scores)
        if n == 0:
            return FusedState(float("nan"), 0, None)
        fused = sum(self._scores) / n
        cfg = self.config
        decision: Decision | None = None
        if n >= cfg.min_frames_live and fused >= self.threshold:
            decision = Decision.LIVE
        elif n >= cfg.window and fused < self.threshold:
            decision = Decision.SPOOF
        elif n >= cfg.min_frames_spoof and fused < self.threshold - cfg.early_spoof_margin:
            decision = Decision.SPOOF
        return FusedState(fused, n, decision)
