"""Capture layer: every frame producer (SR300 camera, .bag replay, simulator) as a Source of
FrameSets with colour, IR and depth on the depth grid. pyrealsense2 is imported lazily, only
by the classes that need it."""
from __future__ import annotations

from sdk.capture.base import DEFAULT_FRAME_TIMEOUT_S, Source, StreamProfile
from sdk.capture.factory import open_source

__all__ = [
    "DEFAULT_FRAME_TIMEOUT_S",
    "BagRecorder",
    "BagReplay",
    "BagSummary",
    "ConnectedDevice",
    "RealSenseCamera",
    "SimulatorSource",
    "Source",
    "StreamProfile",
    "check_bag",
    "list_devices",
    "open_source",
    "write_bag",
]

_LAZY = {
    "BagRecorder": "sdk.capture.bag_writer",
    "write_bag": "sdk.capture.bag_writer",
    "BagReplay": "sdk.capture.replay",
    "BagSummary": "sdk.capture.bagfile",
    "check_bag": "sdk.capture.bagfile",
    "ConnectedDevice": "sdk.capture.camera",
    "RealSenseCamera": "sdk.capture.camera",
    "list_devices": "sdk.capture.camera",
    "SimulatorSource": "sdk.capture.simulator",
}


def __getattr__(name: str):  # PEP 562: keep `import sdk.capture` light
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sdk.capture' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
