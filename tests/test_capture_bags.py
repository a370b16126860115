"""Capture layer: bag writing and deterministic replay (round trips and every error path).

Bags are small (64x48 frames unless a test needs 640x480) and written in tmp_path. Every
librealsense playback that could hang runs either with a short frame timeout or in a
subprocess with a timeout, so the suite can never hang.
"""
from __future__ import annotations

import math

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

rs = pytest.importorskip("pyrealsense2", reason="pyrealsense2 (extra 'camera') is not installed")

from sdk.capture import BagReplay, check_bag, open_source, write_bag  # noqa: E402
from sdk.capture.bagfile import MAGIC  # noqa: E402
from sdk.errors import BagFormatError, FrameTimeoutError, InputValidationError, MissingStreamError  # noqa: E402
from sdk.types import DeviceInfo, Extrinsics, FrameSet, Intrinsics, Stream, StreamIntrinsics  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
W, H = 64, 48
DEPTH_INTR = Intrinsics(W, H, fx=47.5, fy=47.25, ppx=31.5, ppy=24.0, model="inverse_brown_conrady")
COLOR_INTR = Intrinsics(W, H, fx=61.5, fy=61.5, ppx=31.8, ppy=24.25, model="brown_conrady")
INTR = StreamIntrinsics(color=COLOR_INTR, ir=DEPTH_INTR, depth=DEPTH_INTR)
DEVICE = DeviceInfo("Intel RealSense SR300", "SIM000042", "3.26.1.0", "SR300", origin="simulator")
SCALE = 0.000125


def make_framesets(n: int, seed: int = 0, *, holes: bool = True, start: int = 1) -> list[FrameSet]:
    """Random but valid FrameSets (with depth holes, which rs.align would blank in colour)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        depth = rng.integers(1500, 9000, (H, W)).astype(np.uint16)
        if holes:
            depth[rng.random((H, W)) < 0.1] = 0
        out.append(
            FrameSet(
                color=rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
                ir=rng.integers(0, 256, (H, W), dtype=np.uint8),
                depth=depth,
                depth_scale=SCALE,
                intrinsics=INTR,
                timestamp_ms=1000.0 + (start + i) * 1000.0 / 30.0,
                frame_number=start + i,
                device=DEVICE,
            )
        )
    return out


def write(path: Path, framesets: list[FrameSet], **kwargs) -> Path:
    write_bag(path, framesets, DEVICE, INTR, SCALE, Extrinsics(), fps=30, **kwargs)
    return path


@pytest.fixture(scope="module")
def frames10() -> list[FrameSet]:
    return make_framesets(10, seed=1)


@pytest.fixture(scope="module")
def bag10(tmp_path_factory, frames10) -> Path:
    return write(tmp_path_factory.mktemp("bags") / "ten.bag", frames10)


# -- round trip ------------------------------------------------------------------------------
def test_round_trip_is_bit_exact(bag10, frames10):
    with BagReplay(bag10, frame_timeout_s=5) as replay:
        info = replay.device_info
        profiles = replay.profiles
        got = list(replay)
    assert len(got) == len(frames10)
    for want, have in zip(frames10, got):
        assert np.array_equal(have.depth, want.depth)
        assert np.array_equal(have.ir, want.ir)
        # colour too, including where depth is 0 (rs.align would have blanked those pixels)
        assert np.array_equal(have.color, want.color)
        assert have.frame_number == want.frame_number
        assert have.timestamp_ms == round(want.timestamp_ms, 6)
        assert have.depth_scale == SCALE
        assert have.intrinsics.depth == DEPTH_INTR and have.intrinsics.ir == DEPTH_INTR
        # colour is recorded registered to depth (see docs/capture.md)
        assert have.intrinsics.color == DEPTH_INTR
        assert have.grid is Stream.DEPTH
    assert info.name == DEVICE.name and info.serial == DEVICE.serial
    assert info.firmware == DEVICE.firmware and info.product_line == "SR300" and info.origin == "bag"
    assert [(p.stream, p.format, p.width, p.height, p.fps) for p in profiles] == [
        (Stream.DEPTH, "z16", W, H, 30),
        (Stream.IR, "y8", W, H, 30),
        (Stream.COLOR, "rgb8", W, H, 30),
    ]


def test_timestamps_keep_nanoseconds(tmp_path):
    frames = make_framesets(4, seed=2)
    stamps = [0.000001, 1166.6666666666667, 123456789.123456789, 5e9]
    # frame numbers that advance with the clock (at most 1 s per frame step: a longer leap with
    # consecutive numbers is a clock fault, sdk.capture.integrity)
    frames = [
        FrameSet(f.color, f.ir, f.depth, f.depth_scale, f.intrinsics, t, i + 1 + math.ceil(t / 1000.0), f.device)
        for i, (f, t) in enumerate(zip(frames, stamps))
    ]
    bag = write(tmp_path / "ts.bag", frames)
    with BagReplay(bag) as replay:
        got = [f.timestamp_ms for f in replay]
    assert got == [round(t, 6) for t in stamps]


def test_align_always_blanks_colour_at_depth_holes(bag10, frames10):
    """What rs.align does to a registered stream: nothing, except zero where depth is 0."""
    with BagReplay(bag10, align="always", keep_native_color=True) as replay:
        got = list(replay)
    for want, have in zip(frames10, got):
        hole = want.depth == 0
        assert hole.any()
        assert np.array_equal(have.color[~hole], want.color[~hole])
        assert (have.color[hole] == 0).all()
        assert np.array_equal(have.color_native, want.color)
        assert np.array_equal(have.depth, want.depth)


def test_arrays_are_owned_copies(bag10):
    with BagReplay(bag10) as replay:
        frames = list(replay)
    snapshot = [f.depth.copy() for f in frames]
    arrays = [a for f in frames for a in (f.color, f.ir, f.depth)]
    for a in arrays:
        assert not a.flags.writeable
        assert a.flags.owndata or a.base is None or isinstance(a.base, np.ndarray) and a.base.flags.owndata
    for i, a in enumerate(arrays):
        for b in arrays[i + 1 :]:
            assert not np.shares_memory(a, b)
    # librealsense recycles its buffers as playback goes on; our copies must not change
    assert all(np.array_equal(f.depth, s) for f, s in zip(frames, snapshot))


def test_loop_restarts(bag10):
    with BagReplay(bag10, loop=True) as replay:
        got = [next(replay).frame_number for _ in range(25)]
        assert replay.passes == 3
    assert got == list(range(1, 11)) * 2 + list(range(1, 6))


def test_open_source_dispatch(bag10):
    with open_source(str(bag10)) as source:
        assert isinstance(source, BagReplay)
        assert open_source(source) is source
        assert next(source).frame_number == 1
    with pytest.raises(InputValidationError):
        open_source("no_such_thing")
    with pytest.raises(InputValidationError):
        open_source(42)


def test_write_failure_leaves_no_file(tmp_path):
    def broken():
        yield from make_framesets(3)
        raise RuntimeError("renderer crashed")

    target = tmp_path / "half.bag"
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_bag(target, broken(), DEVICE, INTR, SCALE, Extrinsics())
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputValidationError):
        write_bag(target, [], DEVICE, INTR, SCALE, Extrinsics())
    assert list(tmp_path.iterdir()) == []


def test_640x480_round_trip(tmp_path):
    big = Intrinsics(640, 480, 475.0, 475.0, 313.5, 246.0, model="inverse_brown_conrady")
    intr = StreamIntrinsics(big, big, big)
    rng = np.random.default_rng(5)
    frames = [
        FrameSet(
            rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), rng.integers(0, 256, (480, 640), dtype=np.uint8),
            rng.integers(0, 9000, (480, 640)).astype(np.uint16), SCALE, intr, 33.0 * i, i, DEVICE,
        )
        for i in range(3)
    ]
    bag = tmp_path / "vga.bag"
    write_bag(bag, frames, DEVICE, intr, SCALE, Extrinsics())
    with BagReplay(bag) as replay:
        got = list(replay)
    assert len(got) == 3
    assert all(np.array_equal(a.color, b.color) and np.array_equal(a.depth, b.depth) for a, b in zip(frames, got))


# -- errors ----------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(BagFormatError, match="not found") as info:
        BagReplay(tmp_path / "nope.bag")
    assert info.value.path == str(tmp_path / "nope.bag")


def test_not_a_bag(tmp_path):
    junk = tmp_path / "junk.bag"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(BagFormatError, match="not a ROS bag"):
        BagReplay(junk)
    empty = tmp_path / "empty.bag"
    empty.write_bytes(b"")
    with pytest.raises(BagFormatError, match="empty"):
        BagReplay(empty)
    ros2 = tmp_path / "ros2.bag"
    ros2.write_bytes(b"SQLite format 3\x00" + bytes(100))
    with pytest.raises(BagFormatError):
        BagReplay(ros2)


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.97, 0.9999])
def test_truncated_bag(tmp_path, bag10, keep):
    data = bag10.read_bytes()
    cut = tmp_path / "cut.bag"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(BagFormatError, match="truncated") as info:
        BagReplay(cut)
    assert info.value.path == str(cut)


def test_truncated_right_before_the_index(tmp_path, bag10):
    summary = check_bag(bag10)
    cut = tmp_path / "noindex.bag"
    cut.write_bytes(bag10.read_bytes()[: summary.index_pos])
    with pytest.raises(BagFormatError, match="truncated"):
        BagReplay(cut)


def test_unindexed_bag_from_a_killed_recorder(tmp_path):
    """A recorder process that dies mid-recording leaves an unindexed file behind."""
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_capture_bags import make_framesets, DEVICE, INTR, SCALE
        from sdk.capture import write_bag
        def dying():
            for i, f in enumerate(make_framesets(6)):
                if i == 4:
                    os._exit(0)  # like kill -9: no destructor runs, no index is written
                yield f
        write_bag({str(tmp_path / 'killed.bag')!r}, dying(), DEVICE, INTR, SCALE)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    leftovers = list(tmp_path.glob("*.bag"))
    assert not (tmp_path / "killed.bag").exists()  # never at the final name
    assert len(leftovers) == 1
    assert leftovers[0].read_bytes().startswith(MAGIC)
    with pytest.raises(BagFormatError, match="unindexed"):
        BagReplay(leftovers[0])


def test_flipped_header_bytes(tmp_path, bag10):
    data = bytearray(bag10.read_bytes())
    summary = check_bag(bag10)
    for name, pos in (("magic", 3), ("bag header", 20), ("index", summary.index_pos + 2), ("last record", len(data) - 30)):
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        path = tmp_path / f"flip_{name.replace(' ', '_')}.bag"
        path.write_bytes(bytes(bad))
        with pytest.raises(BagFormatError):
            BagReplay(path)


PLAY_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[2])
from sdk.capture import BagReplay
from sdk.errors import BagFormatError
try:
    with BagReplay(sys.argv[1], frame_timeout_s=3) as replay:
        n = sum(1 for _ in replay)
    print("OK", n)
except BagFormatError as error:
    print("BagFormatError", error.problem)
"""


def test_flipped_bytes_anywhere_never_pass_silently(tmp_path, bag10):
    """Random single-byte flips: BagReplay either plays every frame or raises BagFormatError.

    ROS bags carry no checksums, so a flip inside pixel data can play with wrong pixels, but
    librealsense stopping early on a damaged chunk must not look like a clean end. Each probe
    runs in a subprocess with a timeout: librealsense must never hang or crash the suite.
    """
    data = bag10.read_bytes()
    rng = np.random.default_rng(7)
    outcomes = []
    positions = list(rng.integers(0, len(data), 6)) + [len(data) // 2]
    for k, pos in enumerate(positions):
        bad = bytearray(data)
        bad[int(pos)] ^= 0xFF
        path = tmp_path / f"fuzz{k}.bag"
        path.write_bytes(bytes(bad))
        run = subprocess.run(
            [sys.executable, "-c", PLAY_SCRIPT, str(path), str(REPO)], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stderr[-2000:]
        line = run.stdout.strip().splitlines()[-1]
        assert line == "OK 10" or line.startswith("BagFormatError"), line
        outcomes.append(line)
    assert any(o.startswith("BagFormatError") for o in outcomes)


def test_bag_without_colour(tmp_path):
    bag = write(tmp_path / "nocolour.bag", make_framesets(3), streams=("depth", "ir"))
    assert check_bag(bag).streams == {"depth", "ir"}
    with pytest.raises(MissingStreamError, match="color") as info:
        BagReplay(bag)
    assert info.value.stream == "color"


@pytest.mark.parametrize("streams, missing", [(("ir", "color"), "depth"), (("depth", "color"), "ir")])
def test_bag_without_depth_or_ir(tmp_path, streams, missing):
    bag = write(tmp_path / f"no{missing}.bag", make_framesets(3), streams=streams)
    with pytest.raises(MissingStreamError) as info:
        BagReplay(bag)
    assert info.value.stream == missing
    assert str(bag) in str(info.value)


def test_frame_timeout_when_frames_stop(tmp_path):
    """A real-time replay of a recording with a 3 s gap: frames stop, the timeout fires."""
    # The gap is 3x the timeout and the timeout 1 s, so a loaded machine (this test once failed
    # with three CPU-bound jobs on two cores and a 0.5 s timeout) still sees frames before the gap.
    def with_gap():
        for i, frame in enumerate(make_framesets(4)):
            if i == 2:
                time.sleep(3.0)
            yield frame

    bag = tmp_path / "gap.bag"
    write_bag(bag, with_gap(), DEVICE, INTR, SCALE)
    got: list[int] = []
    with BagReplay(bag, real_time=True, frame_timeout_s=1.0) as replay:
        with pytest.raises(FrameTimeoutError, match="no frame"):
            while True:
                got.append(next(replay).frame_number)
    # real-time playback may drop a frame on a busy machine, but nothing after the gap came
    assert got and set(got) <= {1, 2}
    # deterministic playback ignores the gap and delivers everything
    with BagReplay(bag, frame_timeout_s=0.5) as replay:
        assert [f.frame_number for f in replay] == [1, 2, 3, 4]


def test_close_is_idempotent(bag10):
    replay = BagReplay(bag10)
    next(replay)
    replay.close()
    replay.close()
    assert replay.closed
    with pytest.raises(StopIteration):
        next(replay)


def _camera_style_bag(path: Path, n: int = 3, color_format: str = "rgb8") -> tuple[np.ndarray, np.ndarray]:
    """A bag shaped like a real SR300 recording: colour at its own resolution and intrinsics
    (twice the depth resolution here) with its own extrinsics, so rs.align must resample it."""
    import gc

    dev = rs.software_device()
    dev.update_info(rs.camera_info.name, "Intel RealSense SR300")
    depth_sensor = dev.add_sensor("Coded-Light Depth Sensor")
    color_sensor = dev.add_sensor("RGB Camera")

    def stream(kind, index, uid, fmt, bpp, w, h, fx, ppx, ppy):
        s = rs.video_stream()
        s.type, s.index, s.uid, s.width, s.height, s.fps, s.bpp, s.fmt = kind, index, uid, w, h, 30, bpp, fmt
        intr = rs.intrinsics()
        intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = w, h, fx, fx, ppx, ppy
        intr.model, intr.coeffs = rs.distortion.none, [0.0] * 5
        s.intrinsics = intr
        return s

    dp = depth_sensor.add_video_stream(stream(rs.stream.depth, 0, 0, rs.format.z16, 2, W, H, 50.0, 32.0, 24.0))
    ip = depth_sensor.add_video_stream(stream(rs.stream.infrared, 1, 1, rs.format.y8, 1, W, H, 50.0, 32.0, 24.0))
    cbpp = 2 if color_format == "yuyv" else 3
    cp = color_sensor.add_video_stream(
        stream(rs.stream.color, 0, 2, getattr(rs.format, color_format), cbpp, 2 * W, 2 * H, 100.0, 64.0, 48.0)
    )
    depth_sensor.add_read_only_option(rs.option.depth_units, SCALE)
    extr = rs.extrinsics()
    extr.rotation, extr.translation = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], [0.001, 0.0, 0.0]
    back = rs.extrinsics()
    back.rotation, back.translation = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], [-0.001, 0.0, 0.0]
    dp.register_extrinsics_to(cp, extr)
    cp.register_extrinsics_to(dp, back)
    ident = rs.extrinsics()
    ident.rotation, ident.translation = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], [0.0, 0.0, 0.0]
    dp.register_extrinsics_to(ip, ident)
    ip.register_extrinsics_to(dp, ident)
    recorder = rs.recorder(str(path), dev)
    depth_sensor.open([dp, ip])
    color_sensor.open(cp)
    depth_sensor.start(lambda f: None)
    color_sensor.start(lambda f: None)
    depth = np.full((H, W), 4000, np.uint16)  # a wall 0.5 m away
    yy, xx = np.mgrid[0 : 2 * H, 0 : 2 * W]
    color = np.stack([xx % 256, yy % 256, np.full_like(xx, 77)], -1).astype(np.uint8)[..., :cbpp].copy()
    for i in range(n):
        for sensor, profile, pixels, bpp, ts in (
            (depth_sensor, dp, depth, 2, 1000.0 + 33.0 * i),
            (depth_sensor, ip, np.full((H, W), 9, np.uint8), 1, 1000.0 + 33.0 * i),
            (color_sensor, cp, color, cbpp, 1004.0 + 33.0 * i),  # colour 4 ms later, like a real camera
        ):
            f = rs.software_video_frame()
            f.pixels, f.stride, f.bpp, f.timestamp = pixels, pixels.shape[1] * bpp, bpp, ts
            f.domain, f.frame_number, f.profile = rs.timestamp_domain.hardware_clock, i + 1, profile.as_video_stream_profile()
            sensor.on_video_frame(f)
    for sensor in (depth_sensor, color_sensor):
        sensor.stop()
        sensor.close()
    del recorder
    gc.collect()
    return depth, color


def test_unregistered_colour_goes_through_rs_align(tmp_path):
    bag = tmp_path / "camera_style.bag"
    _, color = _camera_style_bag(bag)
    with BagReplay(bag, keep_native_color=True) as replay:
        frames = list(replay)
    assert [f.frame_number for f in frames] == [1, 2, 3]
    frame = frames[0]
    assert frame.color.shape == (H, W, 3) and frame.color_native.shape == (2 * H, 2 * W, 3)
    assert np.array_equal(frame.color_native, color)
    assert frame.intrinsics.color.width == 2 * W and frame.intrinsics.color.fx == 100.0
    # the 1 mm baseline at 0.5 m shifts colour by 0.2 colour pixels: each depth pixel picks
    # the colour pixel at about twice its coordinates
    xs = frame.color[H // 2, 5:-5, 0].astype(int)
    assert np.all(np.abs(xs - 2 * np.arange(5, W - 5)) <= 2)
    assert (frame.color[..., 2] == 77).mean() > 0.95


def test_bgr_colour_is_converted_and_unknown_formats_refused(tmp_path):
    bag = tmp_path / "bgr.bag"
    _, color = _camera_style_bag(bag, n=2, color_format="bgr8")
    with BagReplay(bag, keep_native_color=True) as replay:
        frame = next(replay)
    assert np.array_equal(frame.color_native, color[..., ::-1])
    assert (frame.color[..., 0] == 77).mean() > 0.95  # the constant channel is now red
    yuyv = tmp_path / "yuyv.bag"
    _camera_style_bag(yuyv, n=2, color_format="yuyv")
    with pytest.raises(BagFormatError, match="colour format yuyv"):
        BagReplay(yuyv)


class _LosesFirstFrames(BagReplay):
    """librealsense's occasional start-of-playback loss, simulated: the first sets of a play vanish."""

    def __init__(self, *args, lossy_plays: int, lost: int = 2, **kwargs) -> None:
        self.lossy_plays, self.lost, self.plays, self._dropped = lossy_plays, lost, 0, 0
        super().__init__(*args, **kwargs)

    def _start(self) -> None:
        self.plays += 1
        self._dropped = 0
        super()._start()

    def _push(self, frames) -> None:
        if self.plays <= self.lossy_plays and self._dropped < self.lost:
            self._dropped += 1
            return
        super()._push(frames)


def test_a_short_recording_that_loses_its_first_frames_is_played_again(bag10, frames10):
    with _LosesFirstFrames(bag10, frame_timeout_s=5, lossy_plays=2) as replay:
        got = list(replay)
        assert replay.short_pass_retries == 2 and replay.passes == 1 and replay.plays == 3
    assert [f.frame_number for f in got] == [f.frame_number for f in frames10]
    assert np.array_equal(got[0].depth, frames10[0].depth)


def test_a_recording_short_on_every_play_is_damaged(bag10):
    from sdk.errors import ShortPlaybackError

    with _LosesFirstFrames(bag10, frame_timeout_s=5, lossy_plays=99) as replay:
        with pytest.raises(ShortPlaybackError, match="damaged: playback ended after 8 of the 10 recorded .*each of 3 plays"):
            next(replay)
        assert replay.short_pass_retries == 2


def test_real_time_playback_is_never_read_ahead_or_retried(bag10):
    with _LosesFirstFrames(bag10, frame_timeout_s=5, lossy_plays=99, real_time=True) as replay:
        got = list(replay)
        assert replay.short_pass_retries == 0
    assert len(got) <= 8  # real-time playback may drop frames; it is not called damaged
