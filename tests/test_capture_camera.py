"""Capture layer without a camera: enumeration, typed errors, missing dependencies, and the
live-camera streaming logic (timeouts, disconnects, reconnect backoff) driven by a recording
played through the camera's own pipeline code."""
from __future__ import annotations

import builtins
import json
import sys
import types

import pytest

from sdk.capture import _rs
from sdk.capture.camera import RealSenseCamera, list_devices
from sdk.cli import EXIT_ERROR, main
from sdk.errors import (
    CameraNotFoundError,
    DependencyMissingError,
    DeviceDisconnectedError,
    FrameTimeoutError,
    UnsupportedDeviceError,
)

try:
    _rs.import_rs()
    HAVE_RS = True
except DependencyMissingError:
    HAVE_RS = False

needs_rs = pytest.mark.skipif(not HAVE_RS, reason="pyrealsense2 (extra 'camera') or libusb is not installed")
needs_no_camera = pytest.mark.skipif(
    not HAVE_RS or bool(list_devices()), reason="needs pyrealsense2 and no RealSense camera connected"
)


# -- no camera -------------------------------------------------------------------------------
@needs_no_camera
def test_no_camera_gives_camera_not_found():
    assert list_devices() == []
    with pytest.raises(CameraNotFoundError, match="no RealSense device connected") as info:
        RealSenseCamera()
    assert ".bag" in str(info.value) and "simulator" in str(info.value)  # says what to do instead


@needs_no_camera
def test_cli_devices_with_none(capsys):
    assert main(["devices"]) == 0
    assert capsys.readouterr().out.strip() == "no RealSense device connected"
    assert main(["devices", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"devices": []}


@needs_no_camera
def test_cli_record_without_camera(tmp_path, capsys):
    out = tmp_path / "session.bag"
    assert main(["record", "--out", str(out), "--seconds", "1"]) == EXIT_ERROR
    assert "no RealSense device connected" in capsys.readouterr().err
    assert not out.exists()


@needs_no_camera
def test_open_source_none_means_camera():
    from sdk.capture import open_source

    with pytest.raises(CameraNotFoundError):
        open_source(None)


# -- missing dependencies --------------------------------------------------------------------
def test_missing_pyrealsense2(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)  # makes `import pyrealsense2` fail
    with pytest.raises(DependencyMissingError, match=r'pip install "sr300-liveness\[camera\]"'):
        _rs.import_rs()
    with pytest.raises(DependencyMissingError):
        list_devices()
    with pytest.raises(DependencyMissingError):
        RealSenseCamera()
    assert main(["devices"]) == EXIT_ERROR
    assert "sr300-liveness[camera]" in capsys.readouterr().err


def test_missing_libusb(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "pyrealsense2":
            raise ImportError("libusb-1.0.so.0: cannot open shared object file: No such file or directory")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "pyrealsense2", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(DependencyMissingError, match="apt-get install libusb-1.0-0"):
        _rs.import_rs()


def test_modes_the_sr300_lacks_are_refused_before_usb():
    from sdk.errors import InputValidationError

    for kwargs in ({"depth": (1280, 720)}, {"fps": 90}, {"color": (800, 600)}, {"color": (1920, 1080), "fps": 60}):
        with pytest.raises(InputValidationError):
            RealSenseCamera(**kwargs)


# -- device selection (a fake librealsense context) ------------------------------------------
class _FakeDevice:
    def __init__(self, name: str, serial: str) -> None:
        self.info = {"name": name, "serial_number": serial, "firmware_version": "1.0", "usb_type_descriptor": "3.2",
                     "product_line": name.split()[-1]}

    def supports(self, field) -> bool:
        return field in self.info

    def get_info(self, field) -> str:
        return self.info[field]


def _fake_rs(devices: list[_FakeDevice]) -> types.SimpleNamespace:
    camera_info = types.SimpleNamespace(
        name="name", serial_number="serial_number", firmware_version="firmware_version",
        usb_type_descriptor="usb_type_descriptor", product_line="product_line",
    )
    context = types.SimpleNamespace(query_devices=lambda: list(devices))
    return types.SimpleNamespace(camera_info=camera_info, context=lambda: context, pipeline=object)


def test_other_realsense_model_is_refused(monkeypatch):
    monkeypatch.setattr("sdk.capture.camera.import_rs", lambda: _fake_rs([_FakeDevice("Intel RealSense D435", "111")]))
    with pytest.raises(UnsupportedDeviceError, match="D435") as info:
        RealSenseCamera()
    assert "allow_non_sr300" in str(info.value)
    with pytest.raises(UnsupportedDeviceError):
        RealSenseCamera(serial="111")


def test_unknown_serial_lists_what_is_connected(monkeypatch):
    fake = _fake_rs([_FakeDevice("Intel RealSense SR300", "222"), _FakeDevice("Intel RealSense D435", "111")])
    monkeypatch.setattr("sdk.capture.camera.import_rs", lambda: fake)
    with pytest.raises(CameraNotFoundError) as info:
        RealSenseCamera(serial="999")
    assert "999" in str(info.value) and "222" in str(info.value) and "D435" in str(info.value)


def test_devices_cli_lists_fake_devices(monkeypatch, capsys):
    fake = _fake_rs([_FakeDevice("Intel RealSense SR300", "222")])
    monkeypatch.setattr("sdk.capture.camera.import_rs", lambda: fake)
    assert main(["devices", "--json"]) == 0
    (device,) = json.loads(capsys.readouterr().out)["devices"]
    assert device["serial"] == "222" and device["is_sr300"] and device["usb_type"] == "3.2"
    assert main(["devices"]) == 0
    assert "serial=222" in capsys.readouterr().out


# -- streaming logic, with a recording standing in for the camera ----------------------------
@pytest.fixture
def bag_camera(tmp_path, monkeypatch):
    """RealSenseCamera whose 'device' is a 6-frame recording played back deterministically."""
    if not HAVE_RS:
        pytest.skip("pyrealsense2 (extra 'camera') or libusb is not installed")
    from sdk.capture import write_bag
    from test_capture_bags import DEVICE, INTR, SCALE, make_framesets

    bag = tmp_path / "cam.bag"
    write_bag(bag, make_framesets(6), DEVICE, INTR, SCALE)
    state = {"present": True, "opens": 0, "fail_opens": 0}

    def select(self, rs):
        state["opens"] += 1
        if state["fail_opens"] > 0:
            state["fail_opens"] -= 1
            raise CameraNotFoundError("no RealSense device connected")
        self._context = None
        self._chosen = types.SimpleNamespace(name=DEVICE.name, serial=DEVICE.serial, __str__=lambda s: "fake SR300")
        return DEVICE.serial

    def make_config(self, rs, serial):
        config = rs.config()
        config.enable_device_from_file(str(bag), repeat_playback=False)
        # deterministic: no frame may be dropped by real-time pacing on a busy machine
        config.resolve(rs.pipeline_wrapper(rs.pipeline())).get_device().as_playback().set_real_time(False)
        return config

    sleeps: list[float] = []
    monkeypatch.setattr(RealSenseCamera, "_select_device", select)
    monkeypatch.setattr(RealSenseCamera, "_make_config", make_config)
    monkeypatch.setattr(RealSenseCamera, "_device_present", lambda self: state["present"])
    monkeypatch.setattr("sdk.capture.camera.time.sleep", sleeps.append)
    state["sleeps"] = sleeps
    return state


def test_camera_frames_then_timeout(bag_camera):
    with RealSenseCamera(frame_timeout_s=0.4) as camera:
        assert camera.device_info.origin == "camera"
        numbers = [next(camera).frame_number for _ in range(6)]
        with pytest.raises(FrameTimeoutError, match="no frames for 0.4 s"):
            next(camera)
    assert numbers == [1, 2, 3, 4, 5, 6]


def test_camera_unplugged_without_reconnect(bag_camera):
    bag_camera["present"] = False
    with RealSenseCamera(frame_timeout_s=0.3) as camera:
        list(next(camera) for _ in range(6))
        with pytest.raises(DeviceDisconnectedError, match="disconnected"):
            next(camera)


def test_camera_reconnects_with_backoff(bag_camera):
    bag_camera["present"] = False
    with RealSenseCamera(frame_timeout_s=0.3, reconnect=True, reconnect_backoff_s=0.25) as camera:
        first = [next(camera).frame_number for _ in range(6)]
        bag_camera["fail_opens"] = 2  # the camera comes back on the third try
        again = [next(camera).frame_number for _ in range(3)]
        assert camera.reconnects == 1
    assert first == [1, 2, 3, 4, 5, 6] and again == [1, 2, 3]
    assert bag_camera["sleeps"] == [0.25, 0.5, 1.0]


def test_camera_reconnect_gives_up(bag_camera):
    bag_camera["present"] = False
    with RealSenseCamera(frame_timeout_s=0.3, reconnect=True, reconnect_attempts=4, reconnect_backoff_s=1.0) as camera:
        for _ in range(6):
            next(camera)
        bag_camera["fail_opens"] = 100
        with pytest.raises(DeviceDisconnectedError, match="4 reconnect attempts"):
            next(camera)
    assert bag_camera["sleeps"] == [1.0, 2.0, 4.0, 8.0]


@needs_no_camera
def test_bag_recorder_without_camera(tmp_path):
    from sdk.capture import BagRecorder

    with pytest.raises(CameraNotFoundError):
        BagRecorder(None, tmp_path / "session.bag")
    assert list(tmp_path.iterdir()) == []
