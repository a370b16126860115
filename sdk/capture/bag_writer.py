"""Recording .bag files: the virtual SR300's recorder (write_bag) and live sessions (BagRecorder).

write_bag builds a librealsense software device that looks like an SR300 (same name, sensors,
streams, depth units) and records it with librealsense's own recorder, so the file is a
genuine librealsense ROS1 bag that BagReplay, realsense-viewer and rs-convert all play.

Colour registration: FrameSets carry colour already on the depth grid (the simulator renders it
there; a camera's colour was aligned before it became a FrameSet). The bag's colour stream is
therefore registered with the depth stream's intrinsics and identity extrinsics, which is the
truth about those pixels. On playback the frame assembler sees a registered stream and takes
it pixel for pixel, so colour, IR and depth come back bit-exact. (rs.align on such a stream
maps every pixel onto itself but blanks the pixels where depth is 0; see sdk.capture.frames.)
The colour camera's native intrinsics and the depth-to-colour extrinsics describe a camera whose
pixels are not in the file, so they are not written; a replayed FrameSet reports the depth
intrinsics for colour.
"""
from __future__ import annotations

import gc
import os
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from sdk.capture._rs import extrinsics_to_rs, import_rs, intrinsics_to_rs
from sdk.capture.bagfile import check_bag
from sdk.errors import BagFormatError, InputValidationError
from sdk.types import DeviceInfo, Extrinsics, FrameSet, Intrinsics, StreamIntrinsics
from sdk.validate import check_positive

DEPTH_SENSOR_NAME = "Coded-Light Depth Sensor"
COLOR_SENSOR_NAME = "RGB Camera"
_IDENTITY = Extrinsics()


def _temp_path(path: Path) -> Path:
    # Same folder (os.replace stays atomic); ends in .bag because librealsense keys on it.
    return path.with_name(f".{path.stem}.{os.getpid()}.partial.bag")


def _video_stream(rs: Any, kind: Any, index: int, uid: int, fmt: Any, bpp: int, intr: Intrinsics, fps: int) -> Any:
    stream = rs.video_stream()
    stream.type = kind
    stream.index = index
    stream.uid = uid
    stream.width = intr.width
    stream.height = intr.height
    stream.fps = fps
    stream.bpp = bpp
    stream.fmt = fmt
    stream.intrinsics = intrinsics_to_rs(rs, intr)
    return stream


def write_bag(
    path: str | os.PathLike[str],
    framesets: Iterable[FrameSet],
    device_info: DeviceInfo,
    intrinsics: StreamIntrinsics,
    depth_scale: float,
    depth_to_color: Extrinsics | None = None,
    fps: int = 30,
    *,
    compress: bool = True,
    streams: tuple[str, ...] = ("depth", "ir", "color"),
) -> int:
    """Record FrameSets as an SR300 .bag at ``path``; return the number of frames written.

    The file appears at ``path`` only when it is complete and indexed: it is written to a
    temporary name beside it and renamed at the end, so an error never leaves half a bag.
    ``depth_to_color`` is accepted for API symmetry with the simulator and checked, but (see the
    module docstring) colour is recorded registered to depth. Timestamps are stored in whole
    nanoseconds, intrinsics and the depth scale as float32 (librealsense's types).
    ``streams`` records only some of "depth", "ir", "color" (for partial test recordings;
    BagReplay refuses such files with MissingStreamError).
    """
    path = Path(path)
    check_positive("write_bag fps", fps)
    check_positive("write_bag depth_scale", depth_scale)
    if depth_to_color is not None and not isinstance(depth_to_color, Extrinsics):
        raise InputValidationError("depth_to_color must be an sdk.types.Extrinsics")
    if not path.parent.is_dir():
        raise BagFormatError(path, "the folder to write it in does not exist")
    rs = import_rs()
    grid = intrinsics.depth
    if intrinsics.ir.width != grid.width or intrinsics.ir.height != grid.height:
        raise InputValidationError("IR and depth must share one resolution (one SR300 sensor)")
    unknown = set(streams) - {"depth", "ir", "color"}
    if unknown or not streams:
        raise InputValidationError(f"streams must be a non-empty subset of depth, ir, color; got {streams!r}")
    temp = _temp_path(path)
    count = 0
    recorder = None
    sensors: list[Any] = []
    try:
        device = rs.software_device()
        for field, value in (
            (rs.camera_info.name, device_info.name),
            (rs.camera_info.serial_number, device_info.serial or "0"),
            (rs.camera_info.firmware_version, device_info.firmware or "0.0.0.0"),
            (rs.camera_info.product_line, device_info.product_line or "SR300"),
        ):
            # a software device pre-registers its name ("Software-Device"); registering again
            # would append to it instead of replacing it
            if device.supports(field):
                device.update_info(field, value)
            else:
                device.register_info(field, value)
        depth_sensor = device.add_sensor(DEPTH_SENSOR_NAME)
        color_sensor = device.add_sensor(COLOR_SENSOR_NAME)
        fps_i = int(round(fps))
        depth_profile = depth_sensor.add_video_stream(_video_stream(rs, rs.stream.depth, 0, 0, rs.format.z16, 2, grid, fps_i))
        ir_profile = depth_sensor.add_video_stream(_video_stream(rs, rs.stream.infrared, 1, 1, rs.format.y8, 1, grid, fps_i))
        color_profile = color_sensor.add_video_stream(_video_stream(rs, rs.stream.color, 0, 2, rs.format.rgb8, 3, grid, fps_i))
        depth_sensor.add_read_only_option(rs.option.depth_units, float(depth_scale))
        identity = extrinsics_to_rs(rs, _IDENTITY)
        for a, b in ((depth_profile, ir_profile), (depth_profile, color_profile), (ir_profile, color_profile)):
            a.register_extrinsics_to(b, identity)
            b.register_extrinsics_to(a, identity)
        # The SR300's own matcher: depth and IR by frame number, colour by timestamp.
        device.create_matcher(rs.matchers.di_c)
        recorder = rs.recorder(str(temp), device, bool(compress))
        active = [
            (depth_sensor, depth_profile, "depth", 2),
            (depth_sensor, ir_profile, "ir", 1),
            (color_sensor, color_profile, "color", 3),
        ]
        active = [entry for entry in active if entry[2] in streams]
        for sensor in (depth_sensor, color_sensor):
            mine = [profile for owner, profile, _, _ in active if owner is sensor]
            if mine:
                sensor.open(mine)
                sensors.append(sensor)
                # The recorder taps the sensor; the callback only has to accept the frames.
                sensor.start(lambda frame: None)
        recorded = [(sensor, profile.as_video_stream_profile(), name, bpp) for sensor, profile, name, bpp in active]
        shape = (grid.height, grid.width)
        for frameset in framesets:
            if frameset.shape != shape:
                raise InputValidationError(f"FrameSet {frameset.frame_number} is {frameset.shape}, the bag is {shape}")
            # whole nanoseconds: what the bag keeps, so replay returns exactly this value
            timestamp = round(float(frameset.timestamp_ms), 6)
            for sensor, profile, name, bpp in recorded:
                pixels = np.ascontiguousarray(getattr(frameset, name))
                frame = rs.software_video_frame()
                frame.pixels = pixels  # the binding copies the buffer
                frame.stride = grid.width * bpp
                frame.bpp = bpp
                frame.timestamp = timestamp
                frame.domain = rs.timestamp_domain.hardware_clock
                frame.frame_number = int(frameset.frame_number)
                frame.profile = profile
                sensor.on_video_frame(frame)
            count += 1
        if count == 0:
            raise InputValidationError("write_bag got no FrameSets: an empty recording cannot be replayed")
        for sensor in sensors:
            sensor.stop()
            sensor.close()
        sensors = []
        # The recorder writes the index when it is destroyed; nothing else may hold it.
        del recorder
        recorder = None
        gc.collect()
        check_bag(temp)
        os.replace(temp, path)
    finally:
        for sensor in sensors:
            for step in (sensor.stop, sensor.close):
                try:
                    step()
                except RuntimeError:
                    pass
        recorder = None
        gc.collect()
        if temp.exists():
            temp.unlink()
    return count


class BagRecorder:
    """Records a live camera session to ``path`` with librealsense's recorder.

    ``source_camera`` is a RealSenseCamera (or None for the first SR300). The camera is opened
    with ``rs.config.enable_record_to_file`` so the file is exactly what librealsense writes
    (the camera's native streams, colour unaligned); BagReplay and librealsense tools play it.
    """

    def __init__(self, source_camera: Any, path: str | os.PathLike[str]) -> None:
        from sdk.capture.camera import RealSenseCamera

        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise BagFormatError(self.path, "the folder to write it in does not exist")
        if source_camera is None:
            source_camera = RealSenseCamera(record_to=self.path)
        elif isinstance(source_camera, RealSenseCamera):
            if source_camera.record_to is None or source_camera.record_to.resolve() != self.path.resolve():
                # recording is chosen when the pipeline starts, so restart it with a file
                source_camera = source_camera.reopen(record_to=self.path)
        else:
            raise InputValidationError("BagRecorder records a RealSenseCamera (or None for the first SR300)")
        self.camera = source_camera

    def record(self, seconds: float | None = None, frames: int | None = None) -> int:
        """Stream until ``seconds`` have passed or ``frames`` FrameSets arrived; return the count."""
        if seconds is None and frames is None:
            raise InputValidationError("record() needs seconds or frames")
        deadline = None if seconds is None else time.monotonic() + float(seconds)
        count = 0
        for _ in self.camera:
            count += 1
            if frames is not None and count >= frames:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
        return count

    def close(self) -> None:
        """Stop the camera; librealsense closes and indexes the file."""
        self.camera.close()
        gc.collect()

    def __enter__(self) -> "BagRecorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["BagRecorder", "write_bag"]
