"""FacePipeline end to end: crops identical to sdk.preprocess, timings, fail-closed crops, and
BlazeFace on simulator frames (live faces found, empty scenes empty)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sdk.detect import FaceAnalysis
from sdk.preprocess import make_crops, make_region_crops
from sdk.quality import QualityConfig
from sdk.types import Reason
from tests.test_detect_support import face_frame

pytest.importorskip("mediapipe", reason="mediapipe runs BlazeFace")


@pytest.fixture(scope="module")
def pipeline():
    from sdk.pipeline import FacePipeline

    with FacePipeline() as p:
        yield p


def _same_crops(a, b) -> None:
    for name in ("rgb", "ir", "depth"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.face_depth_m == b.face_depth_m and a.depth_valid_fraction == b.depth_valid_fraction
    assert a.preprocess_version == b.preprocess_version


def test_crops_are_bit_exact_sdk_preprocess_crops(pipeline):
    frames, _ = face_frame(0.45, 0.15, center=(290, 250))
    analysis = pipeline.analyze(frames)
    assert isinstance(analysis, FaceAnalysis) and analysis.quality.passed
    assert analysis.crops is not None and analysis.crops.size == 112
    _same_crops(analysis.crops, make_crops(frames, analysis.box))
    # What training's dataset generator stores is the 125x125 region; its centre crop is ours.
    from sdk.preprocess import center_crop_crops

    _same_crops(analysis.crops, center_crop_crops(make_region_crops(frames, analysis.box)))


def test_timings_have_exactly_the_session_stage_keys(pipeline):
    frames, _ = face_frame(0.5, 0.15)
    analysis = pipeline.analyze(frames)
    assert set(analysis.timings_ms) == {"detect", "crops", "quality"}
    assert all(v >= 0 for v in analysis.timings_ms.values())
    assert sum(analysis.detail_ms.values()) == pytest.approx(sum(analysis.timings_ms.values()), rel=1e-6)


def test_a_frame_that_fails_a_gate_has_no_crops(pipeline):
    frames, _ = face_frame(0.5, 0.15)
    dark = dataclasses.replace(frames, color=(frames.color * 0.08).astype(np.uint8))
    analysis = pipeline.analyze(dark)
    assert analysis.box is not None and not analysis.quality.passed
    assert analysis.crops is None  # nothing a caller could score by mistake
    with pytest.raises(dataclasses.FrozenInstanceError):
        analysis.box = None  # type: ignore[misc]


def test_pipeline_takes_a_detector_instance_and_closes_it():
    from sdk.detect.blazeface import BlazeFaceDetector
    from sdk.pipeline import FacePipeline

    inner = BlazeFaceDetector("short")
    with FacePipeline(inner, QualityConfig(max_distance_m=0.4)) as p:
        frames, _ = face_frame(0.5, 0.15)
        assert p.analyze(frames).quality.reasons == (Reason.FACE_TOO_FAR,)
    assert not inner._tasks  # closed with the pipeline


# -- simulator frames ------------------------------------------------------------------------
sim = pytest.importorskip("sdk.sim", reason="the simulator provides synthetic SR300 frames")


def test_simulator_live_faces_are_found_confirmed_and_crops_match(pipeline):
    # A small, fixed sample; tools/bench_detect.py measures recall on >= 1,000 frames.
    found, ious, n = 0, [], 16
    for k in range(n):
        frames, truth = sim.Simulator("live", 61_000 + k, distance_range_m=(0.3, 1.0), max_yaw_deg=30).render(k % 4)
        analysis = pipeline.analyze(frames)
        if analysis.box is not None and analysis.box.iou(truth.face_box) >= 0.3:
            found += 1
            ious.append(analysis.box.iou(truth.face_box))
            assert 0.25 <= analysis.quality.measurements["face_depth_m"] <= 1.1
            if analysis.crops is not None:
                _same_crops(analysis.crops, make_crops(frames, analysis.box))
    assert found >= n - 1, f"{found}/{n}"
    assert np.mean(ious) > 0.55


def test_simulator_empty_scenes_never_pass(pipeline):
    for k in range(6):
        frames, truth = sim.Simulator("empty", 62_000 + k).render(0)
        analysis = pipeline.analyze(frames)
        assert truth.face_box is None
        assert analysis.box is None and not analysis.quality.passed
        assert Reason.NO_FACE in analysis.quality.reasons


def test_simulator_phone_replays_are_reported_as_implausible_size(pipeline):
    """A face on a phone screen is physically small: depth confirmation turns it down and the
    gates report IMPLAUSIBLE_FACE_SIZE (the session's spoof cue) instead of NO_FACE."""
    implausible = 0
    for k in range(8):
        frames, _ = sim.Simulator("screen_replay", 63_000 + k).render(0)
        analysis = pipeline.analyze(frames)
        for det in analysis.detections.accepted:
            assert 0.09 <= det.depth.width_m <= 0.22
        if Reason.IMPLAUSIBLE_FACE_SIZE in analysis.quality.reasons:
            implausible += 1
            assert analysis.box is None and analysis.crops is None
            assert any(d.depth.width_m < 0.09 for d in analysis.detections.rejected)
    assert implausible >= 2


def test_the_per_frame_path_only_calls_downward():
    """Layers: preprocess < detect < quality < pipeline < session; no module imports upwards."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "sdk"
    forbidden = {
        "detect": ("sdk.quality", "sdk.pipeline", "sdk.session", "sdk.fusion"),
        "preprocess.py": ("sdk.detect", "sdk.quality", "sdk.pipeline", "sdk.session"),
        "quality.py": ("sdk.pipeline", "sdk.session"),
        "pipeline.py": ("sdk.session",),
        "fusion.py": ("sdk.session", "sdk.pipeline", "sdk.quality"),
    }
    for name, bad in forbidden.items():
        files = sorted((root / name).glob("*.py")) if (root / name).is_dir() else [root / name]
        for file in files:
            for node in ast.walk(ast.parse(file.read_text())):
                module = node.module if isinstance(node, ast.ImportFrom) else None
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [module or ""]
                for imported in names:
                    assert not imported.startswith(bad), f"{file.name} imports {imported} (upwards)"
    assert not (root / "detect" / "pipeline.py").exists()
