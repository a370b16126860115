import json
import math

import numpy as np
import pytest

from sdk.errors import InputValidationError
from sdk.types import (
    Decision,
    DeviceInfo,
    Extrinsics,
    FaceBox,
    FaceCrops,
    Intrinsics,
    LivenessResult,
    Reason,
)
from tests.conftest import make_frameset


def test_frameset_validates_shapes_and_dtypes():
    make_frameset()  # valid
    with pytest.raises(InputValidationError, match="FrameSet.depth must have dtype uint16"):
        make_frameset(depth=np.zeros((480, 640), np.float32))
    with pytest.raises(InputValidationError, match="FrameSet.color must have shape 480x640x3"):
        make_frameset(color=np.zeros((480, 640), np.uint8))
    with pytest.raises(InputValidationError, match="FrameSet.ir must have shape"):
        make_frameset(ir=np.zeros((240, 320), np.uint8))
    with pytest.raises(InputValidationError, match="depth_scale"):
        make_frameset(depth_scale=0.0)
    with pytest.raises(InputValidationError, match="implausible"):
        make_frameset(depth_scale=0.5)


def test_frameset_owns_read_only_pixels():
    frames = make_frameset()
    with pytest.raises(ValueError):
        frames.depth[0, 0] = 1
    with pytest.raises(AttributeError):
        frames.frame_number = 5  # type: ignore[misc]
    assert frames.depth_m().dtype == np.float32


def test_intrinsics_projection_round_trip():
    intr = Intrinsics(640, 480, 475.0, 476.0, 319.5, 241.0)
    u, v = intr.project(*intr.deproject(100.0, 200.0, 0.6))
    assert (u, v) == pytest.approx((100.0, 200.0))
    with pytest.raises(InputValidationError):
        Intrinsics(640, 480, -1.0, 475.0, 320.0, 240.0)
    with pytest.raises(InputValidationError):
        Intrinsics(640, 480, 475.0, 475.0, 320.0, 240.0, model="fisheye42")


def test_extrinsics_inverse_and_validation():
    c, s = math.cos(0.3), math.sin(0.3)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    ext = Extrinsics(tuple(rot.T.reshape(-1)), (0.025, 0.0, 0.001))
    p = np.array([0.1, -0.2, 0.7])
    q = ext.matrix @ p + np.array(ext.translation)
    inv = ext.inverse()
    assert np.allclose(inv.matrix @ q + np.array(inv.translation), p)
    with pytest.raises(InputValidationError, match="rotation matrix"):
        Extrinsics((2.0, 0, 0, 0, 1, 0, 0, 0, 1))


def test_facebox_geometry_and_errors():
    box = FaceBox(10, 20, 110, 140, score=0.9)
    assert box.width == 100 and box.height == 120 and box.center == (60, 80)
    assert box.iou(box) == pytest.approx(1.0)
    assert box.iou(FaceBox(200, 200, 300, 300)) == 0.0
    with pytest.raises(InputValidationError):
        FaceBox(10, 10, 5, 20)
    with pytest.raises(InputValidationError):
        FaceBox(float("nan"), 0, 1, 1)


def test_facecrops_must_agree_in_size():
    ok = FaceCrops(np.zeros((112, 112, 3), np.uint8), np.zeros((112, 112), np.uint8), np.zeros((112, 112), np.uint8), 0.5, 1.0, "v")
    assert ok.size == 112
    with pytest.raises(InputValidationError):
        FaceCrops(np.zeros((112, 112, 3), np.uint8), np.zeros((100, 100), np.uint8), np.zeros((112, 112), np.uint8), 0.5, 1.0, "v")


def test_live_result_fails_closed_by_construction():
    box = FaceBox(0, 0, 10, 10)
    with pytest.raises(InputValidationError):
        LivenessResult(Decision.LIVE, float("nan"), 0.5, "default", (), box, 5)
    with pytest.raises(InputValidationError):
        LivenessResult(Decision.LIVE, 0.4, 0.5, "default", (), box, 5)
    with pytest.raises(InputValidationError):
        LivenessResult(Decision.LIVE, 0.9, 0.5, "default", (), None, 5)
    spoof = LivenessResult("SPOOF", float("nan"), 0.5, "default", ("SPOOF_SCORE",), None, 0)
    data = json.loads(spoof.to_json())
    assert data["decision"] == "SPOOF" and data["reasons"] == ["SPOOF_SCORE"] and data["score"] is None
    assert spoof.reasons == (Reason.SPOOF_SCORE,) and not spoof.is_live


def test_device_info():
    assert DeviceInfo("Intel RealSense SR300", "1").is_sr300
    assert not DeviceInfo("Intel RealSense D435", "1").is_sr300
    with pytest.raises(InputValidationError):
        DeviceInfo("", "1")
