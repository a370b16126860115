"""Test doubles of the `tensorrt` module (10.x and 11.x), of cuda-python's runtime and of pycuda.driver.

They follow the documented Python APIs closely enough that the SDK's engine code runs on them
unchanged, and they fail the way the real libraries do when code uses what a version lacks:

* TensorRT 11 has no BuilderFlag.FP16/BF16/INT8/FP8/INT4/FP4/OBEY_/PREFER_PRECISION_CONSTRAINTS/
  DIRECT_IO, no IBuilderConfig.int8_calibrator, no Builder.platform_has_fast_fp16/int8: touching
  any of them raises AttributeError, as on the real module.
* TensorRT 10 has them (weak typing, deprecated); a STRONGLY_TYPED network refuses precision
  flags at build time (the real builder logs an error and returns None).
* A plan only deserializes under the TensorRT version that built it, unless built VERSION_COMPATIBLE.

"Device memory" is ordinary host memory addressed by integer pointers, so copies are memmoves and
the fake execution context reads its inputs from, and writes its output to, those addresses;
the network itself runs on ONNX Runtime from the ONNX bytes inside the fake plan.
"""
from __future__ import annotations

import ctypes
import json
import threading
import types
from typing import Any

import numpy as np

_MAGIC = b"FAKETRT1"


class _Enum:
    def __init__(self, name: str, value: int) -> None:
        self.name, self.value = name, value

    def __int__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"<{self.name}>"


def _enum_namespace(cls_name: str, names: list[str]) -> type:
    return type(cls_name, (), {n: _Enum(n, i) for i, n in enumerate(names)})


WEAK_TYPING_FLAGS = ["FP16", "BF16", "INT8", "FP8", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS",
                     "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO"]
COMMON_FLAGS = ["DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS", "SAFETY_SCOPE",
                "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "WEIGHT_STREAMING"]

_ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 2: "UINT8"}


def _memory(pointer: int, nbytes: int) -> np.ndarray:
    return np.frombuffer((ctypes.c_byte * nbytes).from_address(pointer), dtype=np.uint8)


def make_tensorrt(version: str = "10.3.0", *, refuse_shapes: bool = False, fail_execute: bool = False,
                  output_half: bool = False) -> types.ModuleType:
    """A fake `tensorrt` module of the given version. `calls` records what the code under test used."""
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    calls: dict[str, Any] = {"builds": 0, "flags_set": [], "network_flags": [], "profiles": [],
                             "platform_has_fast_fp16_read": False, "contexts": [], "streams": [],
                             "host_code_allowed": False, "workspace": None}
    trt.calls = calls
    DataType = _enum_namespace("DataType", ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "FP8", "BF16", "INT64"])
    trt.DataType = DataType
    trt.TensorIOMode = _enum_namespace("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    trt.MemoryPoolType = _enum_namespace("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM"])
    trt.BuilderFlag = _enum_namespace("BuilderFlag", (WEAK_TYPING_FLAGS if major == 10 else []) + COMMON_FLAGS)
    # EXPLICIT_BATCH is deprecated in 10 and gone in 11; STRONGLY_TYPED is accepted (and ignored) in 11.
    trt.NetworkDefinitionCreationFlag = _enum_namespace(
        "NetworkDefinitionCreationFlag", (["EXPLICIT_BATCH"] if major == 10 else ["_RESERVED"]) + ["STRONGLY_TYPED"])

    class Logger:
        WARNING, ERROR, INFO, VERBOSE = 2, 1, 3, 4

        def __init__(self, severity: int = 2) -> None:
            self.severity = severity

    class _Tensor:
        def __init__(self, name: str, shape: tuple[int, ...], dtype: Any) -> None:
            self.name, self.shape, self.dtype = name, shape, dtype

    class Network:
        def __init__(self, flags: int) -> None:
            strongly = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
            self.strongly_typed = major >= 11 or bool(flags & strongly)
            self.inputs: list[_Tensor] = []
            self.outputs: list[_Tensor] = []
            self.onnx: bytes = b""

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        def get_input(self, index: int) -> _Tensor:
            return self.inputs[index]

    class OnnxParser:
        def __init__(self, network: Network, logger: Logger) -> None:
            self.network, self.errors = network, []

        def parse(self, data: bytes) -> bool:
            import onnx

            try:
                model = onnx.load_from_string(data)
                onnx.checker.check_model(model)
            except Exception as error:  # the real parser reports errors instead of raising
                self.errors = [f"ModelImporter: {error}"]
                return False

            def shape(v: Any) -> tuple[int, ...]:
                return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim)

            def dtype(v: Any) -> Any:
                return getattr(DataType, _ONNX_TO_TRT[v.type.tensor_type.elem_type])

            self.network.inputs = [_Tensor(v.name, shape(v), dtype(v)) for v in model.graph.input]
            self.network.outputs = [_Tensor(v.name, shape(v), dtype(v)) for v in model.graph.output]
            self.network.onnx = data
            return True

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, index: int) -> str:
            return self.errors[index]

    class OptimizationProfile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple] = {}

        def set_shape(self, name: str, min: tuple, opt: tuple, max: tuple) -> None:  # noqa: A002 - the API's names
            if not (all(a <= b <= c for a, b, c in zip(min, opt, max))):
                raise ValueError("min <= opt <= max violated")
            self.shapes[name] = (tuple(min), tuple(opt), tuple(max))

    config_slots = ["flags", "pool_limits", "profiles"] + (["int8_calibrator"] if major == 10 else [])

    class BuilderConfig:
        __slots__ = config_slots  # like a pybind object: no new attributes, removed ones are missing

        def __init__(self) -> None:
            self.flags, self.pool_limits, self.profiles = set(), {}, []
            if major == 10:
                self.int8_calibrator = None

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            self.pool_limits[pool.name] = size
            calls["workspace"] = size

        def set_flag(self, flag: Any) -> None:
            self.flags.add(flag.name)
            calls["flags_set"].append(flag.name)

        def add_optimization_profile(self, profile: OptimizationProfile) -> int:
            self.profiles.append(profile)
            calls["profiles"].append(profile.shapes)
            return len(self.profiles) - 1

    class Builder:
        def __init__(self, logger: Logger) -> None:
            self.logger = logger

        def create_network(self, flags: int = 0) -> Network:
            calls["network_flags"].append(flags)
            return Network(flags)

        def create_builder_config(self) -> BuilderConfig:
            return BuilderConfig()

        def create_optimization_profile(self) -> OptimizationProfile:
            return OptimizationProfile()

        def build_serialized_network(self, network: Network, config: BuilderConfig) -> bytes | None:
            calls["builds"] += 1
            if network.strongly_typed and config.flags & set(WEAK_TYPING_FLAGS):
                return None  # "a strongly typed network cannot use precision flags"
            if any(t.shape[0] == -1 and t.name not in config.profiles[0].shapes for t in network.inputs):
                return None  # dynamic input without a profile
            header = {"version": version, "flags": sorted(config.flags), "profile": config.profiles[0].shapes,
                      "inputs": [[t.name, t.dtype.name] for t in network.inputs],
                      "outputs": [[t.name, "HALF" if output_half else t.dtype.name] for t in network.outputs]}
            blob = json.dumps(header).encode()
            return _MAGIC + len(blob).to_bytes(4, "little") + blob + network.onnx

    if major == 10:
        Builder.platform_has_fast_fp16 = property(lambda self: calls.__setitem__("platform_has_fast_fp16_read", True) or True)
        Builder.platform_has_fast_int8 = property(lambda self: calls.__setitem__("platform_has_fast_fp16_read", True) or True)

    class ExecutionContext:
        def __init__(self, engine: "CudaEngine") -> None:
            self.engine, self.shapes, self.addresses = engine, {}, {}
            self.thread = threading.get_ident()
            calls["contexts"].append(self.thread)

        def set_input_shape(self, name: str, shape: tuple) -> bool:
            low, _, high = self.engine.profile[name]
            if refuse_shapes or len(shape) != len(low) or not all(a <= s <= b for a, s, b in zip(low, shape, high)):
                return False
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name: str) -> tuple:
            if name in self.engine.input_names:
                return self.shapes.get(name, (-1, 3, 112, 112))
            batch = [s[0] for s in self.shapes.values()]
            return (batch[0],) if len(batch) == len(self.engine.input_names) else (-1,)

        def set_tensor_address(self, name: str, pointer: int) -> bool:
            self.addresses[name] = int(pointer)
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            if not isinstance(stream_handle, int):
                raise TypeError("stream_handle must be an int")
            calls["streams"].append(stream_handle)
            if fail_execute:
                return False
            feed = {}
            for name in self.engine.input_names:
                dtype = np.dtype(_NP[self.engine.dtypes[name]])
                shape = self.shapes[name]
                nbytes = int(np.prod(shape)) * dtype.itemsize
                feed[name] = _memory(self.addresses[name], nbytes).view(dtype).reshape(shape).astype(np.float32)
            out_name = self.engine.output_names[0]
            result = self.engine.session().run([out_name], feed)[0]
            out_dtype = np.dtype(_NP[self.engine.dtypes[out_name]])
            data = np.ascontiguousarray(result.astype(out_dtype)).view(np.uint8).reshape(-1)
            _memory(self.addresses[out_name], data.size)[:] = data
            return True

    class CudaEngine:
        def __init__(self, header: dict, onnx_bytes: bytes) -> None:
            self.header, self.onnx = header, onnx_bytes
            self.input_names = [n for n, _ in header["inputs"]]
            self.output_names = [n for n, _ in header["outputs"]]
            self.dtypes = dict(header["inputs"] + header["outputs"])
            self.profile = {k: tuple(tuple(x) for x in v) for k, v in header["profile"].items()}
            self._session = None
            self._lock = threading.Lock()

        def session(self) -> Any:
            import onnxruntime as ort

            with self._lock:
                if self._session is None:
                    self._session = ort.InferenceSession(self.onnx, providers=["CPUExecutionProvider"])
            return self._session

        @property
        def num_io_tensors(self) -> int:
            return len(self.input_names) + len(self.output_names)

        def get_tensor_name(self, index: int) -> str:
            return (self.input_names + self.output_names)[index]

        def get_tensor_mode(self, name: str) -> Any:
            return trt.TensorIOMode.INPUT if name in self.input_names else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str) -> Any:
            return getattr(DataType, self.dtypes[name])

        def create_execution_context(self) -> ExecutionContext:
            return ExecutionContext(self)

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, plan: bytes) -> CudaEngine | None:
            if not plan.startswith(_MAGIC):
                return None
            size = int.from_bytes(plan[8:12], "little")
            header = json.loads(plan[12 : 12 + size])
            compatible = "VERSION_COMPATIBLE" in header["flags"]
            if not compatible and header["version"].split(".")[:2] != version.split(".")[:2]:
                return None  # plans are tied to the TensorRT version that built them
            if compatible and "EXCLUDE_LEAN_RUNTIME" not in header["flags"] and not self.engine_host_code_allowed:
                return None  # a plan that embeds the lean runtime needs host code allowed
            calls["host_code_allowed"] = self.engine_host_code_allowed
            return CudaEngine(header, plan[12 + size :])

    trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, OnnxParser, Runtime
    return trt


_NP = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_}


class FakeCudaRuntime(types.ModuleType):
    """cuda-python's `cuda.bindings.runtime`: functions return (error, value) tuples; memory is host memory."""

    class cudaError_t:  # noqa: N801 - the real names
        cudaSuccess = 0
        cudaErrorInvalidDevice = 101
        cudaErrorMemoryAllocation = 2

    class cudaMemcpyKind:  # noqa: N801
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    def __init__(self, name: str = "NVIDIA Fake GPU", capability: tuple[int, int] = (8, 7), devices: int = 1) -> None:
        super().__init__("cuda.bindings.runtime")
        self.gpu_name, self.capability, self.devices = name, capability, devices
        self.buffers: dict[int, Any] = {}
        self.pinned: set[int] = set()
        self.current_device: dict[int, int] = {}  # thread -> device
        self.copies: list[tuple[int, int]] = []  # (kind, stream)
        self.synchronized: list[int] = []
        self._next_stream = 1000

    def _alloc(self, nbytes: int) -> int:
        buffer = ctypes.create_string_buffer(max(1, nbytes))
        address = ctypes.addressof(buffer)
        self.buffers[address] = buffer
        return address

    def cudaGetDeviceCount(self) -> tuple[int, int]:  # noqa: N802
        return 0, self.devices

    def cudaGetDeviceProperties(self, device: int) -> tuple[int, Any]:  # noqa: N802
        if device >= self.devices:
            return self.cudaError_t.cudaErrorInvalidDevice, None
        props = types.SimpleNamespace(name=self.gpu_name.encode() + b"\x00" * 4, major=self.capability[0],
                                      minor=self.capability[1])
        return 0, props

    def cudaSetDevice(self, device: int) -> tuple[int]:  # noqa: N802
        if device >= self.devices:
            return (self.cudaError_t.cudaErrorInvalidDevice,)
        self.current_device[threading.get_ident()] = device
        return (0,)

    def cudaStreamCreate(self) -> tuple[int, int]:  # noqa: N802
        self._next_stream += 1
        return 0, self._next_stream

    def cudaStreamSynchronize(self, stream: int) -> tuple[int]:  # noqa: N802
        self.synchronized.append(stream)
        return (0,)

    def cudaStreamDestroy(self, stream: int) -> tuple[int]:  # noqa: N802
        return (0,)

    def cudaMalloc(self, nbytes: int) -> tuple[int, int]:  # noqa: N802
        return 0, self._alloc(nbytes)

    def cudaFree(self, pointer: int) -> tuple[int]:  # noqa: N802
        self.buffers.pop(pointer, None)
        return (0,)

    def cudaMallocHost(self, nbytes: int) -> tuple[int, int]:  # noqa: N802
        address = self._alloc(nbytes)
        self.pinned.add(address)
        return 0, address

    def cudaFreeHost(self, pointer: int) -> tuple[int]:  # noqa: N802
        self.pinned.discard(pointer)
        self.buffers.pop(pointer, None)
        return (0,)

    def is_pinned(self, address: int) -> bool:
        return any(p <= address < p + len(self.buffers[p]) for p in self.pinned if p in self.buffers)

    def cudaMemcpyAsync(self, dst: int, src: int, count: int, kind: int, stream: int) -> tuple[int]:  # noqa: N802
        host = src if kind == self.cudaMemcpyKind.cudaMemcpyHostToDevice else dst
        if not self.is_pinned(host):
            raise AssertionError("asynchronous copy from pageable host memory (would be synchronous)")
        ctypes.memmove(dst, src, count)
        self.copies.append((kind, stream))
        return (0,)


def make_pycuda_driver(name: str = "Orin (fake)", capability: tuple[int, int] = (8, 7)) -> types.ModuleType:
    """pycuda.driver: Device, primary context, Stream, mem_alloc, pagelocked_empty, async copies."""
    drv = types.ModuleType("pycuda.driver")
    drv.log = {"pushed": [], "pagelocked": 0}
    keep: dict[int, Any] = {}

    class Context:
        pass

    class PrimaryContext:
        def push(self) -> None:
            drv.log["pushed"].append(threading.get_ident())

    class Device:
        @staticmethod
        def count() -> int:
            return 1

        def __init__(self, index: int) -> None:
            self.index = index

        def name(self) -> str:
            return name

        def compute_capability(self) -> tuple[int, int]:
            return capability

        def retain_primary_context(self) -> PrimaryContext:
            return PrimaryContext()

    class Stream:
        _next = 5000

        def __init__(self) -> None:
            Stream._next += 1
            self.handle = Stream._next

        def synchronize(self) -> None:
            pass

    class DeviceAllocation:
        def __init__(self, nbytes: int) -> None:
            self.buffer = ctypes.create_string_buffer(max(1, nbytes))
            keep[ctypes.addressof(self.buffer)] = self.buffer

        def __int__(self) -> int:
            return ctypes.addressof(self.buffer)

        def free(self) -> None:
            keep.pop(int(self), None)

    def pagelocked_empty(shape: Any, dtype: Any) -> np.ndarray:
        drv.log["pagelocked"] += 1
        return np.empty(shape, dtype)

    def memcpy_htod_async(dest: int, src: np.ndarray, stream: Stream) -> None:
        ctypes.memmove(int(dest), src.ctypes.data, src.nbytes)

    def memcpy_dtoh_async(dest: np.ndarray, src: int, stream: Stream) -> None:
        ctypes.memmove(dest.ctypes.data, int(src), dest.nbytes)

    drv.init = lambda: None
    drv.Context, drv.Device, drv.Stream = Context, Device, Stream
    drv.mem_alloc = DeviceAllocation
    drv.pagelocked_empty, drv.memcpy_htod_async, drv.memcpy_dtoh_async = pagelocked_empty, memcpy_htod_async, memcpy_dtoh_async
    return drv
