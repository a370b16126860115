"""Inference engines: a batch of crops -> P(live). ONNX Runtime is the default, TensorRT the device engine."""
from __future__ import annotations

import os
from typing import Any, Callable

from sdk.engine.base import Engine
from sdk.engine.bundle import ModelBundle, OperatingPointSpec, write_bundle
from sdk.engine.precision import PRECISIONS, parse_engine_spec, resolve_model
from sdk.errors import EngineError


def _onnxruntime(model_path: str | os.PathLike[str], **options: Any) -> Engine:
    from sdk.engine.onnxruntime_engine import OnnxRuntimeEngine

    return OnnxRuntimeEngine(model_path, **options)


def _tensorrt(model_path: str | os.PathLike[str], **options: Any) -> Engine:
    from sdk.engine.tensorrt_engine import TensorRTEngine

    return TensorRTEngine(model_path, **options)


ENGINES: dict[str, Callable[..., Engine]] = {"onnxruntime": _onnxruntime, "tensorrt": _tensorrt}


def create_engine(kind: str, model: str | os.PathLike[str] | ModelBundle, **options: Any) -> Engine:
    """An engine by name over an ONNX file, or over a verified bundle.

    With a bundle, `kind` may carry a precision ("onnxruntime-int8", "tensorrt-fp16") and the
    graph is the one the bundle declares for that engine and precision (sdk/engine/precision.py);
    without one, the bundle's default for the engine.
    """
    if isinstance(model, ModelBundle):
        engine_kind, precision = parse_engine_spec(kind)
        path, precision = resolve_model(model, engine_kind, precision)
        options.setdefault("precision", precision)
        return ENGINES[engine_kind](path, **options)
    if kind not in ENGINES:
        raise EngineError(f"unknown engine {kind!r}; choose one of {sorted(ENGINES)}")
    return ENGINES[kind](model, **options)


__all__ = ["ENGINES", "PRECISIONS", "Engine", "ModelBundle", "OperatingPointSpec", "create_engine", "resolve_model",
           "write_bundle"]
