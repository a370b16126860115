"""RealSenseCamera: a live SR300 through pyrealsense2, and device enumeration."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sdk.capture._rs import clean_f32, device_text, import_rs
from sdk.capture.base import DEFAULT_FRAME_TIMEOUT_S
from sdk.capture.frames import GridAssembler, StreamFormatError
from sdk.capture.pipelined import PipelineSource, describe_device
from sdk.errors import (
    CameraNotFoundError,
    CaptureError,
    DeviceDisconnectedError,
    FrameTimeoutError,
    InputValidationError,
    UnsupportedDeviceError,
)
from sdk.types import FrameSet

#: SR300 modes (design.md section 5): depth and IR share one sensor and one mode.
SR300_DEPTH_MODES = {(640, 480)}
SR300_DEPTH_FPS = (10, 30, 60)
SR300_COLOR_MODES = {(640, 480), (1920, 1080)}
_POLL_MS = 100


@dataclass(frozen=True)
class ConnectedDevice:
    """One RealSense device as librealsense enumerates it."""

    name: str
    serial: str
    firmware: str
    usb_type: str
    product_line: str

    @property
    def is_sr300(self) -> bool:
        return "SR300" in self.name or "SR305" in self.name

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "is_sr300": self.is_sr300}

    def __str__(self) -> str:
        usb = f", USB {self.usb_type}" if self.usb_type else ""
        return f"{self.name} (serial {self.serial or '?'}, firmware {self.firmware or '?'}{usb})"


def _describe(rs: Any, device: Any) -> ConnectedDevice:
    return ConnectedDevice(
        name=device_text(device, rs.camera_info.name) or "unknown RealSense device",
        serial=device_text(device, rs.camera_info.serial_number),
        firmware=device_text(device, rs.camera_info.firmware_version),
        usb_type=device_text(device, rs.camera_info.usb_type_descriptor),
        product_line=device_text(device, rs.camera_info.product_line),
    )


def list_devices() -> list[ConnectedDevice]:
    """Every connected RealSense device ([] when none). Needs pyrealsense2 and libusb."""
    rs = import_rs()
    try:
        devices = list(rs.context().query_devices())
    except RuntimeError as error:
        raise CaptureError(f"librealsense could not enumerate USB devices: {error}") from None
    return [_describe(rs, device) for device in devices]


def _check_sr300_mode(color: tuple, depth: tuple, fps: int) -> None:
    """Refuse, before touching USB, a mode the SR300 (as this SDK drives it) does not have."""
    if depth not in SR300_DEPTH_MODES or fps not in SR300_DEPTH_FPS:
        raise InputValidationError(f"SR300 depth/IR runs at 640x480 and 10, 30 or 60 fps; got {depth} at {fps} fps")
    if color not in SR300_COLOR_MODES:
        raise InputValidationError(f"SR300 colour is used at 640x480 or 1920x1080; got {color}")
    if color == (1920, 1080) and fps > 30:
        raise InputValidationError("SR300 colour 1920x1080 runs at up to 30 fps")


def _connected_text(devices: list[ConnectedDevice]) -> str:
    return "; ".join(str(d) for d in devices) if devices else "nothing"


class RealSenseCamera(PipelineSource):
    """A live SR300 (depth Z16 + IR Y8 at 640x480, colour RGB8) as a Source of FrameSets.

    Picks the first SR300, or the one with ``serial``. Another RealSense model is refused
    unless ``allow_non_sr300``. If frames stop for ``frame_timeout_s`` it raises
    FrameTimeoutError; if the camera is unplugged, DeviceDisconnectedError, or with
    ``reconnect=True`` it first retries with exponential backoff (``reconnect_attempts`` tries,
    delays ``reconnect_backoff_s`` * 2**k capped at 8 s).
    """

    def __init__(
        self,
        serial: str | None = None,
        color: tuple[int, int] = (640, 480),
        depth: tuple[int, int] = (640, 480),
        fps: int = 30,
        allow_non_sr300: bool = False,
        reconnect: bool = False,
        frame_timeout_s: float = DEFAULT_FRAME_TIMEOUT_S,
        *,
        keep_native_color: bool = False,
        align: str = "auto",
        reconnect_attempts: int = 5,
        reconnect_backoff_s: float = 0.5,
        record_to: str | os.PathLike[str] | None = None,
    ) -> None:
        if frame_timeout_s <= 0:
            raise ValueError("frame_timeout_s must be > 0")
        if not allow_non_sr300:
            _check_sr300_mode(tuple(color), tuple(depth), int(fps))
        self.serial = serial
        self.color_size = (int(color[0]), int(color[1]))
        self.depth_size = (int(depth[0]), int(depth[1]))
        self.fps = int(fps)
        self.allow_non_sr300 = bool(allow_non_sr300)
        self.reconnect = bool(reconnect) and record_to is None  # a reconnect would restart the file
        self.frame_timeout_s = float(frame_timeout_s)
        self.keep_native_color = keep_native_color
        self.align = align
        self.reconnect_attempts = int(reconnect_attempts)
        self.reconnect_backoff_s = float(reconnect_backoff_s)
        self.record_to = None if record_to is None else Path(record_to)
        self.reconnects = 0
        self._pipeline: Any = None
        self._removed = threading.Event()
        self._context: Any = None
        self._open()

    def reopen(self, **changes: Any) -> "RealSenseCamera":
        """A new camera object with the same settings plus ``changes`` (this one is closed)."""
        self.close()
        settings = dict(
            serial=self._active_serial, color=self.color_size, depth=self.depth_size, fps=self.fps,
            allow_non_sr300=self.allow_non_sr300, reconnect=self.reconnect, frame_timeout_s=self.frame_timeout_s,
            keep_native_color=self.keep_native_color, align=self.align,
            reconnect_attempts=self.reconnect_attempts, reconnect_backoff_s=self.reconnect_backoff_s,
        )
        settings.update(changes)
        return RealSenseCamera(**settings)

    # -- opening -----------------------------------------------------------------------------
    def _select_device(self, rs: Any) -> str:
        """Serial of the device to open; raises CameraNotFoundError / UnsupportedDeviceError."""
        self._context = rs.context()
        try:
            devices = list(self._context.query_devices())
        except RuntimeError as error:
            raise CameraNotFoundError(f"librealsense could not enumerate USB devices: {error}") from None
        found = [_describe(rs, d) for d in devices]
        if not found:
            raise CameraNotFoundError(
                "no RealSense device connected (connected: nothing). Plug in an SR300 on a USB 3 port; "
                "to run without a camera, use a .bag file or a simulator scenario as the source"
            )
        if self.serial is not None:
            chosen = next((d for d in found if d.serial == self.serial), None)
            if chosen is None:
                raise CameraNotFoundError(f"no RealSense device with serial {self.serial}; connected: {_connected_text(found)}")
        else:
            chosen = next((d for d in found if d.is_sr300), None)
            if chosen is None:
                if not self.allow_non_sr300:
                    raise UnsupportedDeviceError(
                        f"no SR300 connected (connected: {_connected_text(found)}); this SDK is calibrated for the "
                        "SR300. Pass allow_non_sr300=True to use another RealSense camera at your own risk"
                    )
                chosen = found[0]
        if not chosen.is_sr300 and not self.allow_non_sr300:
            raise UnsupportedDeviceError(
                f"{chosen} is not an SR300; pass allow_non_sr300=True to use it at your own risk"
            )
        self._chosen = chosen
        return chosen.serial

    def _make_config(self, rs: Any, serial: str) -> Any:
        config = rs.config()
        config.enable_device(serial)
        dw, dh = self.depth_size
        cw, ch = self.color_size
        config.enable_stream(rs.stream.depth, dw, dh, rs.format.z16, self.fps)
        config.enable_stream(rs.stream.infrared, dw, dh, rs.format.y8, self.fps)
        config.enable_stream(rs.stream.color, cw, ch, rs.format.rgb8, self.fps)
        if self.record_to is not None:
            config.enable_record_to_file(str(self.record_to))
        return config

    def _start_pipeline(self, rs: Any, config: Any) -> None:
        pipeline = rs.pipeline(self._context) if self._context is not None else rs.pipeline()
        try:
            profile = pipeline.start(config)
        except RuntimeError as error:
            raise CaptureError(
                f"cannot start {self._chosen} with depth/IR {self.depth_size[0]}x{self.depth_size[1]} and colour "
                f"{self.color_size[0]}x{self.color_size[1]} at {self.fps} fps: {error}"
            ) from None
        try:
            device = profile.get_device()
            self._device_info = describe_device(
                rs, device, origin="camera", name=self._chosen.name, serial=self._chosen.serial
            )
            self._depth_scale = clean_f32(device.first_depth_sensor().get_depth_scale())
            self._assembler = GridAssembler(
                rs, list(profile.get_streams()), device=self._device_info, depth_scale=self._depth_scale,
                align=self.align, keep_native_color=self.keep_native_color, where=self._chosen,
            )
        except (RuntimeError, StreamFormatError) as error:
            try:
                pipeline.stop()
            except RuntimeError:
                pass
            raise CaptureError(f"{self._chosen}: {error}") from None
        self._pipeline = pipeline
        self._begin_matching()

    def _watch_removal(self, rs: Any, serial: str) -> None:
        self._removed.clear()

        def changed(event: Any) -> None:
            try:
                for device in self._context.query_devices():
                    if device_text(device, rs.camera_info.serial_number) == serial:
                        return
                self._removed.set()
            except Exception:  # a callback must never raise into librealsense
                pass

        try:
            self._context.set_devices_changed_callback(changed)
        except (RuntimeError, AttributeError):
            pass

    def _open(self) -> None:
        rs = import_rs()
        serial = self._select_device(rs)
        self._active_serial = serial
        config = self._make_config(rs, serial)
        self._start_pipeline(rs, config)
        if self._context is not None:
            self._watch_removal(rs, serial)

    def _device_present(self) -> bool:
        rs = import_rs()
        try:
            devices = rs.context().query_devices()
            return any(device_text(d, rs.camera_info.serial_number) == self._active_serial for d in devices)
        except RuntimeError:
            return False

    # -- streaming ---------------------------------------------------------------------------
    def _stop_pipeline(self) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            try:
                pipeline.stop()
            except RuntimeError:
                pass

    def _reconnect(self, why: str) -> None:
        """Reopen the camera with exponential backoff, or raise DeviceDisconnectedError."""
        self._stop_pipeline()
        if not self.reconnect:
            raise DeviceDisconnectedError(f"{self._chosen} disconnected ({why})")
        waited = 0.0
        last: Exception | None = None
        for attempt in range(self.reconnect_attempts):
            delay = min(8.0, self.reconnect_backoff_s * (2**attempt))
            time.sleep(delay)
            waited += delay
            try:
                self._open()
            except (CameraNotFoundError, CaptureError) as error:
                last = error
                continue
            self.reconnects += 1
            return
        raise DeviceDisconnectedError(
            f"{self._chosen} disconnected ({why}) and {self.reconnect_attempts} reconnect attempts over "
            f"{waited:.1f} s failed (last: {last})"
        )

    def _wait(self) -> Any:
        started = time.monotonic()
        while True:
            if self._removed.is_set():
                self._reconnect("unplugged")
                started = time.monotonic()
                continue
            try:
                ok, frames = self._pipeline.try_wait_for_frames(_POLL_MS)
            except RuntimeError as error:
                self._reconnect(f"librealsense: {error}")
                started = time.monotonic()
                continue
            if ok:
                return frames
            if time.monotonic() - started >= self.frame_timeout_s:
                if not self._device_present():
                    self._reconnect("unplugged")
                    started = time.monotonic()
                    continue
                raise FrameTimeoutError(
                    f"{self._chosen}: no frames for {self.frame_timeout_s:.1f} s (device still connected; "
                    "check the USB 3 link and that no other program holds the camera)"
                )

    def _next_frameset(self) -> FrameSet:
        while True:
            frameset = self._next_ready()
            if frameset is not None:
                return frameset
            if self._pipeline is None:
                raise StopIteration
            frames = self._wait()
            if self._pipeline is not None:  # (a reconnect replaced the pipeline and matcher)
                self._push(frames)

    def _release(self) -> None:
        self._stop_pipeline()
        if self._context is not None:
            try:
                self._context.set_devices_changed_callback(lambda event: None)
            except (RuntimeError, AttributeError):
                pass
