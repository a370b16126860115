import json
import shutil

import numpy as np
import pytest

from sdk.engine import create_engine
from sdk.engine.bundle import ModelBundle
from sdk.engine.tensorrt_engine import BuildOptions, EngineCache, engine_cache_key, import_tensorrt
from sdk.errors import DependencyMissingError, EngineError, ModelIntegrityError
from sdk.preprocess import crops_to_inputs
from sdk.types import FaceCrops


def _crops(value_rgb: int, value_depth: int) -> FaceCrops:
    return FaceCrops(
        np.full((112, 112, 3), value_rgb, np.uint8), np.full((112, 112), 100, np.uint8),
        np.full((112, 112), value_depth, np.uint8), 0.5, 1.0, "x",
    )


def test_bundle_loads_and_verifies(tiny_bundle):
    bundle = ModelBundle.load(tiny_bundle.path)
    assert bundle.name == "tiny-test-model" and bundle.input_names == ("rgb", "ir", "depth")
    assert bundle.operating_point().name == "balanced" and bundle.operating_point("strict").threshold == 0.9
    with pytest.raises(ModelIntegrityError, match="no operating point"):
        bundle.operating_point("nope")


def test_bundle_refuses_a_changed_model(tiny_bundle, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle.path, copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-5] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        ModelBundle.load(copy)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.pop("files"), "lacks"),
        (lambda m: m.update(preprocess_version="other/9"), "trained on crops"),
        (lambda m: m["operating_points"].update(default="missing"), "default operating point"),
        (lambda m: m["operating_points"]["points"]["balanced"].update(threshold=1.5), "threshold"),
    ],
)
def test_bundle_refuses_bad_manifests(tiny_bundle, tmp_path, edit, message):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle.path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match=message):
        ModelBundle.load(copy)


def test_bundle_refuses_missing_things(tmp_path):
    with pytest.raises(ModelIntegrityError, match="does not exist"):
        ModelBundle.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelIntegrityError, match="no manifest.json"):
        ModelBundle.load(tmp_path / "empty")
    (tmp_path / "empty" / "manifest.json").write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="unreadable"):
        ModelBundle.load(tmp_path / "empty")


def test_onnxruntime_engine_scores_and_tta(tiny_bundle):
    with create_engine("onnxruntime", tiny_bundle.model_path) as engine:
        bright = _crops(200, 10)
        dark = _crops(10, 200)
        scores = engine.score_crops([bright, dark])
        assert scores.shape == (2,) and scores[0] > 0.9 and scores[1] < 0.1
        # symmetric crops: TTA equals the plain score
        assert np.allclose(scores, engine.score_crops([bright, dark], tta=False))
        expected = 1 / (1 + np.exp(-(0.02 * 200 - 0.02 * 10)))
        assert scores[0] == pytest.approx(expected, rel=1e-5)


def test_engine_validates_inputs_and_outputs(tiny_bundle, tmp_path):
    engine = create_engine("onnxruntime", tiny_bundle.model_path)
    inputs = crops_to_inputs([_crops(1, 1)])
    with pytest.raises(EngineError, match="missing"):
        engine.predict({"rgb": inputs["rgb"], "ir": inputs["ir"]})
    with pytest.raises(ValueError, match="dtype"):
        engine.predict({**inputs, "rgb": inputs["rgb"].astype(np.float64)})
    with pytest.raises(EngineError, match="unknown engine"):
        create_engine("tflite", tiny_bundle.model_path)
    with pytest.raises(EngineError, match="not found"):
        create_engine("onnxruntime", tmp_path / "absent.onnx")
    (tmp_path / "garbage.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(EngineError, match="cannot load"):
        create_engine("onnxruntime", tmp_path / "garbage.onnx")


def test_engine_rejects_nan_scores(tmp_path):
    from tests.conftest import tiny_onnx_model

    path = tiny_onnx_model(tmp_path / "nan.onnx", bias=float("nan"))
    engine = create_engine("onnxruntime", path)
    with pytest.raises(EngineError, match="NaN"):
        engine.score_crops([_crops(1, 1)])


def test_tensorrt_cache_key_and_atomic_cache(tmp_path):
    options = BuildOptions()
    key = engine_cache_key("abc", "NVIDIA H100", "9.0", "10.3.0", "fp32", options)
    assert key == engine_cache_key("abc", "NVIDIA H100", "9.0", "10.3.0", "fp32", BuildOptions())
    assert key != engine_cache_key("abc", "Orin", "8.7", "10.3.0", "fp32", options)  # GPU name and capability
    assert key != engine_cache_key("abc", "NVIDIA H100", "8.9", "10.3.0", "fp32", options)  # capability alone
    assert key != engine_cache_key("abc", "NVIDIA H100", "9.0", "11.4.0", "fp32", options)  # TensorRT version
    assert key != engine_cache_key("abd", "NVIDIA H100", "9.0", "10.3.0", "fp32", options)  # ONNX hash
    assert key != engine_cache_key("abc", "NVIDIA H100", "9.0", "10.3.0", "int8", options)  # precision
    assert key != engine_cache_key("abc", "NVIDIA H100", "9.0", "10.3.0", "fp32", BuildOptions(max_batch=16))
    assert key != engine_cache_key("abc", "NVIDIA H100", "9.0", "10.3.0", "fp32", BuildOptions(version_compatible=True))
    cache = EngineCache(tmp_path / "cache")
    assert cache.get(key) is None
    cache.put(key, b"plan-bytes", meta={"gpu": "NVIDIA H100"})
    assert cache.get(key) == b"plan-bytes"
    assert json.loads(cache.path(key).with_suffix(".json").read_text())["gpu"] == "NVIDIA H100"
    assert not list((tmp_path / "cache").glob("*.tmp"))
    with pytest.raises(ValueError):
        BuildOptions(opt_batch=9, max_batch=8)
    with pytest.raises(ValueError):
        BuildOptions(exclude_lean_runtime=True)


def test_tensorrt_missing_is_a_clear_error(tiny_bundle):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(DependencyMissingError, match="TensorRT is not installed"):
            import_tensorrt()
        with pytest.raises(DependencyMissingError):
            create_engine("tensorrt", tiny_bundle.model_path)
    else:  # pragma: no cover - only on a TensorRT machine
        pytest.skip("TensorRT is installed here: the device test suite covers the engine")
