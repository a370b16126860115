"""The Source interface every frame producer implements (camera, .bag replay, simulator)."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Iterator

from sdk.errors import StreamChangedError
from sdk.types import DeviceInfo, FrameSet, Stream

#: Frames not arriving for this long is an error (a stalled camera or a stuck file).
DEFAULT_FRAME_TIMEOUT_S = 5.0


def stream_signature(frames: FrameSet) -> tuple[object, ...]:
    """What cannot change between two FrameSets of one stream: the camera, its depth units and
    the pixel grid with its intrinsics. A change means the evidence mixes two devices or a
    device whose calibration moved under the SDK (a depth scale read wrong would make every
    face look too near or too far), so it is a device error, not data."""
    return (frames.device.serial, frames.device.name, float(frames.depth_scale), frames.grid,
            frames.shape, frames.intrinsics)


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
    #: stream_signature of the first FrameSet (None until one was delivered or after a restart)
    _signature: tuple[object, ...] | None = None

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
        """Raise StreamChangedError when the device, depth scale or grid differs from the
        first FrameSet's (every Source, wrappers included, goes through this)."""
        signature = stream_signature(frames)
        if self._signature is None:
            self._signature = signature
            return
        if signature != self._signature:
            names = ("serial", "device name", "depth scale", "grid", "shape", "intrinsics")
            changed = [n for n, a, b in zip(names, self._signature, signature) if a != b]
            raise StreamChangedError(
                f"frame {frames.frame_number}: the stream's {', '.join(changed)} changed mid-stream "
                f"({', '.join(f'{n}: {a!r} -> {b!r}' for n, a, b in zip(names, self._signature, signature) if a != b and n != 'intrinsics')})"
            )

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
