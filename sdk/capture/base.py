"""The Source interface every frame producer implements (camera, .bag replay, simulator)."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Iterator

from sdk.capture.integrity import StreamIntegrity, stream_signature  # noqa: F401 (re-export)
from sdk.types import DeviceInfo, FrameSet, Stream

#: Frames not arriving for this long is an error (a stalled camera or a stuck file).
DEFAULT_FRAME_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class StreamProfile:
    """One stream as the source delivers it before alignment (librealsense's stream profile)."""

    stream: Stream
    format: str  # librealsense format name: "z16", "y8", "rgb8", ...
    width: int
    height: int
    fps: int


class Source(abc.ABC):
    """A context manager and iterator of FrameSets: colour, IR and depth on the depth grid.

    Every FrameSet a source yields owns its arrays (copies, never views of librealsense
    buffers that the library recycles), carries the device's depth scale, per-stream
    intrinsics, the timestamp in milliseconds and the frame number.
    """

    _closed: bool = False
    #: the checks of sdk.capture.integrity over the FrameSets delivered so far
    _integrity: StreamIntegrity | None = None

    @property
    @abc.abstractmethod
    def device_info(self) -> DeviceInfo:
        """The camera, recording or simulator the frames come from."""

    @property
    @abc.abstractmethod
    def profiles(self) -> list[StreamProfile]:
        """The stream profiles in use (depth, IR, colour)."""

    @abc.abstractmethod
    def _next_frameset(self) -> FrameSet:
        """The next FrameSet; raise StopIteration at the end of a finite source."""

    @abc.abstractmethod
    def _release(self) -> None:
        """Free device or file resources (called once by close())."""

    def __iter__(self) -> Iterator[FrameSet]:
        return self

    def __next__(self) -> FrameSet:
        if self._closed:
            raise StopIteration
        frames = self._next_frameset()
        self._check_unchanged(frames)
        return frames

    def _check_unchanged(self, frames: FrameSet) -> None:
        """Raise a CaptureError for a FrameSet no working SR300 could send (sdk.capture.integrity);
        every Source, wrappers included, goes through this."""
        if self._integrity is None:
            self._integrity = StreamIntegrity()
        self._integrity.check(frames)

    def close(self) -> None:
        """Stop streaming and release the device or file. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._release()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten close() must not keep a camera or file busy
        try:
            self.close()
        except Exception:
            pass
