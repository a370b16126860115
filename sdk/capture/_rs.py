"""The one place that imports pyrealsense2, plus conversions between its types and sdk.types.

pyrealsense2 is an optional dependency (extra ``camera``) and needs the system library
libusb-1.0, so it is imported lazily and a missing piece becomes a DependencyMissingError that
says how to install it.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from sdk.errors import DependencyMissingError
from sdk.types import Extrinsics, Intrinsics

PIP_HINT = 'pip install "sr300-liveness[camera]"'
APT_HINT = "apt-get install libusb-1.0-0"


def import_rs() -> ModuleType:
    """Import pyrealsense2 or raise DependencyMissingError with the install command."""
    try:
        import pyrealsense2 as rs  # noqa: PLC0415 - optional, heavy, native
    except ImportError as error:
        text = str(error)
        if "libusb" in text:
            raise DependencyMissingError(
                f"pyrealsense2 is installed but the system library libusb-1.0 is missing ({text}); "
                f"install it with `{APT_HINT}`"
            ) from error
        raise DependencyMissingError(
            f"pyrealsense2 is not available ({text}); install it with `{PIP_HINT}` "
            f"(it also needs the system library libusb-1.0: `{APT_HINT}`)"
        ) from error
    # Some broken installs import an empty namespace package; treat that as missing too.
    if not hasattr(rs, "pipeline"):
        raise DependencyMissingError(f"pyrealsense2 is incomplete (no pipeline class); reinstall it with `{PIP_HINT}`")
    return rs


def clean_f32(value: float) -> float:
    """librealsense stores intrinsics and options as float32: return the shortest decimal that
    reads back as the same float32 (0.000125 rather than 0.0001250000059...), so a value
    written from Python comes back equal to what was written whenever float32 can hold it."""
    return float(str(np.float32(value)))


# librealsense distortion enum names <-> sdk.types.DISTORTION_MODELS
_DISTORTION_NAMES = {
    "none": "none",
    "brown_conrady": "brown_conrady",
    "modified_brown_conrady": "modified_brown_conrady",
    "inverse_brown_conrady": "inverse_brown_conrady",
    "ftheta": "ftheta",
    "kannala_brandt4": "kannala_brandt4",
}


def intrinsics_from_rs(intr: Any) -> Intrinsics:
    model = str(intr.model).rsplit(".", 1)[-1]
    return Intrinsics(
        width=int(intr.width),
        height=int(intr.height),
        fx=clean_f32(intr.fx),
        fy=clean_f32(intr.fy),
        ppx=clean_f32(intr.ppx),
        ppy=clean_f32(intr.ppy),
        model=_DISTORTION_NAMES.get(model, "none"),
        coeffs=tuple(clean_f32(c) for c in list(intr.coeffs)[:5]),
    )


def intrinsics_to_rs(rs: ModuleType, intr: Intrinsics) -> Any:
    out = rs.intrinsics()
    out.width = int(intr.width)
    out.height = int(intr.height)
    out.fx = float(intr.fx)
    out.fy = float(intr.fy)
    out.ppx = float(intr.ppx)
    out.ppy = float(intr.ppy)
    out.model = getattr(rs.distortion, _DISTORTION_NAMES[intr.model])
    out.coeffs = [float(c) for c in intr.coeffs]
    return out


def extrinsics_from_rs(extr: Any) -> Extrinsics:
    return Extrinsics(
        rotation=tuple(clean_f32(v) for v in extr.rotation),
        translation=tuple(clean_f32(v) for v in extr.translation),
    )


def extrinsics_to_rs(rs: ModuleType, extr: Extrinsics) -> Any:
    out = rs.extrinsics()
    out.rotation = [float(v) for v in extr.rotation]
    out.translation = [float(v) for v in extr.translation]
    return out


def device_text(device: Any, field: Any) -> str:
    """A camera_info string, or "" where the device does not report that field."""
    try:
        return str(device.get_info(field)) if device.supports(field) else ""
    except RuntimeError:
        return ""
