"""The on-disk cache of serialized TensorRT engines and its key.

A plan is valid only for the ONNX graph, TensorRT version, GPU model (name and compute
capability), precision and build options it was built with; the key hashes all of them, so a
change of any rebuilds instead of loading a plan that fails or, worse, runs a different model.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_CACHE_DIR = Path(os.environ.get("SR300_LIVENESS_CACHE", Path.home() / ".cache" / "sr300-liveness")) / "tensorrt"


@dataclass(frozen=True)
class BuildOptions:
    """How a plan is built. Precision is not here: it comes from the ONNX graph (strong typing)."""

    max_batch: int = 8
    opt_batch: int = 2  # a frame and its horizontal flip
    workspace_mb: int = 512
    #: A version-compatible plan runs on later TensorRT versions through the lean runtime.
    version_compatible: bool = False
    #: With version_compatible: leave the lean runtime out of the plan (the device has it installed).
    exclude_lean_runtime: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.opt_batch <= self.max_batch:
            raise ValueError(f"need 1 <= opt_batch <= max_batch, got {self.opt_batch} and {self.max_batch}")
        if self.workspace_mb <= 0:
            raise ValueError("workspace_mb must be positive")
        if self.exclude_lean_runtime and not self.version_compatible:
            raise ValueError("exclude_lean_runtime only applies to version-compatible plans")


def engine_cache_key(
    onnx_sha256: str, gpu_name: str, compute_capability: str, trt_version: str, precision: str, options: BuildOptions
) -> str:
    """Cache key of a serialized engine: any change of model, GPU, TensorRT, precision or options rebuilds."""
    payload = json.dumps(
        {"onnx": onnx_sha256, "gpu": gpu_name, "cc": compute_capability, "trt": trt_version,
         "precision": precision, "options": asdict(options)},
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

    def put(self, key: str, plan: bytes, meta: dict | None = None) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path(key), plan)
        if meta is not None:  # what the key was made of, for people reading the cache folder
            write_atomic(self.path(key).with_suffix(".json"), (json.dumps(meta, indent=2) + "\n").encode())
        return self.path(key)


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
