"""Stuck streams: a camera (or a replay, or an attacker's injector) that keeps sending the same thing.

A real SR300 never sends two bit-identical frames (sensor noise), and its frame numbers and
timestamps only go up. ``StreamGuard.observe`` looks at each FrameSet before it is analysed:

* the frame number or the timestamp stays the same, or colour, IR and depth are all
  bit-identical to the previous frame: a stuck stream, DEVICE_ERROR (after ``max_repeats``
  such frames in a row; default 1, since a repeated frame must never count as new evidence).
  Numbering that jumps back with new pixels is a restart (a looping replay, a device reset),
  not a stall;
* a modality with one constant value over the whole frame (a dead or covered sensor, depth
  killed by sunlight): MISSING_MODALITY for that frame (the check ends after a few in a row).
  Two exceptions keep an empty room from reading as a broken camera: depth that is zero
  everywhere is "nothing in range" unless the IR image shows something lit by the emitter
  (IR 99th percentile >= ``lit_ir_level``), and colour blanked everywhere is what rs.align
  makes of a frame without depth.

The checks look at a subsample first and confirm on the full frame, so a normal frame costs
well under a millisecond.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdk.errors import InputValidationError
from sdk.types import FrameSet, Reason

_STREAMS = ("color", "ir", "depth")


@dataclass(frozen=True)
class StreamGuardConfig:
    #: Non-advancing or identical frames in a row that mean the stream is stuck.
    max_repeats: int = 1
    #: Whether a modality with one constant value counts as missing.
    constant_is_missing: bool = True
    #: IR level (99th percentile, 0-255) above which something is close enough to have depth.
    #: Empty simulator rooms measure at most 15; faces in range 10-225 (mean over the face).
    lit_ir_level: float = 40.0

    def __post_init__(self) -> None:
        if isinstance(self.max_repeats, bool) or not isinstance(self.max_repeats, int) or self.max_repeats < 1:
            raise InputValidationError(f"StreamGuardConfig.max_repeats must be a positive integer, got {self.max_repeats!r}")


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a[::7, ::7], b[::7, ::7]) and np.array_equal(a, b)


def _constant(a: np.ndarray) -> bool:
    sample = a[::5, ::5]
    first = sample.flat[0]
    return bool((sample == first).all()) and bool((a == first).all())


class StreamGuard:
    def __init__(self, config: StreamGuardConfig | None = None) -> None:
        self.config = config or StreamGuardConfig()
        self._previous: FrameSet | None = None
        self._repeats = 0

    def reset(self) -> None:
        self._previous = None
        self._repeats = 0

    def observe(self, frames: FrameSet) -> tuple[Reason, str] | None:
        """None for a healthy frame, else (reason, explanation)."""
        previous, self._previous = self._previous, frames
        problem = ""
        if previous is not None:
            if frames.frame_number == previous.frame_number:
                problem = f"frame number {frames.frame_number} did not advance"
            elif frames.timestamp_ms == previous.timestamp_ms:
                problem = f"timestamp {frames.timestamp_ms:.3f} ms did not advance"
            elif all(_same(getattr(frames, s), getattr(previous, s)) for s in _STREAMS):
                problem = "colour, IR and depth are identical to the previous frame"
        self._repeats = self._repeats + 1 if problem else 0
        if self._repeats >= self.config.max_repeats:
            return Reason.DEVICE_ERROR, f"the camera stream is stuck: {problem} ({self._repeats} frames in a row)"
        if self.config.constant_is_missing:
            dead = [s for s in _STREAMS if _constant(getattr(frames, s))]
            if "depth" in dead and not frames.depth.flat[0]:
                lit = float(np.percentile(frames.ir[::4, ::4], 99)) >= self.config.lit_ir_level
                if not lit:  # nothing in range: an empty room, not a dead sensor
                    dead = [s for s in dead if s != "depth"]
                if "color" in dead and not frames.color.flat[0]:
                    dead.remove("color")  # rs.align blanks colour wherever depth is 0
            if dead:
                return Reason.MISSING_MODALITY, f"{', '.join(dead)} has one constant value over the whole frame"
        return None
