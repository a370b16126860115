"""TensorRT engine (the device engine) for TensorRT 10.x and 11.x.

TensorRT and a CUDA binding are optional: they cannot be installed on machines without NVIDIA's
index and a driver, so importing this module never needs them. Engines are tied to the GPU model
and the TensorRT version, so they are built on the device from the bundle's ONNX (strongly typed:
the precision is the graph's) and cached under a key of ONNX hash, TensorRT version, GPU name and
compute capability, precision and build options (sdk/engine/engine_cache.py).

Per call: the batch shape is set on the context and the call's result checked, inputs go through
pinned host buffers and a CUDA stream, the output dtype is the engine's. Each thread gets its own
execution context, stream and buffers, so one engine can serve several threads.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sdk.engine.base import Engine
from sdk.engine.bundle import sha256_file
from sdk.engine.cuda_memory import CudaBackend, GpuInfo, select_backend
from sdk.engine.engine_cache import DEFAULT_CACHE_DIR, BuildOptions, EngineCache, engine_cache_key
from sdk.engine.tensorrt_api import build_serialized_engine, deserialize, import_tensorrt, numpy_dtype
from sdk.errors import EngineError
from sdk.types import CROP_SIZE

__all__ = [
    "DEFAULT_CACHE_DIR", "BuildOptions", "EngineCache", "TensorRTEngine", "engine_cache_key", "import_tensorrt",
    "prepare_plan",
]


@dataclass(frozen=True)
class PlanInfo:
    """Where a plan came from: what `build-engine` prints."""

    path: Path
    key: str
    built: bool  # False: taken from the cache
    build_s: float
    trt_version: str
    gpu: GpuInfo
    precision: str
    options: BuildOptions


def _precision_of(onnx_path: Path, precision: str | None) -> str:
    if precision:
        return precision
    try:
        from sdk.engine.precision import graph_precision

        return graph_precision(onnx_path)
    except ImportError:  # no onnx package on the device: the ONNX hash in the key still tells graphs apart
        return "graph"


def prepare_plan(
    trt: Any,
    onnx_path: Path,
    gpu: GpuInfo,
    *,
    precision: str | None = None,
    options: BuildOptions = BuildOptions(),
    cache: EngineCache | None = None,
) -> tuple[bytes, PlanInfo]:
    """The plan for this model on this GPU: from the cache, or built now and cached atomically."""
    if not onnx_path.is_file():
        raise EngineError(f"{onnx_path}: ONNX model file not found")
    precision = _precision_of(onnx_path, precision)
    onnx_sha = sha256_file(onnx_path)
    key = engine_cache_key(onnx_sha, gpu.name, gpu.compute_capability, str(trt.__version__), precision, options)
    cache = cache or EngineCache()
    plan = cache.get(key)
    built, seconds = False, 0.0
    if plan is None:
        start = time.perf_counter()
        plan = build_serialized_engine(trt, onnx_path, options).plan
        seconds = time.perf_counter() - start
        built = True
        cache.put(key, plan, meta={"onnx": str(onnx_path), "onnx_sha256": onnx_sha, "gpu": gpu.name,
                                   "compute_capability": gpu.compute_capability, "tensorrt": str(trt.__version__),
                                   "precision": precision, "build_s": round(seconds, 2)})
    info = PlanInfo(cache.path(key), key, built, seconds, str(trt.__version__), gpu, precision, options)
    return plan, info


@dataclass
class _ThreadState:
    context: Any
    stream: int
    host: dict[str, np.ndarray] = field(default_factory=dict)
    device: dict[str, int] = field(default_factory=dict)


class TensorRTEngine(Engine):
    name = "tensorrt"

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        precision: str | None = None,
        device: int = 0,
        options: BuildOptions = BuildOptions(),
        cache: EngineCache | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        plan_path: str | os.PathLike[str] | None = None,
        cuda_backend: str | CudaBackend | None = None,
        trt: Any = None,
    ) -> None:
        from sdk.engine.precision import model_for_precision

        self.options = options
        # precision="fp16"/"int8" builds that graph of the model's bundle (the precision is the graph's)
        if precision is not None and plan_path is None:
            model_path, precision = model_for_precision(model_path, "tensorrt", precision)
        self.model_path = Path(model_path)
        self._trt = trt if trt is not None else import_tensorrt(lean_ok=plan_path is not None)
        self._cuda = cuda_backend if isinstance(cuda_backend, CudaBackend) else select_backend(cuda_backend, device)
        self.gpu = self._cuda.gpu_info()
        if plan_path is not None:  # a prebuilt (e.g. version-compatible) plan: nothing is built here
            plan = Path(plan_path).read_bytes()
            self.plan_info = None
        else:
            cache = cache or EngineCache(cache_dir or DEFAULT_CACHE_DIR)
            plan, self.plan_info = prepare_plan(self._trt, Path(model_path), self.gpu, precision=precision,
                                                options=options, cache=cache)
        self.precision = self.plan_info.precision if self.plan_info is not None else precision
        self._runtime, self._engine = deserialize(self._trt, plan, options)
        mode_input = self._trt.TensorIOMode.INPUT
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == mode_input]
        self._outputs = [n for n in names if self._engine.get_tensor_mode(n) != mode_input]
        if len(self._outputs) != 1:
            raise EngineError(f"the engine has outputs {self._outputs}; a liveness model has exactly one (P(live))")
        self._dtypes = {n: numpy_dtype(self._engine.get_tensor_dtype(n)) for n in names}
        self._local = threading.local()
        self._states: list[_ThreadState] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def output_dtype(self) -> np.dtype:
        return self._dtypes[self._outputs[0]]

    def _state(self) -> _ThreadState:
        """This thread's execution context, stream and buffers (made on its first call)."""
        state = getattr(self._local, "state", None)
        if state is not None:
            return state
        with self._lock:
            if self._closed:
                raise EngineError("the engine is closed")
            self._cuda.activate()
            context = self._engine.create_execution_context()
            if context is None:
                raise EngineError("TensorRT could not create an execution context (out of GPU memory?)")
            state = _ThreadState(context, self._cuda.stream_create())
            batch = self.options.max_batch
            for name in self._inputs:
                shape = (batch, 3, CROP_SIZE, CROP_SIZE)
                state.host[name] = self._cuda.host_empty(shape, self._dtypes[name])
                state.device[name] = self._cuda.malloc(state.host[name].nbytes)
            out = self._outputs[0]
            state.host[out] = self._cuda.host_empty((batch * 2,), self._dtypes[out])  # [N] or [N, 2] outputs
            state.device[out] = self._cuda.malloc(state.host[out].nbytes)
            self._states.append(state)
        self._local.state = state
        return state

    def _run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        if self._closed:
            raise EngineError("the engine is closed")
        batch = next(iter(inputs.values())).shape[0]
        if not 1 <= batch <= self.options.max_batch:
            raise EngineError(f"batch {batch} is outside the engine's profile 1..{self.options.max_batch}")
        state = self._state()
        context, stream = state.context, state.stream
        for name in self._inputs:
            shape = (batch, 3, CROP_SIZE, CROP_SIZE)
            if not context.set_input_shape(name, shape):
                raise EngineError(f"TensorRT refused input shape {shape} for {name}")
            host = state.host[name][:batch]
            host[...] = inputs[name]  # casts to the engine's input dtype (FP32 I/O by default)
            self._cuda.copy_to_device_async(state.device[name], host, stream)
            context.set_tensor_address(name, state.device[name])
        out = self._outputs[0]
        out_shape = tuple(int(d) for d in context.get_tensor_shape(out))
        if any(d < 0 for d in out_shape) or int(np.prod(out_shape)) > state.host[out].size:
            raise EngineError(f"output {out} has an unresolved or oversized shape {out_shape}")
        context.set_tensor_address(out, state.device[out])
        if not context.execute_async_v3(stream):
            raise EngineError("TensorRT execute_async_v3 failed")
        host_out = state.host[out][: int(np.prod(out_shape))]
        self._cuda.copy_to_host_async(host_out, state.device[out], stream)
        self._cuda.stream_synchronize(stream)
        return host_out.reshape(out_shape).astype(np.float32).copy()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for state in self._states:
                for pointer in state.device.values():
                    self._cuda.free(pointer)
                for array in state.host.values():
                    self._cuda.host_free(array)
                self._cuda.stream_destroy(state.stream)
            self._states.clear()
            self._engine = None
            self._runtime = None
