"""Fuzzing FrameSet validation: arrays of any dtype and shape, any float for the depth scale
and the timestamp, any integer frame number. The result is a valid, read-only FrameSet or an
InputValidationError; never another exception. Inputs outside the documented types (text,
None, NaN frame numbers, an unknown grid) are refused with InputValidationError too."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sdk.errors import InputValidationError
from sdk.types import FrameSet
from tests.conftest import make_frameset

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow])
H, W = 4, 6
BASE = make_frameset(height=H, width=W)
DTYPES = st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64, np.bool_, np.int64])
SHAPES = st.sampled_from([(H, W), (H, W, 3), (W, H), (H, W, 1), (H, W, 4), (0, 0), (H,), (H, W, 3, 1)])


def arrays(good_dtype, good_shape):
    good = hnp.arrays(good_dtype, good_shape, elements=st.integers(0, 255))
    return st.one_of(good, hnp.arrays(DTYPES, SHAPES), st.just(None), st.just([[0] * W] * H))


@FUZZ
@given(
    color=arrays(np.uint8, (H, W, 3)),
    ir=arrays(np.uint8, (H, W)),
    depth=arrays(np.uint16, (H, W)),
    depth_scale=st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 5),
    timestamp_ms=st.floats(allow_nan=True, allow_infinity=True) | st.integers(-2**63, 2**63),
    frame_number=st.integers(-2**40, 2**70),
)
def test_frameset_validation(color, ir, depth, depth_scale, timestamp_ms, frame_number):
    try:
        frames = FrameSet(color, ir, depth, depth_scale, BASE.intrinsics, timestamp_ms, frame_number, BASE.device)
    except InputValidationError:
        return
    assert frames.color.shape == (H, W, 3) and frames.color.dtype == np.uint8
    assert frames.ir.shape == (H, W) and frames.ir.dtype == np.uint8
    assert frames.depth.shape == (H, W) and frames.depth.dtype == np.uint16
    assert 0 < frames.depth_scale <= 0.01 and math.isfinite(frames.timestamp_ms) and frames.frame_number >= 0
    assert not (frames.color.flags.writeable or frames.ir.flags.writeable or frames.depth.flags.writeable)


@pytest.mark.parametrize(
    "field, value",
    [
        ("frame_number", float("nan")),  # ValueError from int()
        ("frame_number", float("inf")),  # OverflowError from int()
        ("frame_number", None),  # TypeError from int()
        ("frame_number", "x"),  # ValueError from int()
        ("frame_number", 1.7),  # accepted and kept as a float
        ("depth_scale", "0.001"),  # TypeError comparing str and float
        ("timestamp_ms", "1"),  # accepted and kept as a string
        ("grid", "bogus"),  # a plain ValueError from the Stream enum
        ("intrinsics", None),  # AttributeError
    ],
)
def test_frameset_pinned_bugs(field, value):
    fields = dict(color=BASE.color, ir=BASE.ir, depth=BASE.depth, depth_scale=BASE.depth_scale,
                  intrinsics=BASE.intrinsics, timestamp_ms=1.0, frame_number=1, device=BASE.device)
    fields[field] = value
    with pytest.raises(InputValidationError):
        FrameSet(**fields)


@pytest.mark.parametrize("frame_number, depth_scale", [(np.int64(7), np.float32(0.000125)), (np.uint32(7), 0.001),
                                                       (7.0, np.float64(0.001))])
def test_frameset_numpy_numbers_accepted(frame_number, depth_scale):
    frames = FrameSet(BASE.color, BASE.ir, BASE.depth, depth_scale, BASE.intrinsics, np.float64(3.5),
                      frame_number, BASE.device)
    assert frames.frame_number == 7 and type(frames.frame_number) is int
    assert type(frames.depth_scale) is float and type(frames.timestamp_ms) is float
