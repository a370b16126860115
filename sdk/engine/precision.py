"""Precision in the graph: what an ONNX file computes in, and which graph of a bundle an engine runs.

TensorRT 11 builds strongly typed networks only (no FP16/INT8 builder flags), so the precision
lives in the ONNX graph: FP16 as float16 tensors with float32 inputs and outputs, INT8 as explicit
QuantizeLinear/DequantizeLinear (Q/DQ) pairs. A bundle says which precision its graphs have in an
optional manifest key ``precision`` (absent: one FP32 graph, ``model.onnx``, for every engine):

    "precision": {
      "graph": "int8",                              # the precision of model.onnx
      "variants": {"fp32": "model.fp32.onnx"},      # other graphs carried (hashed under "files")
      "defaults": {"onnxruntime": "int8", "tensorrt": "int8"},   # the graph each engine runs
      ...                                           # provenance and the check that set "defaults"
    }

`sr300-liveness quantize` writes ``defaults.onnxruntime`` = the quantized graph only when it was
faster on the CPU and its decisions agreed with FP32 at every operating point.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from sdk.errors import DependencyMissingError, EngineError, ModelIntegrityError

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
ENGINE_KINDS: tuple[str, ...] = ("onnxruntime", "tensorrt")
_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as error:
        raise DependencyMissingError('reading ONNX graphs needs the onnx package: pip install "sr300-liveness[quantize]"') from error
    return onnx


def _load(model: Any) -> Any:
    onnx = _onnx()
    if isinstance(model, (str, os.PathLike)):
        return onnx.load(str(model), load_external_data=False)
    return model


def graph_precision(model: Any) -> str:
    """"int8" when the graph has Q/DQ nodes, "fp16" when it computes in float16, else "fp32"."""
    onnx = _onnx()
    graph = _load(model).graph
    if any(node.op_type in _QDQ_OPS for node in graph.node):
        return "int8"
    fp16 = onnx.TensorProto.FLOAT16
    if any(init.data_type == fp16 for init in graph.initializer):
        return "fp16"
    for node in graph.node:
        if node.op_type == "Cast" and any(a.name == "to" and a.i == fp16 for a in node.attribute):
            return "fp16"
    if any(v.type.tensor_type.elem_type == fp16 for v in graph.value_info):
        return "fp16"
    return "fp32"


def io_dtypes(model: Any) -> dict[str, str]:
    """Element type name of every graph input and output, e.g. {"rgb": "FLOAT", "p_live": "FLOAT"}."""
    onnx = _onnx()
    graph = _load(model).graph
    return {v.name: onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type) for v in (*graph.input, *graph.output)}


def parse_engine_spec(spec: str) -> tuple[str, str | None]:
    """"onnxruntime" -> ("onnxruntime", None); "tensorrt-fp16" -> ("tensorrt", "fp16")."""
    kind, _, precision = spec.strip().partition("-")
    if kind not in ENGINE_KINDS:
        raise EngineError(f"unknown engine {spec!r}: use ENGINE or ENGINE-PRECISION, ENGINE one of {ENGINE_KINDS}")
    if precision and precision not in PRECISIONS:
        raise EngineError(f"unknown precision in {spec!r}: choose one of {PRECISIONS}")
    return kind, precision or None


def precision_info(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's precision declaration with its defaults filled in."""
    info = manifest.get("precision")
    if info is None:
        return {"graph": "fp32", "variants": {}, "defaults": {}}
    if not isinstance(info, Mapping) or info.get("graph") not in PRECISIONS:
        raise ModelIntegrityError(f"manifest 'precision' must hold 'graph' (one of {PRECISIONS}), got {info!r}")
    variants = dict(info.get("variants") or {})
    defaults = dict(info.get("defaults") or {})
    files = manifest.get("files", {})
    for precision, file_name in variants.items():
        if precision not in PRECISIONS or file_name not in files:
            raise ModelIntegrityError(f"precision variant {precision!r} -> {file_name!r} is unknown or has no hash in 'files'")
    for engine, precision in defaults.items():
        if precision != info["graph"] and precision not in variants:
            raise ModelIntegrityError(f"engine default {engine} -> {precision!r} names no graph of the bundle")
    return {**dict(info), "variants": variants, "defaults": defaults}


def available_precisions(bundle: Any) -> tuple[str, ...]:
    info = precision_info(bundle.manifest)
    return tuple(p for p in PRECISIONS if p == info["graph"] or p in info["variants"])


def resolve_model(bundle: Any, engine: str, precision: str | None = None) -> tuple[Path, str]:
    """(ONNX path, precision) that `engine` runs from a verified bundle.

    `precision` None: the bundle's declared default for that engine, else model.onnx.
    A precision the bundle does not carry is an EngineError naming the command that makes it.
    """
    info = precision_info(bundle.manifest)
    wanted = precision or info["defaults"].get(engine) or info["graph"]
    if wanted == info["graph"]:
        return Path(bundle.model_path), wanted
    if wanted in info["variants"]:
        return Path(bundle.path) / info["variants"][wanted], wanted
    raise EngineError(
        f"bundle {bundle.path} has no {wanted} graph (it carries {available_precisions(bundle)}); "
        f"make one with: sr300-liveness quantize --bundle {bundle.path} --precision {wanted} --out DIR"
    )


def model_for_precision(model_path: str | os.PathLike[str], engine: str, precision: str | None) -> tuple[Path, str | None]:
    """The graph an engine runs when handed `model_path` (engines call this with their `precision` option).

    * precision None, `model_path` is the main model of a bundle that declares "precision": the
      bundle's default graph for `engine` (so a session on a quantized bundle runs on the CPU
      the graph the quantize check chose, without any option);
    * precision None otherwise: `model_path` as it is;
    * precision given, inside a bundle: that graph of the bundle (EngineError if it has none);
    * precision given, a file outside a bundle: the file, with `precision` as its label.

    A bundle is loaded and verified again, so a variant file is hash-checked like the main one.
    """
    import json

    from sdk.engine.bundle import MANIFEST_NAME, MODEL_NAME, ModelBundle

    path = Path(model_path)
    if precision is not None and precision not in PRECISIONS:
        raise EngineError(f"unknown precision {precision!r}: choose one of {PRECISIONS}")
    manifest_path = path.parent / MANIFEST_NAME
    if not manifest_path.is_file():
        return path, precision
    if precision is None:
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return path, None  # not a bundle this layer understands: run the file itself
        if not isinstance(manifest, dict) or "precision" not in manifest or manifest.get("model_file", MODEL_NAME) != path.name:
            return path, None
    bundle = ModelBundle.load(path.parent)
    return resolve_model(bundle, engine, precision)
