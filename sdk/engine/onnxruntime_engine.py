"""ONNX Runtime engine: the embedded default (CPU; CUDA when onnxruntime-gpu is installed).

It runs FP32, FP16 (float16 inside, float32 I/O) and INT8 Q/DQ graphs alike."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sdk.engine.base import Engine
from sdk.errors import DependencyMissingError, EngineError


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        providers: Sequence[str] | None = None,
        intra_op_threads: int | None = None,
        precision: str | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as error:  # pragma: no cover - onnxruntime is a core dependency
            raise DependencyMissingError("onnxruntime is missing: pip install onnxruntime") from error
        from sdk.engine.precision import model_for_precision

        # precision="int8" (or fp16/fp32) runs that graph of the model's bundle instead of model.onnx
        path, self.precision = model_for_precision(model_path, "onnxruntime", precision)
        if not path.is_file():
            raise EngineError(f"{path}: ONNX model file not found")
        available = ort.get_available_providers()
        wanted = list(providers) if providers else [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        unknown = [p for p in wanted if p not in available]
        if unknown:
            raise EngineError(f"execution providers {unknown} are not available; this onnxruntime has {available}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=wanted)
        except Exception as error:
            raise EngineError(f"{path}: ONNX Runtime cannot load the model: {error}") from error
        self.providers = tuple(self._session.get_providers())
        self.model_path = path
        self._input_names = [i.name for i in self._session.get_inputs()]
        self._output_name = self._session.get_outputs()[0].name

    def _run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        if self._session is None:
            raise EngineError("the engine is closed")
        feed = {name: inputs[name] for name in self._input_names}
        return self._session.run([self._output_name], feed)[0]

    def close(self) -> None:
        self._session = None
