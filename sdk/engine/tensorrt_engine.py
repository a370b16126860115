"""TensorRT engine (the device engine), written against the TensorRT 10 Python API.

TensorRT and pycuda are optional (extra `tensorrt`); they cannot be installed on machines
without NVIDIA's index and a CUDA driver, so importing this module never needs them. Engines are
tied to the GPU model and the TensorRT version, so they are built on the device from the
bundle's ONNX and cached under a key made of both (plus the ONNX hash and build options).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sdk.engine.base import Engine
from sdk.engine.bundle import sha256_file
from sdk.errors import DependencyMissingError, EngineError
from sdk.types import CROP_SIZE

DEFAULT_CACHE_DIR = Path(os.environ.get("SR300_LIVENESS_CACHE", Path.home() / ".cache" / "sr300-liveness")) / "tensorrt"


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt  # type: ignore[import-not-found]
    except ImportError as error:
        raise DependencyMissingError(
            "TensorRT is not installed: on a Jetson it comes with JetPack; on a desktop GPU "
            'pip install "sr300-liveness[tensorrt]" from NVIDIA\'s index. The default engine '
            "'onnxruntime' needs nothing extra."
        ) from error
    return trt


def import_pycuda() -> Any:
    try:
        import pycuda.autoinit  # type: ignore[import-not-found]  # noqa: F401  (creates the context)
        import pycuda.driver as cuda  # type: ignore[import-not-found]
    except ImportError as error:
        raise DependencyMissingError(
            "pycuda is not installed (or no CUDA driver is present): pip install pycuda on a machine with CUDA"
        ) from error
    return cuda


@dataclass(frozen=True)
class BuildOptions:
    fp16: bool = True
    max_batch: int = 8
    opt_batch: int = 2  # a frame and its horizontal flip
    workspace_mb: int = 512


def engine_cache_key(onnx_sha256: str, gpu_name: str, compute_capability: str, trt_version: str, options: BuildOptions) -> str:
    """Cache key of a serialized engine: any change of GPU, TensorRT, model or options rebuilds."""
    payload = json.dumps(
        {"onnx": onnx_sha256, "gpu": gpu_name, "cc": compute_capability, "trt": trt_version, "options": asdict(options)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class EngineCache:
    """Serialized engines on disk, written atomically so a crash never leaves a torn plan file."""

    def __init__(self, directory: str | os.PathLike[str] = DEFAULT_CACHE_DIR) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.plan"

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        return path.read_bytes() if path.is_file() and path.stat().st_size > 0 else None

    def put(self, key: str, plan: bytes) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            file.write(plan)
        os.replace(temp, self.path(key))
        return self.path(key)


def build_serialized_engine(trt: Any, onnx_path: Path, options: BuildOptions) -> bytes:
    """ONNX -> serialized TensorRT engine with a dynamic-batch optimisation profile."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        problems = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"{onnx_path}: TensorRT cannot parse the ONNX model: {problems}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    # TensorRT 11 removed the FP16 flag (networks are strongly typed): only set it where it exists.
    if options.fp16 and hasattr(trt.BuilderFlag, "FP16") and getattr(builder, "platform_has_fast_fp16", True):
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        name = network.get_input(index).name
        shape = lambda n: (n, 3, CROP_SIZE, CROP_SIZE)  # noqa: E731
        profile.set_shape(name, shape(1), shape(min(options.opt_batch, options.max_batch)), shape(options.max_batch))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"{onnx_path}: TensorRT failed to build an engine (see the log above)")
    return bytes(serialized)


class TensorRTEngine(Engine):
    name = "tensorrt"

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        options: BuildOptions = BuildOptions(),
        cache: EngineCache | None = None,
    ) -> None:
        trt = import_tensorrt()
        cuda = import_pycuda()
        onnx_path = Path(model_path)
        if not onnx_path.is_file():
            raise EngineError(f"{onnx_path}: ONNX model file not found")
        device = cuda.Device(0)
        capability = ".".join(map(str, device.compute_capability()))
        key = engine_cache_key(sha256_file(onnx_path), device.name(), capability, trt.__version__, options)
        cache = cache or EngineCache()
        plan = cache.get(key)
        if plan is None:
            plan = build_serialized_engine(trt, onnx_path, options)
            cache.put(key, plan)
        self._trt, self._cuda, self.options = trt, cuda, options
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            raise EngineError(f"cached engine {cache.path(key)} cannot be deserialized; delete it to rebuild")
        self._context = self._engine.create_execution_context()
        self._stream = cuda.Stream()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self._buffers: dict[str, Any] = {}
        self._buffer_bytes: dict[str, int] = {}

    def _device_buffer(self, name: str, nbytes: int) -> Any:
        # Buffers grow to the largest batch seen and are then reused: no allocation per frame.
        if self._buffer_bytes.get(name, 0) < nbytes:
            self._buffers[name] = self._cuda.mem_alloc(nbytes)
            self._buffer_bytes[name] = nbytes
        return self._buffers[name]

    def _run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        if self._context is None:
            raise EngineError("the engine is closed")
        batch = next(iter(inputs.values())).shape[0]
        if batch > self.options.max_batch:
            raise EngineError(f"batch {batch} exceeds the engine's max batch {self.options.max_batch}")
        for name in self._inputs:
            host = np.ascontiguousarray(inputs[name], dtype=np.float32)
            self._context.set_input_shape(name, host.shape)
            device = self._device_buffer(name, host.nbytes)
            self._cuda.memcpy_htod_async(device, host, self._stream)
            self._context.set_tensor_address(name, int(device))
        output_name = self._outputs[0]
        out_shape = tuple(self._context.get_tensor_shape(output_name))
        host_out = np.empty(out_shape, dtype=np.float32)
        device_out = self._device_buffer(output_name, host_out.nbytes)
        self._context.set_tensor_address(output_name, int(device_out))
        if not self._context.execute_async_v3(self._stream.handle):
            raise EngineError("TensorRT execute_async_v3 failed")
        self._cuda.memcpy_dtoh_async(host_out, device_out, self._stream)
        self._stream.synchronize()
        return host_out

    def close(self) -> None:
        self._context = None
        self._engine = None
        self._buffers.clear()
        self._buffer_bytes.clear()
