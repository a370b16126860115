"""CUDA memory for the TensorRT engine: cuda-python (`cuda.bindings`) by default, pycuda when it is the one installed.

Both backends work on the device's *primary* context, the one the CUDA runtime (and therefore
TensorRT) uses, and make it current per thread (`activate`), so an engine can be called from any
thread. pycuda.autoinit is never used: it creates a private context bound to the importing thread.
Host buffers are page-locked (pinned) so that the asynchronous copies really are asynchronous.
"""
from __future__ import annotations

import abc
import ctypes
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdk.errors import DependencyMissingError, EngineError

BACKENDS: tuple[str, ...] = ("cuda-python", "pycuda")


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    compute_capability: str  # "8.7"


class CudaBackend(abc.ABC):
    """What the engine needs from CUDA; device pointers and stream handles are plain ints."""

    name = "cuda"

    def __init__(self, device: int) -> None:
        if device < 0:
            raise EngineError(f"CUDA device index must be >= 0, got {device}")
        self.device = device

    @abc.abstractmethod
    def gpu_info(self) -> GpuInfo:
        """Name and compute capability of the device (part of the engine cache key)."""

    @abc.abstractmethod
    def activate(self) -> None:
        """Make the device (its primary context) current in the calling thread."""

    @abc.abstractmethod
    def stream_create(self) -> int: ...

    @abc.abstractmethod
    def stream_synchronize(self, stream: int) -> None: ...

    @abc.abstractmethod
    def stream_destroy(self, stream: int) -> None: ...

    @abc.abstractmethod
    def malloc(self, nbytes: int) -> int: ...

    @abc.abstractmethod
    def free(self, pointer: int) -> None: ...

    @abc.abstractmethod
    def host_empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A page-locked (pinned) host array."""

    @abc.abstractmethod
    def host_free(self, array: np.ndarray) -> None: ...

    @abc.abstractmethod
    def copy_to_device_async(self, pointer: int, host: np.ndarray, stream: int) -> None: ...

    @abc.abstractmethod
    def copy_to_host_async(self, host: np.ndarray, pointer: int, stream: int) -> None: ...


def _import_cudart() -> Any:
    try:
        from cuda.bindings import runtime  # type: ignore[import-not-found]  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart as runtime  # type: ignore[import-not-found,no-redef]  # older cuda-python
    return runtime


class CudaPythonBackend(CudaBackend):
    """The CUDA runtime API through cuda-python; every call's error code is checked."""

    name = "cuda-python"

    def __init__(self, device: int = 0, runtime: Any = None) -> None:
        super().__init__(device)
        self.rt = runtime if runtime is not None else _import_cudart()
        self._host: dict[int, int] = {}  # id(array) -> pinned pointer
        err, count = self.rt.cudaGetDeviceCount()
        self._check(err, "cudaGetDeviceCount")
        if device >= count:
            raise EngineError(f"CUDA device {device} does not exist: this machine has {count}")
        self.activate()

    def _check(self, err: Any, what: str) -> None:
        if err != self.rt.cudaError_t.cudaSuccess:
            raise EngineError(f"CUDA {what} failed: {err}")

    def _call(self, what: str, *args: Any) -> Any:
        result = getattr(self.rt, what)(*args)
        if isinstance(result, tuple):
            self._check(result[0], what)
            return result[1] if len(result) == 2 else result[1:]
        self._check(result, what)
        return None

    def gpu_info(self) -> GpuInfo:
        props = self._call("cudaGetDeviceProperties", self.device)
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        # a fixed-size C char array: the name ends at the first NUL
        return GpuInfo(self.device, name.split("\x00", 1)[0].strip(), f"{props.major}.{props.minor}")

    def activate(self) -> None:
        self._call("cudaSetDevice", self.device)  # per thread: the runtime's current device is thread-local

    def stream_create(self) -> int:
        return int(self._call("cudaStreamCreate"))

    def stream_synchronize(self, stream: int) -> None:
        self._call("cudaStreamSynchronize", stream)

    def stream_destroy(self, stream: int) -> None:
        self._call("cudaStreamDestroy", stream)

    def malloc(self, nbytes: int) -> int:
        return int(self._call("cudaMalloc", nbytes))

    def free(self, pointer: int) -> None:
        self._call("cudaFree", pointer)

    def host_empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        pointer = int(self._call("cudaMallocHost", nbytes))
        buffer = (ctypes.c_byte * nbytes).from_address(pointer)
        array = np.frombuffer(buffer, dtype=dtype).reshape(shape)
        self._host[id(array)] = pointer
        return array

    def host_free(self, array: np.ndarray) -> None:
        pointer = self._host.pop(id(array), None)
        if pointer is not None:
            self._call("cudaFreeHost", pointer)

    def copy_to_device_async(self, pointer: int, host: np.ndarray, stream: int) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call("cudaMemcpyAsync", pointer, host.ctypes.data, host.nbytes, kind, stream)

    def copy_to_host_async(self, host: np.ndarray, pointer: int, stream: int) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call("cudaMemcpyAsync", host.ctypes.data, pointer, host.nbytes, kind, stream)


class PycudaBackend(CudaBackend):
    """pycuda on the device's primary context (shared with TensorRT), pushed per thread."""

    name = "pycuda"

    def __init__(self, device: int = 0, driver: Any = None) -> None:
        super().__init__(device)
        if driver is None:
            import pycuda.driver as driver  # type: ignore[import-not-found,no-redef]
        self.drv = driver
        self.drv.init()
        count = self.drv.Device.count()
        if device >= count:
            raise EngineError(f"CUDA device {device} does not exist: this machine has {count}")
        self._device = self.drv.Device(device)
        self._context = self._device.retain_primary_context()
        self._allocations: dict[int, Any] = {}
        self._streams: dict[int, Any] = {}
        self._pushed = threading.local()
        self.activate()

    def gpu_info(self) -> GpuInfo:
        major, minor = self._device.compute_capability()
        return GpuInfo(self.device, str(self._device.name()), f"{major}.{minor}")

    def activate(self) -> None:
        # A pycuda context stack is per thread: push the primary context once in each thread.
        if not getattr(self._pushed, "done", False):
            self._context.push()
            self._pushed.done = True

    def stream_create(self) -> int:
        stream = self.drv.Stream()
        self._streams[int(stream.handle)] = stream
        return int(stream.handle)

    def stream_synchronize(self, stream: int) -> None:
        self._streams[stream].synchronize()

    def stream_destroy(self, stream: int) -> None:
        self._streams.pop(stream, None)

    def malloc(self, nbytes: int) -> int:
        allocation = self.drv.mem_alloc(nbytes)
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, pointer: int) -> None:
        allocation = self._allocations.pop(pointer, None)
        if allocation is not None:
            allocation.free()

    def host_empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return self.drv.pagelocked_empty(shape, dtype)

    def host_free(self, array: np.ndarray) -> None:
        base = getattr(array, "base", None)
        if base is not None and hasattr(base, "free"):
            base.free()

    def copy_to_device_async(self, pointer: int, host: np.ndarray, stream: int) -> None:
        self.drv.memcpy_htod_async(pointer, host, self._streams[stream])

    def copy_to_host_async(self, host: np.ndarray, pointer: int, stream: int) -> None:
        self.drv.memcpy_dtoh_async(host, pointer, self._streams[stream])


def _installed(backend: str) -> bool:
    try:
        if backend == "cuda-python":
            _import_cudart()
        else:
            import pycuda.driver  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def select_backend(prefer: str | None = None, device: int = 0) -> CudaBackend:
    """cuda-python when installed (or asked for), else pycuda; a clear error when neither is there."""
    if prefer is not None and prefer not in BACKENDS:
        raise EngineError(f"unknown CUDA backend {prefer!r}: choose one of {BACKENDS}")
    order = [prefer] if prefer else list(BACKENDS)
    for backend in order:
        if _installed(backend):
            return CudaPythonBackend(device) if backend == "cuda-python" else PycudaBackend(device)
    raise DependencyMissingError(
        f"no CUDA Python binding found ({' or '.join(order)}): pip install cuda-python "
        "(wheels for CUDA 12 and 13; pycuda needs a CUDA toolkit to build)"
    )
