"""The TensorRT engine against test doubles of TensorRT 10 and 11, cuda-python and pycuda (CPU only).

The doubles (tests/trt_fakes.py) follow each version's documented Python API: on 11 the removed
weak-typing API is absent, so any use of it fails these tests; the network itself runs on ONNX
Runtime, so the scores must equal the CPU engine's.
"""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from sdk.engine import create_engine
from sdk.engine.cuda_memory import CudaPythonBackend, PycudaBackend, select_backend
from sdk.engine.engine_cache import BuildOptions, EngineCache
from sdk.engine.tensorrt_api import REMOVED_IN_11, import_tensorrt, network_flags, numpy_dtype
from sdk.engine.tensorrt_engine import TensorRTEngine
from sdk.errors import DependencyMissingError, EngineError
from sdk.preprocess import crops_to_inputs
from sdk.types import FaceCrops
from tests.trt_fakes import FakeCudaRuntime, make_pycuda_driver, make_tensorrt

VERSIONS = ["10.3.0", "11.4.0"]


def _crops(n: int, seed: int = 0) -> list[FaceCrops]:
    rng = np.random.default_rng(seed)
    return [FaceCrops(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8), rng.integers(0, 255, (112, 112), dtype=np.uint8),
                      rng.integers(0, 255, (112, 112), dtype=np.uint8), 0.5, 1.0, "x") for _ in range(n)]


def _engine(model, tmp_path, trt, cudart=None, **kwargs) -> TensorRTEngine:
    cudart = cudart or FakeCudaRuntime()
    return TensorRTEngine(model, trt=trt, cuda_backend=CudaPythonBackend(kwargs.pop("device", 0), runtime=cudart),
                          cache=EngineCache(tmp_path / "cache"), **kwargs)


@pytest.mark.parametrize("version", VERSIONS)
def test_engine_matches_onnxruntime_on_both_versions(tiny_bundle, tmp_path, version):
    trt = make_tensorrt(version)
    cudart = FakeCudaRuntime()
    crops = _crops(3)
    with create_engine("onnxruntime", tiny_bundle.model_path) as reference, _engine(tiny_bundle.model_path, tmp_path, trt, cudart) as engine:
        expected = reference.score_crops(crops)
        assert np.allclose(engine.score_crops(crops), expected, atol=1e-6)
        assert np.allclose(engine.score_crops(crops[:1], tta=False), reference.score_crops(crops[:1], tta=False), atol=1e-6)
    calls = trt.calls
    strongly_typed = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert calls["network_flags"] == [strongly_typed]  # strongly typed on 10 (and harmless on 11)
    assert not set(calls["flags_set"]) & {"FP16", "INT8", "BF16", "FP8", "OBEY_PRECISION_CONSTRAINTS"}
    assert not calls["platform_has_fast_fp16_read"]
    # dynamic batch: 1 .. 8, tuned for a crop and its flip
    assert calls["profiles"] == [{n: ((1, 3, 112, 112), (2, 3, 112, 112), (8, 3, 112, 112)) for n in ("rgb", "ir", "depth")}]
    assert calls["workspace"] == 512 << 20
    # every copy went through pinned memory on the engine's stream, and the stream was synchronized
    streams = set(calls["streams"])
    assert len(streams) == 1 and {s for _, s in cudart.copies} == streams and set(cudart.synchronized) == streams
    assert engine.precision == "fp32" and engine.output_dtype == np.float32
    assert engine.gpu.name == "NVIDIA Fake GPU" and engine.gpu.compute_capability == "8.7"  # NULs cut off


def test_removed_api_is_absent_from_the_version_11_double():
    trt11, trt10 = make_tensorrt("11.4.0"), make_tensorrt("10.3.0")
    for dotted in REMOVED_IN_11:
        owner, attribute = dotted.split(".")
        holder11 = {"BuilderFlag": trt11.BuilderFlag, "IBuilderConfig": trt11.Builder(None).create_builder_config(),
                    "Builder": trt11.Builder(None)}[owner]
        with pytest.raises(AttributeError):
            getattr(holder11, attribute)
    assert trt10.BuilderFlag.FP16 is not None  # deprecated but present on 10
    with pytest.raises(AttributeError):  # the version-11 config refuses the removed calibrator attribute
        trt11.Builder(None).create_builder_config().int8_calibrator = object()


def test_strongly_typed_network_rejects_precision_flags_on_10(tmp_path):
    """The double's rule that made the old fp16=True path wrong: flags on a strongly typed network fail."""
    trt = make_tensorrt("10.3.0")
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(network_flags(trt))
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    config.add_optimization_profile(profile)
    assert builder.build_serialized_network(network, config) is None


def test_network_flags_without_strongly_typed_enum():
    trt = make_tensorrt("11.4.0")
    del trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED
    assert network_flags(trt) == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_fp16_and_int8_graphs_build_strongly_typed(tiny_bundle, tmp_path, version):
    pytest.importorskip("onnx")
    from sdk.quantize import convert_fp16, quantize_int8

    fp16 = convert_fp16(tiny_bundle.model_path, tmp_path / "fp16.onnx")
    calibration = crops_to_inputs(_crops(8, seed=3))
    int8 = quantize_int8(tiny_bundle.model_path, tmp_path / "int8.onnx", calibration)
    crops = _crops(2)
    with create_engine("onnxruntime", tiny_bundle.model_path) as reference:
        expected = reference.score_crops(crops)
    for path, precision, tolerance in ((fp16, "fp16", 1e-3), (int8, "int8", 2e-2)):
        trt = make_tensorrt(version)
        with _engine(path, tmp_path, trt) as engine:
            assert engine.precision == precision  # read from the graph, part of the cache key
            assert np.allclose(engine.score_crops(crops), expected, atol=tolerance)
        assert not set(trt.calls["flags_set"]) & {"FP16", "INT8"}


def test_cache_reuses_plans_and_rebuilds_on_gpu_or_version_change(tiny_bundle, tmp_path):
    trt = make_tensorrt("10.3.0")
    _engine(tiny_bundle.model_path, tmp_path, trt).close()
    _engine(tiny_bundle.model_path, tmp_path, trt).close()
    assert trt.calls["builds"] == 1
    _engine(tiny_bundle.model_path, tmp_path, trt, FakeCudaRuntime(name="NVIDIA H200", capability=(9, 0))).close()
    assert trt.calls["builds"] == 2
    trt_new = make_tensorrt("10.13.0")  # another TensorRT: the old plan would not deserialize, so a new key
    _engine(tiny_bundle.model_path, tmp_path, trt_new).close()
    assert trt_new.calls["builds"] == 1
    assert len(list((tmp_path / "cache").glob("*.plan"))) == 3


def test_shape_call_result_is_checked(tiny_bundle, tmp_path):
    with _engine(tiny_bundle.model_path, tmp_path, make_tensorrt("11.4.0", refuse_shapes=True)) as engine:
        with pytest.raises(EngineError, match="refused input shape"):
            engine.score_crops(_crops(1))


def test_failed_execution_and_oversized_batch_are_errors(tiny_bundle, tmp_path):
    with _engine(tiny_bundle.model_path, tmp_path, make_tensorrt("11.4.0", fail_execute=True)) as engine:
        with pytest.raises(EngineError, match="execute_async_v3"):
            engine.score_crops(_crops(1))
    with _engine(tiny_bundle.model_path, tmp_path, make_tensorrt("11.4.0"), options=BuildOptions(max_batch=2)) as engine:
        with pytest.raises(EngineError, match="profile"):
            engine.score_crops(_crops(2))  # 2 crops + 2 flips = 4 > 2


def test_output_dtype_is_read_from_the_engine(tiny_bundle, tmp_path):
    with _engine(tiny_bundle.model_path, tmp_path, make_tensorrt("11.4.0", output_half=True)) as engine:
        assert engine.output_dtype == np.float16
        with create_engine("onnxruntime", tiny_bundle.model_path) as reference:
            assert np.allclose(engine.score_crops(_crops(2)), reference.score_crops(_crops(2)), atol=1e-3)


def test_one_execution_context_per_thread(tiny_bundle, tmp_path):
    trt = make_tensorrt("11.4.0")
    cudart = FakeCudaRuntime()
    engine = _engine(tiny_bundle.model_path, tmp_path, trt, cudart)
    results: dict[int, np.ndarray] = {}

    def work(index: int) -> None:
        for _ in range(3):
            results[index] = engine.score_crops(_crops(2))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(trt.calls["contexts"])) == 3 and len(trt.calls["contexts"]) == 3  # one per thread, made once
    assert len(set(trt.calls["streams"])) == 3  # and a stream each
    assert all(np.allclose(r, results[0]) for r in results.values())
    assert set(cudart.current_device.values()) == {0} and len(cudart.current_device) >= 3  # device set per thread
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.score_crops(_crops(1))


def test_device_index_option(tiny_bundle, tmp_path):
    cudart = FakeCudaRuntime(devices=2)
    with _engine(tiny_bundle.model_path, tmp_path, make_tensorrt("10.3.0"), cudart, device=1) as engine:
        engine.score_crops(_crops(1))
        assert engine.gpu.index == 1 and set(cudart.current_device.values()) == {1}
    with pytest.raises(EngineError, match="does not exist"):
        CudaPythonBackend(2, runtime=FakeCudaRuntime(devices=2))
    with pytest.raises(EngineError, match=">= 0"):
        CudaPythonBackend(-1, runtime=FakeCudaRuntime())


def test_pycuda_backend_uses_the_primary_context_per_thread(tiny_bundle, tmp_path):
    driver = make_pycuda_driver()
    backend = PycudaBackend(0, driver=driver)
    engine = TensorRTEngine(tiny_bundle.model_path, trt=make_tensorrt("10.3.0"), cuda_backend=backend,
                            cache=EngineCache(tmp_path / "cache"))
    with create_engine("onnxruntime", tiny_bundle.model_path) as reference:
        assert np.allclose(engine.score_crops(_crops(2)), reference.score_crops(_crops(2)), atol=1e-6)
    thread = threading.Thread(target=lambda: engine.score_crops(_crops(1)))
    thread.start()
    thread.join()
    assert len(set(driver.log["pushed"])) == 2  # pushed once in each calling thread, never autoinit
    assert driver.log["pagelocked"] >= 8  # 4 pinned buffers per thread
    assert engine.gpu.name == "Orin (fake)" and engine.gpu.compute_capability == "8.7"
    engine.close()


def test_version_compatible_plans_for_the_lean_runtime(tiny_bundle, tmp_path):
    trt = make_tensorrt("10.3.0")
    options = BuildOptions(version_compatible=True)
    with _engine(tiny_bundle.model_path, tmp_path, trt, options=options) as engine:
        engine.score_crops(_crops(1))
        plan = engine.plan_info.path.read_bytes()
    assert "VERSION_COMPATIBLE" in trt.calls["flags_set"] and trt.calls["host_code_allowed"]
    # a later TensorRT (or the lean runtime) loads the shipped plan without building anything
    later = make_tensorrt("11.4.0")
    (tmp_path / "shipped.plan").write_bytes(plan)
    with _engine(tiny_bundle.model_path, tmp_path, later, plan_path=tmp_path / "shipped.plan", options=options) as engine:
        assert engine.score_crops(_crops(1)).shape == (1,)
    assert later.calls["builds"] == 0
    # a plan that is not version compatible does not load under another version
    trt_plain = make_tensorrt("10.3.0")
    with _engine(tiny_bundle.model_path, tmp_path / "plain", trt_plain) as engine:
        plain = engine.plan_info.path.read_bytes()
    (tmp_path / "plain.plan").write_bytes(plain)
    with pytest.raises(EngineError, match="deserialize"):
        _engine(tiny_bundle.model_path, tmp_path, make_tensorrt("11.4.0"), plan_path=tmp_path / "plain.plan")


def test_lean_runtime_module_is_used_for_prebuilt_plans(monkeypatch):
    lean = make_tensorrt("11.4.0")
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails like a missing package
    monkeypatch.setitem(sys.modules, "tensorrt_lean", lean)
    assert import_tensorrt(lean_ok=True) is lean
    with pytest.raises(DependencyMissingError, match="TensorRT is not installed"):
        import_tensorrt()


def test_unsupported_version_and_unparseable_model(tiny_bundle, tmp_path):
    with pytest.raises(EngineError, match="not supported"):
        _engine(tiny_bundle.model_path, tmp_path, make_tensorrt("8.6.1"))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not onnx")
    with pytest.raises(EngineError, match="cannot parse"):
        _engine(garbage, tmp_path, make_tensorrt("10.3.0"), precision="fp32")
    with pytest.raises(EngineError, match="not found"):
        _engine(tmp_path / "absent.onnx", tmp_path, make_tensorrt("10.3.0"), precision="fp32")


def test_numpy_dtype_mapping():
    trt = make_tensorrt("11.4.0")
    assert numpy_dtype(trt.DataType.FLOAT) == np.float32 and numpy_dtype(trt.DataType.HALF) == np.float16
    assert numpy_dtype(trt.DataType.INT8) == np.int8
    with pytest.raises(EngineError, match="no numpy equivalent"):
        numpy_dtype(trt.DataType.BF16)


def test_backend_selection(monkeypatch):
    import sdk.engine.cuda_memory as cm

    monkeypatch.setattr(cm, "_installed", lambda name: False)
    with pytest.raises(DependencyMissingError, match="cuda-python"):
        select_backend()
    with pytest.raises(EngineError, match="unknown CUDA backend"):
        select_backend("cupy")
    made = []
    monkeypatch.setattr(cm, "_installed", lambda name: True)
    monkeypatch.setattr(cm, "CudaPythonBackend", lambda device: made.append(("cuda-python", device)) or "cp")
    monkeypatch.setattr(cm, "PycudaBackend", lambda device: made.append(("pycuda", device)) or "pc")
    assert select_backend(device=1) == "cp"  # cuda-python first when both are installed
    monkeypatch.setattr(cm, "_installed", lambda name: name == "pycuda")
    assert select_backend() == "pc"  # pycuda when it is the one installed
    assert made == [("cuda-python", 1), ("pycuda", 0)]


def test_cuda_errors_become_engine_errors():
    class Failing(FakeCudaRuntime):
        def cudaMalloc(self, nbytes):  # noqa: N802
            return self.cudaError_t.cudaErrorMemoryAllocation, 0

    backend = CudaPythonBackend(0, runtime=Failing())
    with pytest.raises(EngineError, match="cudaMalloc failed"):
        backend.malloc(16)
    array = backend.host_empty((2, 3), np.float32)
    array[...] = 1.5
    assert array.sum() == 9.0
    backend.host_free(array)
