import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdk.preprocess import (
    PREPROCESS_VERSION,
    center_crop,
    crops_to_inputs,
    face_median_depth_m,
    hflip_inputs,
    make_crops,
    make_region_crops,
    normalize_depth,
    square_region,
)
from sdk.types import CROP_SIZE, REGION_SIZE, FaceBox
from tests.conftest import make_frameset


def _scene(depth_scale: float = 0.000125, face_m: float = 0.5):
    """A 'face' disc 3 cm nearer than a plane at face_m, on a wall at 2 m."""
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w]
    z = np.full((h, w), 2.0)
    disc = (xx - 320) ** 2 + (yy - 240) ** 2 < 80**2
    z[disc] = face_m
    nose = (xx - 320) ** 2 + (yy - 240) ** 2 < 15**2
    z[nose] = face_m - 0.03
    depth = np.round(z / depth_scale).astype(np.uint16)
    depth[0:10, 0:10] = 0  # a hole far from the face
    color = np.dstack([(xx % 256).astype(np.uint8), (yy % 256).astype(np.uint8), np.full((h, w), 90, np.uint8)])
    ir = ((xx + yy) % 256).astype(np.uint8)
    return make_frameset(color, ir, depth, depth_scale=depth_scale)


BOX = FaceBox(250, 170, 390, 310)


def test_crop_shapes_version_and_depth_levels():
    crops = make_crops(_scene(), BOX)
    assert crops.rgb.shape == (CROP_SIZE, CROP_SIZE, 3) and crops.ir.shape == (CROP_SIZE, CROP_SIZE)
    assert crops.preprocess_version == PREPROCESS_VERSION
    assert crops.face_depth_m == pytest.approx(0.5, abs=1e-3)
    centre = crops.depth[56, 56]
    # the nose (3 cm in front of the median face) is brighter than mid-grey; the wall is 0
    assert centre > 128 + 20
    assert crops.depth[0, 0] == 0
    assert crops.depth[56, 85] == pytest.approx(128, abs=2)


def test_depth_normalisation_does_not_depend_on_depth_units():
    a = make_crops(_scene(depth_scale=0.000125), BOX)
    b = make_crops(_scene(depth_scale=0.001), BOX)
    # 1 mm units quantise the 3 cm nose step coarser but the normalised crop is the same picture
    assert np.abs(a.depth.astype(int) - b.depth.astype(int)).max() <= 2


def test_holes_are_zero_and_no_depth_gives_nan():
    frames = make_frameset(depth=np.zeros((480, 640), np.uint16))
    crops = make_crops(frames, BOX)
    assert np.isnan(crops.face_depth_m) and crops.depth_valid_fraction == 0.0
    assert crops.depth.max() == 0
    raw = np.array([[0, 4000], [4800, 3200]], np.uint16)
    out = normalize_depth(raw, 0.000125, 0.5)
    assert out[0, 0] == 0 and out[0, 1] == 128 and out[1, 0] == 0 and out[1, 1] == 255


def test_region_then_centre_crop_is_the_model_crop():
    frames = _scene()
    region = make_region_crops(frames, BOX)
    assert region.rgb.shape == (REGION_SIZE, REGION_SIZE, 3)
    crops = make_crops(frames, BOX)
    assert np.array_equal(center_crop(region.rgb), crops.rgb)
    assert np.array_equal(center_crop(region.depth), crops.depth)


@settings(max_examples=40, deadline=None)
@given(
    x0=st.floats(-200, 700), y0=st.floats(-200, 500), w=st.floats(4, 400), h=st.floats(4, 400)
)
def test_any_box_even_outside_the_frame_gives_valid_crops(x0, y0, w, h):
    frames = make_frameset(depth=np.full((480, 640), 4000, np.uint16))
    crops = make_crops(frames, FaceBox(x0, y0, x0 + w, y0 + h))
    assert crops.rgb.shape == (CROP_SIZE, CROP_SIZE, 3)
    side_x0, side_y0, side = square_region(FaceBox(x0, y0, x0 + w, y0 + h))
    assert side >= max(w, h)


def test_model_inputs_and_flip():
    crops = make_crops(_scene(), BOX)
    inputs = crops_to_inputs([crops, crops])
    assert set(inputs) == {"rgb", "ir", "depth"}
    for array in inputs.values():
        assert array.shape == (2, 3, CROP_SIZE, CROP_SIZE) and array.dtype == np.float32
    assert np.array_equal(inputs["ir"][0, 0], inputs["ir"][0, 2])  # grey repeated to 3 channels
    flipped = hflip_inputs(inputs)
    assert np.array_equal(flipped["rgb"][..., ::-1], inputs["rgb"])
    with pytest.raises(ValueError):
        crops_to_inputs([])


def test_median_window_ignores_background():
    frames = _scene()
    median, fraction = face_median_depth_m(frames, BOX)
    assert median == pytest.approx(0.5, abs=1e-3) and fraction == 1.0
