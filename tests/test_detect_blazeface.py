"""BlazeFaceDetector on a real face photograph (scikit-image's astronaut) and its failure modes."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from sdk.detect import Detections, DetectorModelError, DetectorModelNotFoundError
from sdk.detect.blazeface import KEYPOINTS, MODEL_FILES, BlazeFaceDetector, model_path
from sdk.errors import InputValidationError, ModelError
from tests.conftest import make_frameset
from tests.test_detect_support import ASTRONAUT_BOX, astronaut, face_frame

pytest.importorskip("mediapipe", reason="mediapipe runs BlazeFace")


@pytest.fixture(scope="module")
def short():
    with BlazeFaceDetector("short") as det:
        yield det


def test_shipped_models_resolve_to_real_files():
    for name, filename in MODEL_FILES.items():
        path = model_path(name)
        assert path.name == filename and path.stat().st_size > 100_000
    assert (model_path("short").parent / "NOTICE.md").is_file()


@pytest.mark.parametrize("mode", ["short", "full", "auto"])
def test_finds_the_astronaut_in_the_raw_photo(mode):
    photo = astronaut()
    with BlazeFaceDetector(mode) as det:
        found = det.detect_rgb(photo)
    assert isinstance(found, Detections) and len(found) == 1
    face = found.accepted[0]
    assert face.score > 0.8
    assert face.depth is None and face.rejection is None
    expected = ASTRONAUT_BOX
    from sdk.types import FaceBox

    assert face.box.iou(FaceBox(*expected)) > 0.7
    # Six keypoints in pixels, inside (or at the edge of) the box; eyes above mouth.
    assert len(face.box.landmarks) == len(KEYPOINTS)
    right_eye, left_eye, nose, mouth = face.box.landmarks[:4]
    for x, y in (right_eye, left_eye, nose, mouth):
        assert face.box.x0 <= x <= face.box.x1 and face.box.y0 <= y <= face.box.y1
    assert right_eye[1] < mouth[1] and left_eye[1] < mouth[1]
    assert found.image_size == (512, 512)


def test_finds_the_face_in_a_frameset_on_the_grid(short):
    frames, box = face_frame(0.5, 0.15, center=(300, 220))
    found = short.detect(frames)
    assert len(found) == 1 and found.stage == "short"
    assert found.faces[0].iou(box) > 0.6
    assert found.image_size == (640, 480)


def test_nothing_on_a_blank_frame(short):
    assert not short.detect(make_frameset())


def test_auto_falls_back_to_full_range_for_small_faces():
    frames, box = face_frame(1.6, 0.15, background_m=None)  # ~45 px: too small for short range
    with BlazeFaceDetector("short") as s, BlazeFaceDetector("auto") as a:
        assert not s.detect(frames)
        found = a.detect(frames)
    assert found.stage.startswith("full") and found.faces[0].iou(box) > 0.4
    stages = []
    with BlazeFaceDetector("auto") as a:
        stages = [r.stage for r in a.detect_stages(make_frameset())]
    assert len(stages) == 3  # short, full, full on the equalised image: all tried on an empty frame


def test_missing_model_file_is_a_typed_error(tmp_path):
    with pytest.raises(DetectorModelNotFoundError) as info:
        BlazeFaceDetector("short", model_paths={"short": tmp_path / "nope.tflite"})
    assert "nope.tflite" in str(info.value)
    assert isinstance(info.value, ModelError) and isinstance(info.value, FileNotFoundError)


def test_missing_shipped_model_is_a_typed_error(monkeypatch, tmp_path):
    import sdk.detect.blazeface as bf

    monkeypatch.setitem(bf.MODEL_FILES, "full", "not_shipped.tflite")
    with pytest.raises(DetectorModelNotFoundError, match="not_shipped.tflite"):
        BlazeFaceDetector("auto")


def test_corrupt_model_file_is_a_typed_error(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(DetectorModelError):
        BlazeFaceDetector("short", model_paths={"short": bad})


def test_bad_arguments_are_rejected():
    with pytest.raises(InputValidationError):
        BlazeFaceDetector("medium")
    with pytest.raises(InputValidationError):
        BlazeFaceDetector("short", min_score=1.5)


def test_closed_detector_refuses_to_run():
    det = BlazeFaceDetector("short")
    det.close()
    det.close()  # idempotent
    with pytest.raises(DetectorModelError, match="closed"):
        det.detect(make_frameset())


def test_custom_model_path_is_used(tmp_path):
    copy = tmp_path / "copy.tflite"
    shutil.copy(model_path("short"), copy)
    with BlazeFaceDetector("short", model_paths={"short": copy}) as det:
        assert len(det.detect_rgb(astronaut())) == 1


def test_auto_ir_finds_on_the_ir_image_a_face_the_colour_lost():
    """A dark room, or rs.align blanking colour where depth is missing: the colour frame is black,
    the emitter-lit IR still shows the face. "auto" finds nothing; "auto+ir" finds it on IR."""
    import dataclasses

    frames, box = face_frame(0.6, 0.15)
    dark = dataclasses.replace(frames, color=np.zeros_like(frames.color))
    with BlazeFaceDetector("auto") as a, BlazeFaceDetector("auto+ir") as air:
        assert not a.detect(dark)
        found = air.detect(dark)
        assert found.stage == "short+ir" and found.faces[0].iou(box) > 0.5
        assert air.detect(frames).stage == "short"  # colour first: IR only when colour finds nothing
        assert len(list(air.detect_stages(make_frameset()))) == 5  # three colour stages, then IR short and full
        assert not air.detect_rgb(np.zeros((480, 640, 3), np.uint8))  # no IR in a plain RGB array
