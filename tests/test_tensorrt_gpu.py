"""Real TensorRT on a real GPU (marker `tensorrt`; tools/device_check.sh runs these).

Every test skips with the reason where TensorRT, a CUDA binding or a GPU is missing, as on the
CPU-only CI machines. The same code paths run against version doubles in test_tensorrt_api.py.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from sdk.engine import ModelBundle, create_engine
from sdk.engine.compare import bundle_points, compare_scores
from sdk.engine.engine_cache import BuildOptions, EngineCache
from sdk.errors import DependencyMissingError, EngineError

pytestmark = pytest.mark.tensorrt


@pytest.fixture(scope="module")
def gpu_ready():
    try:
        from sdk.engine.cuda_memory import select_backend
        from sdk.engine.tensorrt_api import import_tensorrt

        trt = import_tensorrt()
        backend = select_backend()
        gpu = backend.gpu_info()
    except DependencyMissingError as error:
        pytest.skip(f"needs TensorRT, a CUDA binding and a GPU: {error}")
    except EngineError as error:
        pytest.skip(f"needs a working CUDA GPU: {error}")
    print(f"\nTensorRT {trt.__version__}, {backend.name}, {gpu.name} (sm {gpu.compute_capability})")
    return trt, backend


@pytest.fixture(scope="module")
def check_crops(tmp_path_factory):
    from sdk.quantize import load_crop_set, render_dataset

    data = render_dataset(tmp_path_factory.mktemp("gpu") / "data", seed=13, live=6, per_attack=6, frames_per_subject=1,
                          splits=("Training", "Test", "TestExtra"))
    return data, load_crop_set(data, ["test_list.txt", "test_extra_list.txt"])


def _scores(engine, crops) -> np.ndarray:
    from sdk.preprocess import hflip_inputs

    out = []
    for start in range(0, len(crops), 4):
        part = {k: v[start : start + 4] for k, v in crops.inputs.items()}
        both = {k: np.concatenate([v, hflip_inputs({k: v})[k]]) for k, v in part.items()}
        p = engine.predict(both)
        m = part["rgb"].shape[0]
        out.append(0.5 * (p[:m] + p[m:]))
    return np.concatenate(out)


def _latency_ms(engine, batch: int, repeats: int = 50) -> float:
    inputs = {k: np.random.default_rng(0).uniform(0, 255, (batch, 3, 112, 112)).astype(np.float32) for k in ("rgb", "ir", "depth")}
    for _ in range(10):
        engine.predict(inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        engine.predict(inputs)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def test_fp32_engine_matches_onnxruntime_and_is_cached(gpu_ready, check_crops, tmp_path):
    _, crops = check_crops
    bundle = ModelBundle.load()
    cache = EngineCache(tmp_path / "cache")
    with create_engine("onnxruntime", bundle) as reference:
        expected = _scores(reference, crops)
    with create_engine("tensorrt", bundle, cache=cache) as engine:
        assert engine.plan_info.built and engine.output_dtype == np.float32
        scores = _scores(engine, crops)
        print(f"fp32 latency: batch 1 {_latency_ms(engine, 1):.3f} ms, batch 8 {_latency_ms(engine, 8):.3f} ms")
    report = compare_scores(expected, scores, bundle_points(bundle), labels=crops.labels)
    print(f"fp32 vs onnxruntime: max |dP| {report['max_abs_diff']:.2e}")
    assert report["max_abs_diff"] < 1e-3 and report["all_agree"]
    with create_engine("tensorrt", bundle, cache=cache) as again:
        assert not again.plan_info.built  # the cached plan, keyed by GPU, TensorRT and model


@pytest.mark.parametrize("precision, tolerance", [("fp16", 1e-2), ("int8", 5e-2)])
def test_reduced_precision_engines(gpu_ready, check_crops, tmp_path, precision, tolerance):
    pytest.importorskip("onnx", reason="quantize needs the quantize extra")
    from sdk.quantize import quantize_bundle

    data, crops = check_crops
    bundle, _ = quantize_bundle(None, precision, tmp_path / precision, calibration_dir=data, repeats=5,
                                log=lambda *_: None)
    with create_engine("onnxruntime-fp32", bundle) as reference:
        expected = _scores(reference, crops)
    with create_engine(f"tensorrt-{precision}", bundle, cache=EngineCache(tmp_path / "cache")) as engine:
        assert engine.precision == precision
        scores = _scores(engine, crops)
        print(f"{precision} latency: batch 1 {_latency_ms(engine, 1):.3f} ms, batch 8 {_latency_ms(engine, 8):.3f} ms")
    report = compare_scores(expected, scores, bundle_points(bundle), labels=crops.labels)
    print(f"{precision} vs onnxruntime fp32: max |dP| {report['max_abs_diff']:.2e}, "
          f"decisions differing at balanced: {report['decisions']['balanced']['disagreements']}")
    assert report["max_abs_diff"] < tolerance


def test_engine_serves_several_threads(gpu_ready, check_crops, tmp_path):
    _, crops = check_crops
    results: dict[int, np.ndarray] = {}
    with create_engine("tensorrt", ModelBundle.load(), cache=EngineCache(tmp_path / "cache")) as engine:
        def work(index: int) -> None:
            for _ in range(5):
                results[index] = _scores(engine, crops)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 4 and all(np.allclose(r, results[0], atol=1e-6) for r in results.values())


def test_version_compatible_plan_loads_from_file(gpu_ready, tmp_path):
    bundle = ModelBundle.load()
    options = BuildOptions(version_compatible=True)
    with create_engine("tensorrt", bundle, options=options, cache=EngineCache(tmp_path / "cache")) as built:
        plan = built.plan_info.path
    with create_engine("tensorrt", bundle, options=options, plan_path=plan) as loaded:
        assert loaded.plan_info is None
        inputs = {k: np.full((2, 3, 112, 112), 100, np.float32) for k in ("rgb", "ir", "depth")}
        assert loaded.predict(inputs).shape == (2,)


def test_bad_device_index_is_a_clear_error(gpu_ready):
    from sdk.engine.cuda_memory import select_backend

    with pytest.raises(EngineError, match="does not exist"):
        select_backend(device=64)
