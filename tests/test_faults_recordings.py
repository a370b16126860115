"""Broken recordings, made on the fly from a real simulator .bag: each ends in a typed capture
error (BagFormatError / MissingStreamError), which a check reports as UNCERTAIN DEVICE_ERROR.

The model says LIVE to anything, so a recording that played at all would be LIVE: only the
capture layer's checks stand between a damaged file and a LIVE answer.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyrealsense2", reason="pyrealsense2 (extra 'camera') is not installed")

from sdk import Decision, Reason  # noqa: E402
from sdk.capture import BagReplay, SimulatorSource  # noqa: E402
from sdk.cli.cmd_synth_bag import synth_bag  # noqa: E402
from sdk.engine.bundle import write_bundle  # noqa: E402
from sdk.errors import BagFormatError, CaptureError, MissingStreamError  # noqa: E402
from sdk.faults import BAG_DAMAGE, damage_bag, write_bag_with  # noqa: E402
from sdk.session import LivenessSession, SessionConfig  # noqa: E402
from tests.conftest import tiny_onnx_model  # noqa: E402

STRUCTURAL = [d for d in BAG_DAMAGE if d != "zero_block"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("recordings")


@pytest.fixture(scope="module")
def live_bag(folder) -> Path:
    bag = folder / "live.bag"
    synth_bag("live", 1, 6, bag)
    return bag


@pytest.fixture(scope="module")
def always_live(folder) -> Path:
    model = tiny_onnx_model(folder / "m.onnx", weights=(0.0, 0.0, 0.0), bias=5.0)
    return write_bundle(folder / "bundle", model, name="always-live", version="0.0.1",
                        operating_points={"default": {"threshold": 0.5}}, default_operating_point="default").path


def check(bag: Path, bundle: Path | None):
    session = LivenessSession(bag, bundle, SessionConfig(max_frames=6, timeout_s=30))
    try:
        return session.check()
    finally:
        session.close()


def test_control_the_undamaged_recording_is_live(live_bag, always_live):
    assert check(live_bag, always_live).decision is Decision.LIVE


@pytest.mark.parametrize("damage", STRUCTURAL)
@pytest.mark.parametrize("seed", [0, 1])
def test_structural_damage_is_a_device_error(folder, live_bag, always_live, damage, seed):
    bad = damage_bag(live_bag, folder / f"{damage}_{seed}.bag", damage, seed)
    with pytest.raises(BagFormatError):
        BagReplay(bad)
    result = check(bad, always_live)
    assert result.decision is Decision.UNCERTAIN and result.reasons == (Reason.DEVICE_ERROR,)
    assert "BagFormatError" in result.message


@pytest.mark.parametrize(
    "name, options, error",
    [
        ("no_colour", {"streams": ("depth", "ir")}, MissingStreamError),
        ("no_ir", {"streams": ("depth", "color")}, MissingStreamError),
        ("no_depth", {"streams": ("ir", "color")}, MissingStreamError),
        ("ir_y16", {"ir_format": "y16"}, BagFormatError),
        ("depth_y16", {"depth_format": "y16"}, BagFormatError),
        ("colour_yuyv", {"color_format": "yuyv"}, BagFormatError),
    ],
)
def test_missing_streams_and_wrong_formats(folder, always_live, name, options, error):
    frames = list(SimulatorSource("live", 1, n_frames=3))
    bag = write_bag_with(folder / f"{name}.bag", frames, **options)
    with pytest.raises(error):
        BagReplay(bag)
    result = check(bag, always_live)
    assert result.decision is Decision.UNCERTAIN and result.reasons == (Reason.DEVICE_ERROR,)


def test_colour_of_another_size_is_resampled_not_refused(folder):
    """A colour stream of another resolution is a real SR300 set-up: rs.align puts it on the depth grid."""
    frames = list(SimulatorSource("live", 1, n_frames=2))
    bag = write_bag_with(folder / "colour_320.bag", frames, color_size=(320, 240))
    with BagReplay(bag) as replay:
        got = list(replay)
    assert len(got) == 2 and got[0].color.shape == frames[0].color.shape
    assert np.array_equal(got[0].depth, frames[0].depth)


def test_session_used_as_context_manager_raises_the_typed_error(folder, live_bag, always_live):
    bad = damage_bag(live_bag, folder / "cm_unindexed.bag", "unindexed")
    with pytest.raises(CaptureError, match="unindexed"):
        with LivenessSession(bad, always_live):
            pass


def test_pixel_damage_never_turns_an_attack_live(folder):
    """ROS bags carry no checksums: zeroed bytes inside a chunk can play with damaged pixels.
    Such a file either stops early (BagFormatError: fewer frames than the index promises) or
    plays; an attack recording must then still not be LIVE with the shipped model."""
    attack = folder / "mask.bag"
    synth_bag("mask_3d", 7, 6, attack)
    outcomes = []
    for seed in range(3):
        result = check(damage_bag(attack, folder / f"mask_zero_{seed}.bag", "zero_block", seed), None)
        assert result.decision is not Decision.LIVE, result
        outcomes.append(result.decision)
    assert outcomes
