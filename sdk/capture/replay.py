"""BagReplay: deterministic playback of an SR300 .bag recording as FrameSets."""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from sdk.capture._rs import clean_f32, import_rs
from sdk.capture.bagfile import BagSummary, check_bag
from sdk.capture.base import DEFAULT_FRAME_TIMEOUT_S
from sdk.capture.frames import GridAssembler, StreamFormatError
from sdk.capture.pipelined import PipelineSource, describe_device
from sdk.errors import BagFormatError, FrameTimeoutError, MissingStreamError, ShortPlaybackError
from sdk.types import FrameSet, Stream

#: try_wait_for_frames slice: short, so the end of the file is noticed quickly.
_POLL_MS = 50
#: After librealsense reports the end of the file, frames can still be on their way through
#: the pipeline's syncer; wait this long for the ones the index promises before calling the
#: file damaged. 0.5 s (and 2 s) were too short on a loaded machine: a 30-minute soak at load average 20
#: on 2 cores saw an intact recording reported as "damaged: playback ended after 59 of the 60
#: recorded depth frames". Frames still arriving restart the wait (see _wait), and the whole
#: wait is bounded by the replay's frame timeout.
_END_GRACE_S = 5.0
#: Deterministic playback of a recording this short reads each pass whole before handing out its
#: first frame, so that a pass which loses frames can be played again instead of failing. On a
#: loaded machine librealsense now and then drops the first depth frames of a non-real-time
#: playback (12 of 6,750 independent-renderer checks; the same file then plays in full), and a
#: test rig must not count that as the device rejecting a face. 30 SR300 framesets are ~60 MB.
_WHOLE_PASS_MAX_FRAMES = 30
#: Further tries of a pass that came out short before the file is called damaged.
_SHORT_PASS_RETRIES = 2


def _which(numbers: set[int]) -> str:
    """Which frame numbers arrived: a gap inside the range, or a range that ends early."""
    if not numbers:
        return " (none arrived)"
    low, high = min(numbers), max(numbers)
    gaps = sorted(set(range(low, high + 1)) - numbers)
    inside = f"; missing inside: {', '.join(map(str, gaps[:5]))}{' ...' if len(gaps) > 5 else ''}" if gaps else ""
    return f" (frame numbers {low}-{high} arrived{inside})"


class BagReplay(PipelineSource):
    """Plays a ROS1 .bag recording (librealsense format) frame by frame.

    With ``real_time=False`` (the default) playback is deterministic: librealsense delivers
    every recorded frame, in order, as fast as the consumer takes them, and iteration stops
    cleanly at the end of the file (or starts over with ``loop=True``). The file's structure
    is checked before librealsense sees it (see sdk.capture.bagfile), and after the last frame
    the number of frames delivered is compared with the file's index, so a damaged chunk that
    makes librealsense stop early raises BagFormatError instead of passing silently.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        real_time: bool = False,
        loop: bool = False,
        frame_timeout_s: float = DEFAULT_FRAME_TIMEOUT_S,
        *,
        align: str = "auto",
        keep_native_color: bool = False,
    ) -> None:
        if frame_timeout_s <= 0:
            raise ValueError("frame_timeout_s must be > 0")
        self.path = Path(path)
        self.real_time = bool(real_time)
        self.loop = bool(loop)
        self.frame_timeout_s = float(frame_timeout_s)
        self._align_mode = align
        self._keep_native = keep_native_color
        self._pipeline: Any = None
        self._playback: Any = None
        #: the structural summary of the file (streams, frame counts per stream)
        self.summary: BagSummary = check_bag(self.path)
        for stream in (Stream.DEPTH, Stream.IR, Stream.COLOR):
            if stream.value not in self.summary.streams:
                raise MissingStreamError(stream.value, self.path)
        self._rs = import_rs()
        #: FrameSets delivered so far (all passes) and partial librealsense sets skipped
        self.frames_delivered = 0
        self.incomplete_sets = 0
        self.passes = 0
        #: passes played again because librealsense lost frames of them (all passes)
        self.short_pass_retries = 0
        self._whole_pass = (not self.real_time
                            and max(self.summary.frame_counts.values(), default=0) <= _WHOLE_PASS_MAX_FRAMES)
        self._start()

    # -- librealsense pipeline ---------------------------------------------------------------
    def _start(self) -> None:
        rs = self._rs
        config = rs.config()
        pipeline = rs.pipeline()
        try:
            config.enable_device_from_file(str(self.path), repeat_playback=False)
            # Resolving first creates the playback device, and pipeline.start() reuses it: so
            # real-time mode is off before the first frame is read. Switching it off only
            # after start() races with playback and can lose the first frame.
            resolved = config.resolve(rs.pipeline_wrapper(pipeline))
            resolved.get_device().as_playback().set_real_time(self.real_time)
            profile = pipeline.start(config)
        except RuntimeError as error:
            raise BagFormatError(self.path, f"librealsense cannot play it: {error}") from None
        self._pipeline = pipeline
        try:
            device = profile.get_device()
            self._playback = device.as_playback()
            self._playback.set_real_time(self.real_time)
            if self.passes == 0:
                self._device_info = describe_device(rs, device, origin="bag", name="unknown RealSense device")
                try:
                    self._depth_scale = clean_f32(device.first_depth_sensor().get_depth_scale())
                except RuntimeError:
                    raise MissingStreamError(Stream.DEPTH.value, self.path) from None
            self._assembler = GridAssembler(
                rs,
                list(profile.get_streams()),
                device=self._device_info,
                depth_scale=self._depth_scale,
                align=self._align_mode,
                keep_native_color=self._keep_native,
                where=self.path,
            )
        except StreamFormatError as error:
            self._stop_pipeline()
            raise BagFormatError(self.path, str(error)) from None
        except BaseException:
            self._stop_pipeline()
            raise
        self._begin_matching()
        self._ended = False
        self._pass_read = False
        self._pass_delivered = 0
        self.passes += 1

    def _stop_pipeline(self) -> None:
        pipeline, self._pipeline, self._playback = self._pipeline, None, None
        if pipeline is not None:
            try:
                pipeline.stop()
            except RuntimeError:
                pass

    def _all_seen(self) -> bool:
        seen = self._matcher.seen
        return all(seen[s] >= self.summary.frame_counts.get(s.value, 0) for s in seen)

    def _wait(self) -> Any | None:
        """The next librealsense frameset, or None at the end of the file."""
        rs = self._rs
        started = time.monotonic()
        ended_at: float | None = None
        while True:
            try:
                ok, frames = self._pipeline.try_wait_for_frames(_POLL_MS)
            except RuntimeError as error:
                raise BagFormatError(self.path, f"librealsense failed while reading it: {error}") from None
            if ok:
                return frames
            now = time.monotonic()
            if self._playback.current_status() == rs.playback_status.stopped:
                if self.real_time or self._all_seen():
                    return None
                ended_at = now if ended_at is None else ended_at
                if now - ended_at >= min(_END_GRACE_S, self.frame_timeout_s):
                    return None
            elif now - started >= self.frame_timeout_s:
                raise FrameTimeoutError(
                    f"{self.path}: no frame for {self.frame_timeout_s:.1f} s "
                    f"(after {self._pass_delivered} frames of this pass)"
                )

    def _check_complete(self) -> None:
        if self.real_time:  # real-time playback may legitimately drop frames
            return
        for stream, seen in self._matcher.seen.items():
            expected = self.summary.frame_counts.get(stream.value, 0)
            if seen < expected:
                raise ShortPlaybackError(
                    self.path,
                    f"damaged: playback ended after {seen} of the {expected} recorded {stream.value} frames"
                    f"{_which(self._matcher.numbers[stream])}",
                )

    def _read_step(self) -> None:
        """Match the next librealsense frameset, or at the end of the file flush what is matched."""
        frames = self._wait()
        if frames is None:
            self._ended = True
            self._ready.extend(self._matcher.flush())
        else:
            self._push(frames)

    def _read_pass(self) -> None:
        """Read the rest of this pass into ``_ready`` as FrameSets; play it again if it came out short."""
        for attempt in range(_SHORT_PASS_RETRIES + 1):
            converted: list[FrameSet] = []
            while not self._ended:
                self._read_step()
                # Convert (copy out) each set at once: librealsense frames held back exhaust its
                # frame pool, and playback then loses the rest of the pass.
                while (frameset := super()._next_ready()) is not None:
                    converted.append(frameset)
            try:
                self._check_complete()
            except ShortPlaybackError as error:
                if attempt == _SHORT_PASS_RETRIES:
                    raise ShortPlaybackError(self.path, f"{error.problem} (the same in each of "
                                                        f"{_SHORT_PASS_RETRIES + 1} plays)") from None
                self.short_pass_retries += 1
                self._stop_pipeline()
                self.passes -= 1  # the same pass, played again: _start() counts it once more
                self._start()
                continue
            self._ready = converted
            self._pass_read = True
            return

    def _next_ready(self) -> FrameSet | None:
        if self._pass_read:
            # The pass was read ahead whole (_read_pass): ``_ready`` holds converted FrameSets.
            return self._ready.pop(0) if self._ready else None
        return super()._next_ready()

    # -- Source ------------------------------------------------------------------------------
    def _next_frameset(self) -> FrameSet:
        if self._whole_pass and not self._pass_read and self._pipeline is not None:
            self._read_pass()
        while True:
            frameset = self._next_ready()
            if frameset is not None:
                self.frames_delivered += 1
                self._pass_delivered += 1
                return frameset
            if self._pipeline is None:
                raise StopIteration
            if not self._ended:
                self._read_step()
                continue
            self._check_complete()
            if self.loop and self._pass_delivered > 0:
                self._stop_pipeline()
                self._start()
                continue
            self._stop_pipeline()
            raise StopIteration

    def _release(self) -> None:
        self._stop_pipeline()


def content_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of what a recording shows: every frame's pixels, number, timestamp and depth scale.

    Two renders of the same simulator seed are different files (librealsense's recorder stamps
    its own wall-clock times into the bag), so a file's SHA-256 tells only that one file was not
    changed. This digest is the same for both: it is what a rerun of a suite is compared by.
    Colour is taken at its native resolution as well as on the depth grid.
    """
    digest = hashlib.sha256()
    replay = BagReplay(path, keep_native_color=True)
    try:
        for frames in replay:
            digest.update(f"{frames.frame_number};{frames.timestamp_ms!r};{frames.depth_scale!r};".encode())
            for image in (frames.color, frames.ir, frames.depth, frames.color_native):
                if image is not None:
                    digest.update(f"{image.dtype.str}{image.shape};".encode())
                    digest.update(image.tobytes())
    finally:
        replay.close()
    return digest.hexdigest()
