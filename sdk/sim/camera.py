"""The virtual SR300's identity and optics (numbers modelled on a real SR300's calibration)."""
from __future__ import annotations

from sdk.types import SR300_DEPTH_SCALE, SR300_NAME, DeviceInfo, Extrinsics, Intrinsics, StreamIntrinsics

WIDTH, HEIGHT = 640, 480
DEPTH_SCALE = SR300_DEPTH_SCALE

#: Depth and IR share one sensor on the SR300 (IR is pixel-registered to depth).
DEPTH_INTRINSICS = Intrinsics(WIDTH, HEIGHT, fx=475.0, fy=475.0, ppx=313.5, ppy=246.0, model="inverse_brown_conrady",
                              coeffs=(0.0, 0.0, 0.0, 0.0, 0.0))
#: Native colour intrinsics at 640x480 (the frames themselves are delivered on the depth grid).
COLOR_INTRINSICS = Intrinsics(WIDTH, HEIGHT, fx=615.0, fy=615.0, ppx=318.0, ppy=242.5, model="brown_conrady")

INTRINSICS = StreamIntrinsics(color=COLOR_INTRINSICS, ir=DEPTH_INTRINSICS, depth=DEPTH_INTRINSICS)

#: Depth -> colour: the SR300's colour camera sits about 2.5 cm beside the IR camera.
DEPTH_TO_COLOR = Extrinsics(
    rotation=(0.99999, 0.00286, -0.00336, -0.00285, 0.99999, 0.00225, 0.00337, -0.00224, 0.99999),
    translation=(0.0257, 0.00037, 0.00405),
)

MIN_RANGE_M = 0.2
MAX_RANGE_M = 2.5


def device_info(seed: int) -> DeviceInfo:
    serial = f"SIM{(seed * 2654435761) % 10**9:09d}"
    return DeviceInfo(name=SR300_NAME, serial=serial, firmware="3.26.1.0", product_line="SR300", origin="simulator")
