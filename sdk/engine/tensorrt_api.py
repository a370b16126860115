"""The TensorRT API-version layer: one strongly typed build path for TensorRT 10.x and 11.x.

TensorRT 11 removed weak typing: BuilderFlag.FP16/BF16/INT8/FP8/INT4/FP4, the precision-constraint
flags, IBuilderConfig.int8_calibrator and the calibrators, Builder.platform_has_fast_fp16/int8.
This module never touches any of them on either version; precision comes from the ONNX graph
(FP16 tensors or INT8 Q/DQ nodes). On 10.x the network is created with the STRONGLY_TYPED flag
(a strongly typed network rejects precision flags, so the FP32 graph builds FP32 and the FP16
graph FP16 on both versions); on 11.x strong typing is always on and the flag is accepted or absent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdk.engine.engine_cache import BuildOptions
from sdk.errors import DependencyMissingError, EngineError
from sdk.types import CROP_SIZE

#: Builder API that must never be used (removed in 11.x; weak typing on 10.x).
REMOVED_IN_11: tuple[str, ...] = (
    "BuilderFlag.FP16", "BuilderFlag.BF16", "BuilderFlag.INT8", "BuilderFlag.FP8", "BuilderFlag.INT4",
    "BuilderFlag.FP4", "BuilderFlag.OBEY_PRECISION_CONSTRAINTS", "BuilderFlag.PREFER_PRECISION_CONSTRAINTS",
    "BuilderFlag.DIRECT_IO", "IBuilderConfig.int8_calibrator", "Builder.platform_has_fast_fp16",
    "Builder.platform_has_fast_int8",
)

#: TensorRT DataType name -> numpy dtype (read from the engine, never assumed).
_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
           "BOOL": np.bool_, "UINT8": np.uint8, "BF16": None, "FP8": None}


def import_tensorrt(lean_ok: bool = False) -> Any:
    """The `tensorrt` module; with lean_ok the lean runtime (`tensorrt_lean`) when only it is installed."""
    try:
        import tensorrt as trt  # type: ignore[import-not-found]

        return trt
    except ImportError as error:
        if lean_ok:
            try:
                import tensorrt_lean as trt_lean  # type: ignore[import-not-found]

                return trt_lean
            except ImportError:
                pass
        raise DependencyMissingError(
            "TensorRT is not installed: on a Jetson it comes with JetPack; on a desktop GPU install it from "
            "NVIDIA's index (pip install --extra-index-url https://pypi.nvidia.com tensorrt). The default "
            "engine 'onnxruntime' needs nothing extra."
        ) from error


def trt_major(trt: Any) -> int:
    try:
        return int(str(trt.__version__).split(".")[0])
    except (AttributeError, ValueError):
        raise EngineError(f"cannot read the TensorRT version from {trt!r}") from None


def supported(trt: Any) -> None:
    major = trt_major(trt)
    if major not in (10, 11):
        raise EngineError(f"TensorRT {trt.__version__} is not supported: this SDK builds with TensorRT 10.x and 11.x")


def numpy_dtype(trt_dtype: Any) -> np.dtype:
    """numpy dtype of a tensorrt.DataType (by name, which both versions share)."""
    name = getattr(trt_dtype, "name", str(trt_dtype).rsplit(".", 1)[-1])
    dtype = _DTYPES.get(name)
    if dtype is None:
        raise EngineError(f"TensorRT tensor type {name} has no numpy equivalent the SDK can read")
    return np.dtype(dtype)


def network_flags(trt: Any) -> int:
    """Creation flags of a strongly typed network (0 where strong typing is the only mode)."""
    flag = getattr(getattr(trt, "NetworkDefinitionCreationFlag", None), "STRONGLY_TYPED", None)
    return 0 if flag is None else 1 << int(flag)


@dataclass(frozen=True)
class BuiltPlan:
    plan: bytes
    input_names: tuple[str, ...]
    trt_version: str


def build_serialized_engine(trt: Any, onnx_path: Path, options: BuildOptions) -> BuiltPlan:
    """ONNX -> serialized, strongly typed TensorRT engine with a dynamic-batch optimisation profile."""
    supported(trt)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        problems = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"{onnx_path}: TensorRT cannot parse the ONNX model: {problems}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        if options.exclude_lean_runtime:
            config.set_flag(trt.BuilderFlag.EXCLUDE_LEAN_RUNTIME)
    profile = builder.create_optimization_profile()
    names = []
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = tuple(tensor.shape)
        if len(shape) != 4 or tuple(shape[1:]) != (3, CROP_SIZE, CROP_SIZE):
            raise EngineError(f"{onnx_path}: input {tensor.name} has shape {shape}, expected (batch, 3, {CROP_SIZE}, {CROP_SIZE})")
        dims = lambda n: (n, 3, CROP_SIZE, CROP_SIZE)  # noqa: E731
        profile.set_shape(tensor.name, dims(1), dims(options.opt_batch), dims(options.max_batch))
        names.append(tensor.name)
    if config.add_optimization_profile(profile) < 0:
        raise EngineError(f"{onnx_path}: TensorRT rejected the dynamic-batch optimisation profile")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"{onnx_path}: TensorRT failed to build an engine (see the log above)")
    return BuiltPlan(bytes(serialized), tuple(names), str(trt.__version__))


def deserialize(trt: Any, plan: bytes, options: BuildOptions) -> tuple[Any, Any]:
    """(runtime, engine) from a plan; version-compatible plans need host code allowed."""
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    if options.version_compatible and not options.exclude_lean_runtime:
        runtime.engine_host_code_allowed = True  # the plan carries the lean runtime as host code
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise EngineError("TensorRT cannot deserialize the plan (built for another TensorRT or GPU?)")
    return runtime, engine
