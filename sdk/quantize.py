"""Precision in the graph: FP16 and INT8 (explicit Q/DQ) bundles made from an FP32 bundle, re-checked.

    FP32 bundle -> FP16 graph (float16 inside, float32 inputs and outputs: keep_io_types)
                -> or INT8 graph (QuantizeLinear/DequantizeLinear pairs, symmetric int8 activations
                   and per-channel weights, as TensorRT's explicit quantization wants; ranges
                   calibrated on simulator crops by ONNX Runtime's static quantizer, QuantFormat.QDQ)
                -> FP32 and the new graph score the same held-out crops on ONNX Runtime (CPU):
                   decisions at every operating point, TPR change, latency side by side
                -> a new bundle (name suffix and version "+<precision>", hashes) that carries both
                   graphs and declares which one the CPU runs (sdk/engine/precision.py).

The quantized graph becomes the CPU default only when it was faster AND its decisions agreed with
FP32 at every operating point. Needs the `quantize` extra (onnx); never imports torch.
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from sdk.engine.bundle import MANIFEST_NAME, ModelBundle, sha256_file, write_bundle
from sdk.engine.compare import bundle_points, compare_scores
from sdk.engine.engine_cache import write_atomic
from sdk.engine.precision import PRECISIONS, graph_precision, io_dtypes, precision_info
from sdk.errors import DependencyMissingError, InputValidationError
from sdk.preprocess import MODALITIES, hflip_inputs

#: The simulator dataset seed rendered when no --calibration folder is given. The shipped model
#: used seeds 0-2; this one shares no subject with its training or calibration data.
DEFAULT_DATA_SEED = 7
FP32_VARIANT_FILE = "model.fp32.onnx"


@dataclass(frozen=True)
class CropSet:
    """Model inputs of stored crops: {"rgb","ir","depth"} N x 3 x 112 x 112 float32, labels (1 live), scenarios."""

    inputs: Mapping[str, np.ndarray]
    labels: np.ndarray
    scenarios: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(self, count: int) -> "CropSet":
        keep = slice(0, min(count, len(self)))
        return CropSet({k: v[keep] for k, v in self.inputs.items()}, self.labels[keep], self.scenarios[keep], self.source)


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime.quantization  # noqa: F401
    except ImportError as error:
        raise DependencyMissingError('quantization needs onnx: pip install "sr300-liveness[quantize]"') from error


def render_dataset(out_dir: str | os.PathLike[str], *, seed: int = DEFAULT_DATA_SEED, live: int = 12, per_attack: int = 9,
                   frames_per_subject: int = 2, splits: Sequence[str] = ("Training", "Test", "TestExtra"),
                   workers: int = 1, progress: bool = False) -> Path:
    """A CASIA-format simulator dataset (the synth-dataset layout and lists) with only the splits asked for.

    Subjects of different splits never overlap (sdk.sim.dataset seeds them apart), so calibrating
    on "Training" and checking on "Test"/"TestExtra" keeps the check held out.
    """
    import csv
    import io

    from sdk.sim.dataset import LIST_NAMES, plan, run_job

    out = Path(out_dir)
    done = out / ".complete"
    if done.is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    jobs = [job for job in plan(live, per_attack, frames_per_subject, seed) if job.split in splits]
    tasks = [(job, str(out), "jpg") for job in jobs]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(j.frames for j in jobs), unit="triplet", desc="simulator crops")
    rows: list[dict] = []
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            results = list(pool.imap(run_job, tasks, chunksize=1))
    else:
        results = map(run_job, tasks)
    for part in results:
        rows.extend(part)
        if bar is not None:
            bar.update(len(part))
    if bar is not None:
        bar.close()
    for split in splits:  # lists last: a list never names a missing file
        lines = [f"{r['color']} {r['depth']} {r['ir']} {r['label']}" for r in rows if r["split"] == split]
        write_atomic(out / LIST_NAMES[split], ("\n".join(lines) + "\n").encode())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["split", "color", "scenario", "label", "subject"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out / "metadata.csv", buffer.getvalue().encode())
    write_atomic(done, json.dumps({"seed": seed, "live": live, "per_attack": per_attack,
                                   "frames_per_subject": frames_per_subject, "splits": list(splits)}).encode())
    return out


def load_crop_set(root: str | os.PathLike[str], list_names: Sequence[str], limit: int | None = None) -> CropSet:
    """Crops of a CASIA-format dataset's lists, made exactly as the device engine takes them."""
    import csv

    from sdk.preprocess import crops_to_inputs
    from training.data.casia import load_model_crops, read_list

    root = Path(root)
    samples = []
    for name in list_names:
        path = root / name
        if not path.is_file():
            raise InputValidationError(f"{path}: list file not found (a synth-dataset folder has train/val/test lists)")
        samples.extend(read_list(path))
    if limit is not None:
        samples = samples[:limit]
    if not samples:
        raise InputValidationError(f"{root}: the lists {list(list_names)} hold no samples")
    scenario_of: dict[str, str] = {}
    if (root / "metadata.csv").is_file():
        with open(root / "metadata.csv", newline="", encoding="utf-8") as handle:
            scenario_of = {row["color"]: row["scenario"] for row in csv.DictReader(handle)}
    inputs = crops_to_inputs([load_model_crops(root, s) for s in samples])
    labels = np.asarray([s.label for s in samples], dtype=np.int64)
    return CropSet(inputs, labels, tuple(scenario_of.get(s.rgb, "") for s in samples), f"{root} {','.join(list_names)}")


def convert_fp16(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """FP32 ONNX -> FP16 ONNX with float32 inputs and outputs (Casts at the edges)."""
    _require_onnx()
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    _topological_sort(model.graph)  # the converter appends the input Casts after their consumers
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return Path(dst)


def _topological_sort(graph: Any) -> None:
    """Reorder graph.node so that every node comes after the producers of its inputs (ONNX requires it)."""
    available = {v.name for v in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise InputValidationError("the converted graph has a cycle or an input nobody produces")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    copies = [type(n)() for n in ordered]
    for copy, node in zip(copies, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


class _Reader:
    """onnxruntime.quantization CalibrationDataReader over model inputs (and their flips, as the session scores both)."""

    def __init__(self, inputs: Mapping[str, np.ndarray], batch: int = 16) -> None:
        both = {k: np.concatenate([v, hflip_inputs({k: v})[k]]) for k, v in inputs.items()}
        n = next(iter(both.values())).shape[0]
        self._items = iter([{k: v[i : i + batch] for k, v in both.items()} for i in range(0, n, batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def quantize_int8(src: str | os.PathLike[str], dst: str | os.PathLike[str], calibration: Mapping[str, np.ndarray],
                  *, method: str = "minmax") -> Path:
    """FP32 ONNX -> INT8 ONNX with explicit Q/DQ nodes (symmetric int8 activations, per-channel int8 weights)."""
    _require_onnx()
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise InputValidationError(f"calibration method must be one of {sorted(methods)}, got {method!r}")
    for modality in MODALITIES:
        if modality not in calibration or calibration[modality].shape[0] == 0:
            raise InputValidationError(f"calibration inputs lack {modality!r} crops")
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            # histogram methods stack per-batch outputs, so they need equal batches: one crop at a time
            str(prepared), str(dst), _Reader(calibration, batch=16 if method == "minmax" else 1),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
            calibrate_method=methods[method],
            # TensorRT takes symmetric (zero-point 0) int8 only; ONNX Runtime runs it too.
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
        )
    return Path(dst)


def convert(src: Path, dst: Path, precision: str, calibration: Mapping[str, np.ndarray] | None = None,
            method: str = "minmax") -> Path:
    if precision == "fp16":
        return convert_fp16(src, dst)
    if precision == "int8":
        if calibration is None:
            raise InputValidationError("INT8 needs calibration crops")
        return quantize_int8(src, dst, calibration, method=method)
    raise InputValidationError(f"precision must be fp16 or int8, got {precision!r}")


def score_cpu(model_path: Path, inputs: Mapping[str, np.ndarray], *, threads: int = 1, batch: int = 32) -> np.ndarray:
    """P(live) = mean of the crop and its flip on ONNX Runtime CPU, as the session scores."""
    from sdk.engine.onnxruntime_engine import OnnxRuntimeEngine

    with OnnxRuntimeEngine(model_path, providers=["CPUExecutionProvider"], intra_op_threads=threads) as engine:
        n = next(iter(inputs.values())).shape[0]
        out = []
        for start in range(0, n, batch):
            part = {k: v[start : start + batch] for k, v in inputs.items()}
            both = {k: np.concatenate([v, hflip_inputs({k: v})[k]]) for k, v in part.items()}
            scores = engine.predict(both)
            m = part["rgb"].shape[0]
            out.append(0.5 * (scores[:m] + scores[m:]))
    return np.concatenate(out)


def latency_side_by_side(models: Mapping[str, Path], inputs: Mapping[str, np.ndarray], *, repeats: int = 60,
                         threads: int = 1) -> dict[str, Any]:
    """Median / p95 ms of the session's engine call (one crop and its flip) per model, interleaved in one run
    so that load from other jobs hits every model alike."""
    from sdk.engine.onnxruntime_engine import OnnxRuntimeEngine

    one = {k: np.concatenate([v[:1], hflip_inputs({k: v[:1]})[k]]) for k, v in inputs.items()}
    engines = {name: OnnxRuntimeEngine(path, providers=["CPUExecutionProvider"], intra_op_threads=threads)
               for name, path in models.items()}
    samples: dict[str, list[float]] = {name: [] for name in engines}
    try:
        for engine in engines.values():  # warm-up
            for _ in range(5):
                engine.predict(one)
        for _ in range(repeats):
            for name, engine in engines.items():
                start = time.perf_counter()
                engine.predict(one)
                samples[name].append((time.perf_counter() - start) * 1e3)
    finally:
        for engine in engines.values():
            engine.close()
    return {name: {"median_ms": round(statistics.median(v), 3), "p95_ms": round(float(np.percentile(v, 95)), 3)}
            for name, v in samples.items()} | {"threads": threads, "repeats": repeats, "batch": 2}


def choose_cpu_default(precision: str, *, faster: bool, decisions_agree: bool) -> str:
    """The rule: the quantized graph runs on the CPU by default only if it is faster AND every decision agreed."""
    return precision if (faster and decisions_agree) else "fp32"


def check_precision(bundle: ModelBundle, reference: Path, candidate: Path, check: CropSet, *, threads: int = 1,
                    repeats: int = 60, precision: str = "int8") -> dict[str, Any]:
    """FP32 against the candidate graph on the same held-out crops: decisions, TPR, latency."""
    scores_ref = score_cpu(reference, check.inputs, threads=threads)
    scores_new = score_cpu(candidate, check.inputs, threads=threads)
    parity = compare_scores(scores_ref, scores_new, bundle_points(bundle), labels=check.labels)
    latency = latency_side_by_side({"fp32": reference, precision: candidate}, check.inputs, repeats=repeats,
                                   threads=threads)
    ratio = latency[precision]["median_ms"] / latency["fp32"]["median_ms"]
    faster = ratio < 1.0
    return {
        "check_set": check.source,
        "n_live": int((check.labels == 1).sum()),
        "n_attack": int((check.labels == 0).sum()),
        "parity": parity,
        "latency_cpu": latency,
        "latency_ratio": round(ratio, 4),
        "faster": faster,
        "decisions_agree": parity["all_agree"],
        "cpu_default": choose_cpu_default(precision, faster=faster, decisions_agree=parity["all_agree"]),
        "machine": f"{os.cpu_count()} cores",
    }


def _amend_manifest(folder: Path, extra: Mapping[str, Any]) -> ModelBundle:
    """Add top-level keys to a written bundle's manifest (atomically), then load and verify it again."""
    path = folder / MANIFEST_NAME
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(extra)
    write_atomic(path, (json.dumps(manifest, indent=2) + "\n").encode())
    return ModelBundle.load(folder)


def quantize_bundle(
    bundle_dir: str | os.PathLike[str] | None,
    precision: str,
    out: str | os.PathLike[str],
    *,
    calibration_dir: str | os.PathLike[str] | None = None,
    check_dir: str | os.PathLike[str] | None = None,
    calibration_lists: Sequence[str] = ("train_list.txt",),
    check_lists: Sequence[str] = ("test_list.txt", "test_extra_list.txt"),
    calibration_samples: int = 128,
    method: str = "minmax",
    threads: int = 1,
    repeats: int = 60,
    work_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[ModelBundle, dict[str, Any]]:
    """Write the `precision` bundle of an FP32 bundle and return it with its check report.

    Calibration (INT8) uses `calibration_lists` of the dataset folder; the check uses
    `check_lists` (other subjects) of `check_dir` (default: the same folder). Without a folder
    a small simulator dataset is rendered.
    """
    _require_onnx()
    if precision not in ("fp16", "int8"):
        raise InputValidationError(f"--precision must be fp16 or int8, got {precision!r}")
    source = ModelBundle.load(bundle_dir)
    info = precision_info(source.manifest)
    if info["graph"] != "fp32":
        raise InputValidationError(f"{source.path} holds a {info['graph']} graph: quantize an FP32 bundle")
    source_model = source.model_path
    with tempfile.TemporaryDirectory(dir=work_dir) as scratch:
        if calibration_dir is None:
            log(f"rendering a simulator dataset (seed {DEFAULT_DATA_SEED}) to calibrate and check on ...")
            data = render_dataset(Path(scratch) / "data")
        else:
            data = Path(calibration_dir)
        calib = load_crop_set(data, calibration_lists, limit=calibration_samples)
        check = load_crop_set(check_dir if check_dir is not None else data, check_lists)
        log(f"{precision}: calibrating on {len(calib)} crops, checking on {len(check)} "
            f"({int((check.labels == 1).sum())} live)")
        candidate = convert(source_model, Path(scratch) / f"model.{precision}.onnx", precision, calib.inputs, method)
        if graph_precision(candidate) != precision or set(io_dtypes(candidate).values()) != {"FLOAT"}:
            raise InputValidationError(f"the converted graph is not {precision} with float32 inputs and outputs")
        report = check_precision(source, source_model, candidate, check, threads=threads, repeats=repeats,
                                 precision=precision)
        report["calibration_set"] = calib.source if precision == "int8" else None
        report["calibration_samples"] = len(calib) if precision == "int8" else 0
        report["method"] = ("onnxruntime.quantization.quantize_static QDQ, symmetric int8 activations, per-channel "
                            f"int8 weights, {method} calibration" if precision == "int8"
                            else "onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)")
        points = {}
        for name, entry in report["parity"]["decisions"].items():
            spec = source.manifest["operating_points"]["points"][name]
            points[name] = {**spec, "recheck": {"precision": precision, **{k: v for k, v in entry.items()}}}
        bundle = write_bundle(
            out, candidate, name=f"{source.name}-{precision}", version=f"{source.version}+{precision}",
            operating_points=points, default_operating_point=source.default_operating_point,
            metrics={**dict(source.manifest.get("metrics", {})), "quantization": report},
            provenance={"command": f"sr300-liveness quantize --precision {precision}",
                        "source_bundle": {"name": source.name, "version": source.version, "path": str(source.path),
                                          "model_sha256": sha256_file(source_model)}},
            extra_files={FP32_VARIANT_FILE: source_model},
        )
    cpu_default = report["cpu_default"]
    declaration = {
        "graph": precision,
        "variants": {"fp32": FP32_VARIANT_FILE},
        # TensorRT runs the graph of the bundle's precision; the CPU the one the check chose.
        "defaults": {"onnxruntime": cpu_default, "tensorrt": precision},
        "cpu_default_rule": "the quantized graph only if faster on ONNX Runtime CPU and its decisions agree "
                            "with FP32 at every operating point on the check set",
    }
    bundle = _amend_manifest(bundle.path, {"precision": declaration})
    return bundle, report


__all__ = ["CropSet", "PRECISIONS", "check_precision", "choose_cpu_default", "convert", "convert_fp16", "latency_side_by_side",
           "load_crop_set", "quantize_bundle", "quantize_int8", "render_dataset", "score_cpu"]
