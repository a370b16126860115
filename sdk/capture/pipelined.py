"""What the live camera and .bag replay share: a librealsense pipeline read through one assembler.

Both sources start an ``rs.pipeline``, describe its device, build a GridAssembler over its
streams and match frames into sets with a SetMatcher; only where the frames come from (USB or a
file) and what happens at the end (reconnect or end of file) differ. Keeping the shared part here
means a fix to how sets are matched or converted reaches both.
"""
from __future__ import annotations

from typing import Any

from sdk.capture._rs import device_text
from sdk.capture.base import Source, StreamProfile
from sdk.capture.frames import GridAssembler, SetMatcher
from sdk.types import DeviceInfo, FrameSet


def describe_device(rs: Any, device: Any, *, origin: str, name: str = "", serial: str = "") -> DeviceInfo:
    """A librealsense device as a DeviceInfo; ``name``/``serial`` fill fields the device leaves empty."""
    return DeviceInfo(
        name=device_text(device, rs.camera_info.name) or name,
        serial=device_text(device, rs.camera_info.serial_number) or serial,
        firmware=device_text(device, rs.camera_info.firmware_version),
        product_line=device_text(device, rs.camera_info.product_line),
        origin=origin,
    )


class PipelineSource(Source):
    """A Source fed by a librealsense pipeline: subclasses set the device, depth scale and assembler."""

    _device_info: DeviceInfo
    _depth_scale: float
    _assembler: GridAssembler
    _matcher: SetMatcher
    _ready: list[Any]
    #: matched librealsense sets that lacked a stream and were skipped (all passes)
    incomplete_sets: int = 0

    @property
    def device_info(self) -> DeviceInfo:
        return self._device_info

    @property
    def profiles(self) -> list[StreamProfile]:
        return self._assembler.profiles

    @property
    def depth_scale(self) -> float:
        return self._depth_scale

    def _begin_matching(self) -> None:
        """Start matching frames into sets afresh (after the assembler of a new pipeline is set)."""
        self._matcher = SetMatcher(self._assembler.profiles[0].fps)
        self._ready = []

    def _push(self, frames: Any) -> None:
        """Hand a librealsense frameset to the matcher; sets it completes wait in ``_ready``."""
        self._ready.extend(self._matcher.push(frames, self._assembler.identify(frames)))

    def _next_ready(self) -> FrameSet | None:
        """The next complete FrameSet among the matched sets, or None when none is waiting."""
        while self._ready:
            frameset = self._assembler.convert(self._ready.pop(0))
            if frameset is not None:
                return frameset
            self.incomplete_sets += 1
        return None
