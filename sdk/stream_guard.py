"""Stuck streams: a camera (or a replay, or an attacker's injector) that keeps sending the same thing.

A real SR300 never sends two bit-identical frames (sensor noise), and its frame numbers and
timestamps only go up. ``StreamGuard.observe`` looks at each FrameSet before it is analysed:

* the frame number or the timestamp stays the same, or colour, IR and depth are all
  bit-identical to the previous frame: a stuck stream, DEVICE_ERROR (after ``max_repeats``
  such frames in a row; default 1, since a repeated frame must never count as new evidence).
  Numbering that jumps back with new pixels is a restart (a looping replay, a device reset),
  not a stall;
* colour bit-identical to the previous frame's while the frame number advances: the frame
  carries no fresh colour evidence, so it is not scored (``stale_color``; the session skips it,
  so it neither counts towards the fusion's k consecutive frames nor resets them). Colour is
  matched to depth by time, so it repeats legitimately when its rate is lower than depth's or
  a colour frame was lost; more repeats in a row than ``color_repeat_limit`` allows (the rates'
  own repeats plus ``color_frames_lost_in_a_row`` lost colour frames) is a frozen colour
  stream (an injected still image while IR and depth move on): DEVICE_ERROR. Equal rates
  (every SR300 mode the SDK opens, the simulator, its recordings): 2 repeats pass, the 3rd ends
  the check; depth 60 / colour 30 fps: 5 pass;
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

import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from sdk.capture.integrity import constant_image, same_image
from sdk.errors import InputValidationError
from sdk.types import FrameSet, Reason, Stream

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
    #: Colour frames lost in a row that a working stream may show (each one repeats the
    #: previous colour image on the next depth frame(s)); see color_repeat_limit.
    color_frames_lost_in_a_row: int = 2

    def __post_init__(self) -> None:
        for name in ("max_repeats", "color_frames_lost_in_a_row"):
            value, least = getattr(self, name), 1 if name == "max_repeats" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise InputValidationError(f"StreamGuardConfig.{name} must be an integer >= {least}, got {value!r}")


def color_repeat_limit(depth_fps: float, color_fps: float, lost_in_a_row: int = 2) -> int:
    """Bit-identical colour images in a row (after the first) that a working stream can show.

    Each colour frame serves ceil(depth_fps / color_fps) depth frames (1 at equal rates), so the
    rates alone repeat it ceil(...) - 1 times; each colour frame lost in a row adds ceil(...)
    more. Equal rates, 2 lost: 2; depth 60 / colour 30 fps: 5.
    """
    if not (math.isfinite(depth_fps) and math.isfinite(color_fps) and depth_fps > 0 and color_fps > 0):
        raise InputValidationError(f"stream rates must be finite and > 0, got depth {depth_fps!r}, colour {color_fps!r}")
    per_color = max(1, math.ceil(depth_fps / color_fps - 1e-9))
    return per_color * (lost_in_a_row + 1) - 1


def stream_rates(profiles: Iterable[Any]) -> tuple[float, float] | None:
    """(depth fps, colour fps) from a source's stream profiles; None when either is missing."""
    rates = {p.stream: float(p.fps) for p in profiles if getattr(p, "fps", 0)}
    if Stream.DEPTH not in rates or Stream.COLOR not in rates:
        return None
    return rates[Stream.DEPTH], rates[Stream.COLOR]


class StreamGuard:
    def __init__(self, config: StreamGuardConfig | None = None) -> None:
        self.config = config or StreamGuardConfig()
        self._previous: FrameSet | None = None
        self._repeats = 0
        self._color_repeats = 0
        self._rates: tuple[float, float] | None = None
        #: whether the last observed frame's colour repeats the previous one (no fresh colour
        #: evidence: the session does not score it)
        self.stale_color = False

    @property
    def color_limit(self) -> int:
        """Colour repeats in a row this stream may show (equal rates when they are not known:
        the strictest limit any SR300 mode allows)."""
        depth_fps, color_fps = self._rates or (30.0, 30.0)
        return color_repeat_limit(depth_fps, color_fps, self.config.color_frames_lost_in_a_row)

    def reset(self, profiles: Iterable[Any] | None = None) -> None:
        """Forget the previous frames (a new source); ``profiles`` (the source's stream
        profiles) give the stream rates the colour repeat limit depends on."""
        self._previous = None
        self._repeats = 0
        self._color_repeats = 0
        self.stale_color = False
        self._rates = stream_rates(profiles) if profiles is not None else None

    def observe(self, frames: FrameSet) -> tuple[Reason, str] | None:
        """None for a healthy frame (check ``stale_color`` before scoring it), else (reason, explanation)."""
        previous, self._previous = self._previous, frames
        self.stale_color = False
        problem = ""
        if previous is not None:
            if frames.frame_number == previous.frame_number:
                problem = f"frame number {frames.frame_number} did not advance"
            elif frames.timestamp_ms == previous.timestamp_ms:
                problem = f"timestamp {frames.timestamp_ms:.3f} ms did not advance"
            elif all(same_image(getattr(frames, s), getattr(previous, s)) for s in _STREAMS):
                problem = "colour, IR and depth are identical to the previous frame"
        self._repeats = self._repeats + 1 if problem else 0
        if self._repeats >= self.config.max_repeats:
            return Reason.DEVICE_ERROR, f"the camera stream is stuck: {problem} ({self._repeats} frames in a row)"
        if previous is not None and not problem and same_image(frames.color, previous.color) \
                and not constant_image(frames.color):  # constant colour: MISSING_MODALITY's (below)
            self._color_repeats += 1
            self.stale_color = True
            if self._color_repeats > self.color_limit:
                rates = f"depth {self._rates[0]:g} / colour {self._rates[1]:g} fps" if self._rates else "equal rates"
                return Reason.DEVICE_ERROR, (
                    f"the colour image is frozen: {self._color_repeats} bit-identical repeats in a row while IR and "
                    f"depth advance (at most {self.color_limit} expected at {rates})")
            return None
        self._color_repeats = 0
        if self.config.constant_is_missing:
            dead = [s for s in _STREAMS if constant_image(getattr(frames, s))]
            if "depth" in dead and not frames.depth.flat[0]:
                lit = float(np.percentile(frames.ir[::4, ::4], 99)) >= self.config.lit_ir_level
                if not lit:  # nothing in range: an empty room, not a dead sensor
                    dead = [s for s in dead if s != "depth"]
                if "color" in dead and not frames.color.flat[0]:
                    dead.remove("color")  # rs.align blanks colour wherever depth is 0
            if dead == ["depth"] and not frames.depth.flat[0]:
                # the emitter lights something, yet no pixel decodes: the coded light is drowned
                return Reason.MISSING_MODALITY, ("no depth anywhere in the frame while the IR image is lit: strong "
                                                 "sunlight or another IR source is drowning the SR300's coded light, "
                                                 "or its projector is covered")
            if dead:
                return Reason.MISSING_MODALITY, f"{', '.join(dead)} has one constant value over the whole frame"
        return None
