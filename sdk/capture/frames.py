"""librealsense framesets -> sdk FrameSets, shared by the live camera and .bag replay.

Both paths put colour and IR on the depth grid by one rule:

* a stream that is already registered to depth (identical intrinsics and identity extrinsics:
  the SR300's IR, which comes from the same imager; colour in the simulator's bags) is taken as
  it is, pixel for pixel. ``rs.align`` would map every pixel onto itself there and only blank
  the pixels where depth has a hole, destroying information without moving anything;
* any other stream (the SR300's real colour camera) goes through
  ``rs.align(rs.stream.depth)``, which resamples it onto the depth grid (pixels without depth
  come out zero).

``align="always"`` sends every non-depth stream through rs.align instead (holes blanked).
Every array is copied out of librealsense's buffer: librealsense recycles frame memory, so a
view would change under the caller's feet.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from sdk.capture._rs import extrinsics_from_rs, intrinsics_from_rs
from sdk.capture.base import StreamProfile
from sdk.errors import CaptureError, MissingStreamError
from sdk.types import DeviceInfo, Extrinsics, FrameSet, Stream, StreamIntrinsics

ALIGN_MODES = ("auto", "always")
_IDENTITY = Extrinsics()
_COLOR_FORMATS = ("rgb8", "bgr8", "rgba8", "bgra8")


class StreamFormatError(CaptureError):
    """A stream has a pixel format the SDK cannot turn into its FrameSet dtype."""


@dataclass(frozen=True)
class _Picked:
    profile: Any  # rs.video_stream_profile
    info: StreamProfile


def _format_name(rs_format: Any) -> str:
    return str(rs_format).rsplit(".", 1)[-1]


def _pick_streams(rs: ModuleType, stream_profiles: list[Any], where: object) -> dict[Stream, _Picked]:
    """Depth, the lowest-index IR and colour among a pipeline's active stream profiles."""
    wanted = {rs.stream.depth: Stream.DEPTH, rs.stream.infrared: Stream.IR, rs.stream.color: Stream.COLOR}
    picked: dict[Stream, _Picked] = {}
    for profile in sorted(stream_profiles, key=lambda p: p.stream_index()):
        stream = wanted.get(profile.stream_type())
        if stream is None or stream in picked or not profile.is_video_stream_profile():
            continue
        video = profile.as_video_stream_profile()
        picked[stream] = _Picked(
            video,
            StreamProfile(stream, _format_name(video.format()), int(video.width()), int(video.height()), int(video.fps())),
        )
    for stream in (Stream.DEPTH, Stream.IR, Stream.COLOR):
        if stream not in picked:
            raise MissingStreamError(stream.value, where)
    return picked


def _to_rgb(array: np.ndarray, fmt: str) -> np.ndarray:
    """An owned HxWx3 RGB uint8 copy of a colour frame's pixels."""
    if fmt == "rgb8":
        return np.array(array, dtype=np.uint8, copy=True)
    if fmt == "bgr8":
        return np.ascontiguousarray(array[..., ::-1], dtype=np.uint8)
    if fmt == "rgba8":
        return np.ascontiguousarray(array[..., :3], dtype=np.uint8)
    if fmt == "bgra8":
        return np.ascontiguousarray(array[..., 2::-1], dtype=np.uint8)
    raise StreamFormatError(f"colour format {fmt} is not supported (use RGB8 or BGR8)")


class GridAssembler:
    """Turns each librealsense frameset of one pipeline into an sdk FrameSet on the depth grid."""

    def __init__(
        self,
        rs: ModuleType,
        stream_profiles: list[Any],
        *,
        device: DeviceInfo,
        depth_scale: float,
        align: str = "auto",
        keep_native_color: bool = False,
        where: object = "device",
    ) -> None:
        if align not in ALIGN_MODES:
            raise ValueError(f"align must be one of {ALIGN_MODES}, got {align!r}")
        self._rs = rs
        self._device = device
        self._depth_scale = depth_scale
        self._keep_native = keep_native_color
        self._picked = _pick_streams(rs, stream_profiles, where)
        formats = {s: p.info.format for s, p in self._picked.items()}
        if formats[Stream.DEPTH] != "z16":
            raise StreamFormatError(f"depth format {formats[Stream.DEPTH]} is not supported (need Z16)")
        if formats[Stream.IR] != "y8":
            raise StreamFormatError(f"infrared format {formats[Stream.IR]} is not supported (need Y8)")
        if formats[Stream.COLOR] not in _COLOR_FORMATS:
            raise StreamFormatError(f"colour format {formats[Stream.COLOR]} is not supported (need RGB8 or BGR8)")
        self.intrinsics = StreamIntrinsics(
            color=intrinsics_from_rs(self._picked[Stream.COLOR].profile.get_intrinsics()),
            ir=intrinsics_from_rs(self._picked[Stream.IR].profile.get_intrinsics()),
            depth=intrinsics_from_rs(self._picked[Stream.DEPTH].profile.get_intrinsics()),
        )
        depth_profile = self._picked[Stream.DEPTH].profile
        #: streams taken as they are (already on the depth grid); the others go through rs.align
        self.registered: dict[Stream, bool] = {}
        for stream in (Stream.IR, Stream.COLOR):
            same_intrinsics = self.intrinsics.of(stream) == self.intrinsics.depth
            try:
                extr = extrinsics_from_rs(depth_profile.get_extrinsics_to(self._picked[stream].profile))
            except RuntimeError:  # no extrinsics recorded: cannot be registered
                extr = None
            self.registered[stream] = align == "auto" and same_intrinsics and extr == _IDENTITY
        self._align = None if all(self.registered.values()) else rs.align(rs.stream.depth)
        self._uids = {s: p.profile.unique_id() for s, p in self._picked.items()}
        # rs.align's output frames get new profiles; match those by stream type and index
        self._kinds = {(p.profile.stream_type(), p.profile.stream_index()): s for s, p in self._picked.items()}

    @property
    def profiles(self) -> list[StreamProfile]:
        return [self._picked[s].info for s in (Stream.DEPTH, Stream.IR, Stream.COLOR)]

    def _frames_by_stream(self, composite: Any, *, by_kind: bool = False) -> dict[Stream, Any]:
        found: dict[Stream, Any] = {}
        by_uid = {uid: stream for stream, uid in self._uids.items()}
        for i in range(composite.size()):
            frame = composite[i]
            profile = frame.get_profile()
            if by_kind:
                stream = self._kinds.get((profile.stream_type(), profile.stream_index()))
            else:
                stream = by_uid.get(profile.unique_id())
            if stream is not None:
                found[stream] = frame
        return found

    def identify(self, composite: Any) -> dict[Stream, tuple[int, float]]:
        """(frame number, timestamp ms) of each of depth, IR and colour in a frameset."""
        return {
            stream: (int(frame.get_frame_number()), float(frame.get_timestamp()))
            for stream, frame in self._frames_by_stream(composite).items()
        }

    def convert(self, composite: Any) -> FrameSet | None:
        """The FrameSet of one librealsense frameset, or None when a stream is missing from it
        (the syncer can deliver a partial set around start-up)."""
        native = self._frames_by_stream(composite)
        if len(native) < 3:
            return None
        aligned: dict[Stream, Any] = {}
        if self._align is not None:
            result = self._align.process(composite)
            aligned = self._frames_by_stream(result.as_frameset(), by_kind=True)
            if any(not self.registered[s] and s not in aligned for s in (Stream.IR, Stream.COLOR)):
                return None
        depth_frame = native[Stream.DEPTH]
        depth = np.array(np.asanyarray(depth_frame.get_data()), dtype=np.uint16, copy=True)
        ir_frame = native[Stream.IR] if self.registered[Stream.IR] else aligned[Stream.IR]
        ir = np.array(np.asanyarray(ir_frame.get_data()), dtype=np.uint8, copy=True)
        color_format = self._picked[Stream.COLOR].info.format
        color_frame = native[Stream.COLOR] if self.registered[Stream.COLOR] else aligned[Stream.COLOR]
        color = _to_rgb(np.asanyarray(color_frame.get_data()), color_format)
        color_native = None
        if self._keep_native:
            color_native = _to_rgb(np.asanyarray(native[Stream.COLOR].get_data()), color_format)
        return FrameSet(
            color=color,
            ir=ir,
            depth=depth,
            depth_scale=self._depth_scale,
            intrinsics=self.intrinsics,
            # bags keep timestamps in whole nanoseconds; rounding to them makes a replayed
            # timestamp equal the recorded one instead of differing in the last bit
            timestamp_ms=round(float(depth_frame.get_timestamp()), 6),
            frame_number=int(depth_frame.get_frame_number()),
            device=self._device,
            grid=Stream.DEPTH,
            color_native=color_native,
        )


class SetMatcher:
    """Picks one librealsense frameset per depth frame, in order, from the pipeline's output.

    The pipeline's aggregator emits a frameset whenever any stream delivers, filling the other
    streams with their latest frames, so one depth frame can arrive in several framesets, some
    with a stale IR or colour frame (it happens whenever timestamps are further apart than the
    syncer's window). Per depth frame this keeps the best set: IR with the depth frame's own
    frame number (one sensor, one counter) and the colour frame nearest in time. A set whose
    colour lies within half a frame period of depth is final and goes out at once (synthetic
    bags: always; a live SR300: nearly always); otherwise it is held until a newer depth frame
    shows up, or the end, in case a better-matching colour frame follows.
    """

    def __init__(self, fps: float) -> None:
        self.tolerance_ms = 500.0 / max(float(fps), 1.0)
        self._candidate: tuple[tuple[int, float], tuple[bool, float], Any] | None = None
        self._last_emitted: tuple[int, float] | None = None
        self._last_seen: dict[Stream, tuple[int, float]] = {}
        #: distinct frames seen per stream (stale repeats not counted)
        self.seen: dict[Stream, int] = {Stream.DEPTH: 0, Stream.IR: 0, Stream.COLOR: 0}
        #: the frame numbers seen per stream (to say which frames a short playback lost)
        self.numbers: dict[Stream, set[int]] = {Stream.DEPTH: set(), Stream.IR: set(), Stream.COLOR: set()}
        #: framesets dropped because a better one carried the same depth frame
        self.superseded = 0
        #: sets dropped because their depth frame's own IR frame never arrived
        self.stale_ir = 0

    def push(self, composite: Any, keys: dict[Stream, tuple[int, float]]) -> list[Any]:
        for stream, key in keys.items():
            if self._last_seen.get(stream) != key:
                self._last_seen[stream] = key
                self.seen[stream] += 1
                self.numbers[stream].add(key[0])
        if len(keys) < 3:
            return []
        depth = keys[Stream.DEPTH]
        if depth == self._last_emitted:
            self.superseded += 1
            return []
        quality = (keys[Stream.IR][0] == depth[0], -abs(keys[Stream.COLOR][1] - depth[1]))
        out: list[Any] = []
        if self._candidate is not None:
            if self._candidate[0] == depth:
                if quality <= self._candidate[1]:
                    self.superseded += 1
                    return []
                self.superseded += 1
            elif self._candidate[1][0]:
                out.append(self._candidate[2])
                self._last_emitted = self._candidate[0]
            else:
                # Its IR frame never came (dropped): the set holds the previous IR image, which
                # is no evidence about this instant, and a frozen-IR check would rightly refuse it.
                self.stale_ir += 1
            self._candidate = None
        if quality[0] and -quality[1] <= self.tolerance_ms:
            out.append(composite)
            self._last_emitted = depth
        else:
            self._candidate = (depth, quality, composite)
        return out

    def flush(self) -> list[Any]:
        """The held set, if any (at the end of a recording)."""
        if self._candidate is None:
            return []
        if not self._candidate[1][0]:  # stale IR: see push()
            self.stale_ir += 1
            self._candidate = None
            return []
        composite = self._candidate[2]
        self._last_emitted = self._candidate[0]
        self._candidate = None
        return [composite]
