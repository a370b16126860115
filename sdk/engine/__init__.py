"""Inference engines: a batch of crops -> P(live). ONNX Runtime is the default, TensorRT the device engine."""
from __future__ import annotations

import os
from typing import Any, Callable

from sdk.engine.base import Engine
from sdk.engine.bundle import ModelBundle, OperatingPointSpec, write_bundle
from sdk.errors import EngineError


def _onnxruntime(model_path: str | os.PathLike[str], **options: Any) -> Engine:
    from sdk.engine.onnxruntime_engine import OnnxRuntimeEngine

    return OnnxRuntimeEngine(model_path, **options)


def _tensorrt(model_path: str | os.PathLike[str], **options: Any) -> Engine:
    from sdk.engine.tensorrt_engine import TensorRTEngine

    return TensorRTEngine(model_path, **options)


ENGINES: dict[str, Callable[..., Engine]] = {"onnxruntime": _onnxruntime, "tensorrt": _tensorrt}


def create_engine(kind: str, model_path: str | os.PathLike[str], **options: Any) -> Engine:
    """An engine by name ("onnxruntime" or "tensorrt") over an ONNX file."""
    if kind not in ENGINES:
        raise EngineError(f"unknown engine {kind!r}; choose one of {sorted(ENGINES)}")
    return ENGINES[kind](model_path, **options)


__all__ = ["ENGINES", "Engine", "ModelBundle", "OperatingPointSpec", "create_engine", "write_bundle"]
