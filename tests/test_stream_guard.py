"""The session's stuck-stream guard and the sources' integrity checks on hand-made FrameSets.

Colour that repeats bit for bit while IR and depth advance carries no fresh colour evidence: it
is not scored, and more repeats in a row than the stream rates explain end the check. A clock
that leaps ahead while frame numbers stay consecutive ends the check too (tests/test_faults_source.py
runs both through a real session with the virtual SR300)."""
from __future__ import annotations

import numpy as np
import pytest

import sdk.capture.integrity as integrity
import sdk.stream_guard as stream_guard
from sdk.capture import SimulatorSource, Source, StreamProfile
from sdk.capture.integrity import StreamIntegrity, constant_image, same_image
from sdk.engine.bundle import write_bundle
from sdk.errors import InputValidationError, StreamIntegrityError
from sdk.session import LivenessSession, SessionConfig
from sdk.stream_guard import StreamGuard, StreamGuardConfig, color_repeat_limit, stream_rates
from sdk.types import Decision, DeviceInfo, FrameSet, Intrinsics, Reason, Stream, StreamIntrinsics
from tests.conftest import tiny_onnx_model

W, H = 64, 48
_INTR = Intrinsics(W, H, fx=47.5, fy=47.25, ppx=31.5, ppy=24.0)
INTR = StreamIntrinsics(color=_INTR, ir=_INTR, depth=_INTR)
DEVICE = DeviceInfo("Intel RealSense SR300", "SIM000042", "3.26.1.0", "SR300", origin="simulator")


def frames(n: int, *, colour_every: int = 1, step_ms: float = 1000.0 / 30.0, seed: int = 0) -> list[FrameSet]:
    """n FrameSets with fresh IR and depth each; colour changes every ``colour_every`` frames."""
    rng = np.random.default_rng(seed)
    out: list[FrameSet] = []
    colour = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    for i in range(n):
        if i % colour_every == 0:
            colour = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        out.append(FrameSet(colour, rng.integers(0, 256, (H, W), dtype=np.uint8),
                            rng.integers(1500, 9000, (H, W)).astype(np.uint16), 0.000125, INTR,
                            1000.0 + i * step_ms, i + 1, DEVICE))
    return out


def profiles(depth_fps: int, colour_fps: int) -> list[StreamProfile]:
    return [StreamProfile(Stream.DEPTH, "z16", W, H, depth_fps), StreamProfile(Stream.IR, "y8", W, H, depth_fps),
            StreamProfile(Stream.COLOR, "rgb8", W, H, colour_fps)]


def test_colour_repeat_limit_follows_the_rates():
    assert color_repeat_limit(30, 30) == 2  # two colour frames lost in a row
    assert color_repeat_limit(60, 30) == 5  # one repeat per colour frame by the rates, plus two lost
    assert color_repeat_limit(10, 30) == 2  # colour faster than depth: never repeats by the rates
    assert color_repeat_limit(30, 30, lost_in_a_row=0) == 0
    assert color_repeat_limit(30, 15, lost_in_a_row=1) == 3
    for bad in ((0, 30), (30, float("nan")), (-1, 30)):
        with pytest.raises(InputValidationError):
            color_repeat_limit(*bad)
    with pytest.raises(InputValidationError):
        StreamGuardConfig(color_frames_lost_in_a_row=-1)
    assert stream_rates(profiles(60, 30)) == (60.0, 30.0)
    assert stream_rates(profiles(60, 30)[:2]) is None


def test_repeated_colour_is_not_scored_and_a_long_run_is_a_frozen_stream():
    guard = StreamGuard()
    guard.reset(profiles(30, 30))
    stream = frames(8, colour_every=100)  # colour frozen from the first frame on
    assert guard.observe(stream[0]) is None and not guard.stale_color
    for k in (1, 2):  # two repeats: colour frames lost, not yet a fault
        assert guard.observe(stream[k]) is None and guard.stale_color
    fault = guard.observe(stream[3])
    assert fault is not None and fault[0] is Reason.DEVICE_ERROR
    assert "colour image is frozen: 3 bit-identical repeats" in fault[1] and "depth 30 / colour 30 fps" in fault[1]


def test_colour_at_half_the_depth_rate_never_trips_the_rule():
    guard = StreamGuard()
    guard.reset(profiles(60, 30))
    stale = []
    for frame in frames(40, colour_every=2):
        assert guard.observe(frame) is None
        stale.append(guard.stale_color)
    assert stale == [False, True] * 20  # every second frame carries no fresh colour
    # ... and up to two lost colour frames on top: 5 repeats in a row pass, the 6th does not
    guard.reset(profiles(60, 30))
    run = frames(7, colour_every=100)
    assert all(guard.observe(f) is None for f in run[:6])
    assert guard.observe(run[6])[0] is Reason.DEVICE_ERROR


def test_unknown_rates_fall_back_to_the_strict_limit_and_fresh_colour_resets_the_run():
    guard = StreamGuard()
    guard.reset(None)
    assert guard.color_limit == 2
    stream = frames(9, colour_every=3)  # two repeats, then fresh colour, again and again
    assert all(guard.observe(f) is None for f in stream)


def test_constant_colour_is_left_to_the_missing_modality_rule():
    guard = StreamGuard()
    black = [FrameSet(np.zeros((H, W, 3), np.uint8), f.ir, f.depth, f.depth_scale, f.intrinsics, f.timestamp_ms,
                      f.frame_number, f.device) for f in frames(5)]
    results = [guard.observe(f) for f in black]
    assert not guard.stale_color
    assert results[-1] is None or results[-1][0] is Reason.MISSING_MODALITY


def test_depth_lost_under_a_lit_ir_image_names_sunlight_and_an_empty_room_does_not_count():
    """Zero depth everywhere while the IR image is lit is what sunlight does to coded light (the
    simulator's sunny sessions, e.g. `check --source live --seed 0`): the reason says so. Zero
    depth over a dark IR image is an empty room, not a missing modality."""
    guard = StreamGuard()
    base = frames(1)[0]
    rng = np.random.default_rng(1)

    def with_ir(level: int) -> FrameSet:
        ir = np.clip(rng.normal(level, 3, (H, W)), 0, 255).astype(np.uint8)
        return FrameSet(np.zeros((H, W, 3), np.uint8), ir, np.zeros((H, W), np.uint16), base.depth_scale, base.intrinsics,
                        base.timestamp_ms, base.frame_number, base.device)

    guard.reset(None)
    reason, message = guard.observe(with_ir(170))
    assert reason is Reason.MISSING_MODALITY and "sunlight" in message and "IR image is lit" in message
    guard.reset(None)
    assert guard.observe(with_ir(5)) is None
    # a constant non-zero depth (a stuck sensor) keeps the plain message
    guard.reset(None)
    stuck = FrameSet(base.color, base.ir, np.full((H, W), 1234, np.uint16), base.depth_scale, base.intrinsics,
                     base.timestamp_ms, base.frame_number, base.device)
    reason, message = guard.observe(stuck)
    assert reason is Reason.MISSING_MODALITY and message == "depth has one constant value over the whole frame"


def test_one_frozen_frame_test_for_both_guards():
    """Integrity (capture) and the stream guard (session) share the one comparison."""
    assert stream_guard.same_image is integrity.same_image
    assert stream_guard.constant_image is integrity.constant_image
    a = np.arange(H * W, dtype=np.uint16).reshape(H, W)
    b = a.copy()
    assert same_image(a, b)
    b[H - 1, W - 1] += 1  # outside the subsample: the full comparison still sees it
    assert not same_image(a, b) and not same_image(a, a[:, :-1])
    assert constant_image(np.zeros((H, W), np.uint8)) and not constant_image(a)


def test_clock_leap_with_consecutive_frame_numbers_is_an_integrity_error():
    check = StreamIntegrity()
    first, second = frames(2)
    check.check(first)
    leapt = FrameSet(second.color, second.ir, second.depth, second.depth_scale, second.intrinsics,
                     first.timestamp_ms + 1500.0, first.frame_number + 1, second.device)
    with pytest.raises(StreamIntegrityError, match="clock leapt ahead by 1500.0 ms while the frame number advanced by 1"):
        check.check(leapt)


def test_lost_frames_and_restarts_are_no_clock_leap():
    check = StreamIntegrity()
    stream = frames(6, step_ms=400.0)  # 2.5 fps: slower than any SR300 mode, still < 1 s per frame
    for frame in stream:
        check.check(frame)
    last = stream[-1]
    # 3 frames lost: 4 steps of the frame number in 3.9 s
    later = FrameSet(last.color, np.roll(last.ir, 1), np.roll(last.depth, 1), last.depth_scale, last.intrinsics,
                     last.timestamp_ms + 3900.0, last.frame_number + 4, last.device)
    check.check(later)
    check.check(frames(1, seed=5)[0])  # numbering and clock back at the start: a looping replay


class _HalfRateColour(Source):
    """The virtual SR300 with depth at 60 fps and colour at 30: every second set repeats colour."""

    def __init__(self) -> None:
        self.inner = SimulatorSource("live", 1)
        self._previous: FrameSet | None = None

    @property
    def device_info(self) -> DeviceInfo:
        return self.inner.device_info

    @property
    def profiles(self) -> list[StreamProfile]:
        return [StreamProfile(p.stream, p.format, p.width, p.height, 30 if p.stream is Stream.COLOR else 60)
                for p in self.inner.profiles]

    def _next_frameset(self) -> FrameSet:
        frames = next(self.inner)
        if self._previous is not None and frames.frame_number % 2 == 0:
            frames = FrameSet(self._previous.color, frames.ir, frames.depth, frames.depth_scale, frames.intrinsics,
                              frames.timestamp_ms, frames.frame_number, frames.device)
        self._previous = frames
        return frames

    def _release(self) -> None:
        self.inner.close()


def test_a_legitimate_half_rate_colour_stream_is_live_on_fresh_frames_only(tmp_path):
    model = tiny_onnx_model(tmp_path / "m.onnx", weights=(0.0, 0.0, 0.0), bias=5.0)
    bundle = write_bundle(tmp_path / "b", model, name="always-live", version="0.0.1",
                          operating_points={"default": {"threshold": 0.5}}, default_operating_point="default")
    seen = []
    with LivenessSession(_HalfRateColour(), bundle.path, SessionConfig(max_frames=12, timeout_s=30)) as session:
        result = session.check(on_frame=lambda frames, outcome: seen.append(frames.frame_number))
    assert result.decision is Decision.LIVE and result.frames_used == 5  # k = 5 scored frames
    assert seen == [1, 3, 5, 7, 9]  # the repeats (even frames) were read but never scored
