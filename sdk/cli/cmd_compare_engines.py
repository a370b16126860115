"""`sr300-liveness compare-engines`: P(live) of the same crops from several engines / precisions, side by side."""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare-engines",
        help="score the same crops with several engines and report differences and decision agreement",
        description="ENGINE is onnxruntime or tensorrt, optionally with a precision: onnxruntime-int8, tensorrt-fp16. "
        "The first engine is the reference. A precision the bundle does not carry is converted on the fly "
        "(needs the quantize extra; INT8 calibrates on other simulator subjects than the compared crops).",
    )
    parser.add_argument("--bundle", default=None, help="bundle folder (default: the shipped model)")
    parser.add_argument("--engines", default="onnxruntime,tensorrt", help="comma-separated list (default onnxruntime,tensorrt)")
    parser.add_argument("--crops", type=int, default=64, help="crops to compare (default 64)")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="a synth-dataset folder whose test lists give the crops (default: render simulator crops now)")
    parser.add_argument("--device", type=int, default=0, help="CUDA device for tensorrt (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run)


def _engine_options(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    if kind == "tensorrt":
        return {"device": args.device}
    return {"providers": ["CPUExecutionProvider"], "intra_op_threads": args.threads}


def _model_for(bundle: Any, kind: str, precision: str | None, scratch: Path, notes: list[str]) -> tuple[Path, str]:
    from sdk.engine import resolve_model
    from sdk.engine.precision import available_precisions
    from sdk.errors import EngineError

    try:
        return resolve_model(bundle, kind, precision)
    except EngineError:
        if precision is None:
            raise
    # The bundle lacks this precision: convert its FP32 graph here (same method as `quantize`).
    from sdk.quantize import DEFAULT_DATA_SEED, convert, load_crop_set, render_dataset

    fp32, _ = resolve_model(bundle, kind, "fp32") if "fp32" in available_precisions(bundle) else (None, None)
    if fp32 is None:
        raise EngineError(f"bundle {bundle.path} has no {precision} graph and no FP32 graph to convert")
    target = scratch / f"model.{precision}.onnx"
    if not target.is_file():
        calibration = None
        if precision == "int8":
            data = render_dataset(scratch / "calibration", seed=DEFAULT_DATA_SEED + 1, live=8, per_attack=4,
                                  frames_per_subject=1, splits=("Training",))
            calibration = load_crop_set(data, ["train_list.txt"], limit=64).inputs
        convert(fp32, target, precision, calibration)
        notes.append(f"{precision} graph converted on the fly from the bundle's FP32 graph"
                     + (" (INT8 ranges from 64 simulator crops, dataset seed %d)" % (DEFAULT_DATA_SEED + 1) if calibration else ""))
    return target, precision


def _detail(engine: Any) -> str:
    """ONNX Runtime's providers, or the GPU and TensorRT version an engine ran on."""
    if getattr(engine, "providers", None):
        return ",".join(engine.providers)
    gpu, info = getattr(engine, "gpu", None), getattr(engine, "plan_info", None)
    parts = [f"{gpu.name} sm {gpu.compute_capability}" if gpu else "", f"TensorRT {info.trt_version}" if info else ""]
    return ", ".join(p for p in parts if p)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from sdk.engine import ENGINES, ModelBundle
    from sdk.engine.compare import bundle_points, compare_scores
    from sdk.engine.precision import parse_engine_spec
    from sdk.errors import InputValidationError
    from sdk.preprocess import hflip_inputs
    from sdk.quantize import load_crop_set, render_dataset

    specs = [s.strip() for s in args.engines.split(",") if s.strip()]
    if len(specs) < 2:
        raise InputValidationError("--engines needs at least two engines, e.g. onnxruntime,onnxruntime-int8")
    if args.crops < 1:
        raise InputValidationError("--crops must be at least 1")
    parsed = [parse_engine_spec(s) for s in specs]
    if any(kind == "tensorrt" for kind, _ in parsed):  # fail before rendering crops, not after
        from sdk.engine.cuda_memory import select_backend
        from sdk.engine.tensorrt_api import import_tensorrt

        import_tensorrt()
        select_backend(device=args.device)
    bundle = ModelBundle.load(args.bundle)
    points = bundle_points(bundle)
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        if args.data:
            crops = load_crop_set(args.data, ["test_list.txt", "test_extra_list.txt"]).take(args.crops)
        else:
            # Test holds a third of the subjects asked for (live + 3 CASIA attacks), TestExtra 4 attacks.
            per = max(1, -(-args.crops // 8))
            data = render_dataset(scratch / "crops", seed=11, live=3 * per, per_attack=3 * per, frames_per_subject=1,
                                  splits=("Test", "TestExtra"))
            crops = load_crop_set(data, ["test_list.txt", "test_extra_list.txt"]).take(args.crops)
        n = len(crops)
        engines: dict[str, dict[str, Any]] = {}
        scores: dict[str, np.ndarray] = {}
        for spec, (kind, precision) in zip(specs, parsed):
            path, resolved = _model_for(bundle, kind, precision, scratch, notes)
            options = _engine_options(kind, args)
            if kind == "tensorrt":
                options["precision"] = resolved
            engine = ENGINES[kind](path, **options)
            try:
                out, timings = [], []
                batch = 4  # 4 crops + their flips = 8, the TensorRT profile's max batch
                for start in range(0, n, batch):
                    part = {k: v[start : start + batch] for k, v in crops.inputs.items()}
                    both = {k: np.concatenate([v, hflip_inputs({k: v})[k]]) for k, v in part.items()}
                    t0 = time.perf_counter()
                    p = engine.predict(both)
                    timings.append((time.perf_counter() - t0) * 1e3 / part["rgb"].shape[0])
                    m = part["rgb"].shape[0]
                    out.append(0.5 * (p[:m] + p[m:]))
                scores[spec] = np.concatenate(out)
                engines[spec] = {"engine": kind, "precision": resolved, "model": str(path),
                                 "ms_per_crop_median": round(statistics.median(timings), 3),
                                 "detail": _detail(engine)}
            finally:
                engine.close()
    reference = specs[0]
    comparisons = {spec: compare_scores(scores[reference], scores[spec], points, labels=crops.labels)
                   for spec in specs[1:]}
    report = {"bundle": f"{bundle.name} {bundle.version}", "crops": n, "n_live": int((crops.labels == 1).sum()),
              "reference": reference, "engines": engines, "comparisons": comparisons,
              "all_agree": all(c["all_agree"] for c in comparisons.values()), "notes": notes}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{bundle.name} {bundle.version}: {n} crops ({report['n_live']} live), reference {reference}")
    for spec, comp in comparisons.items():
        worst = ", ".join(f"{k} {v['disagreements']}" for k, v in comp["decisions"].items())
        print(f"  {spec:<20s} max |dP| {comp['max_abs_diff']:.2e}  mean {comp['mean_abs_diff']:.2e}  "
              f"decisions differing per point: {worst}")
    for spec, info in engines.items():
        print(f"  {spec:<20s} {info['precision']:<5s} {info['ms_per_crop_median']:.2f} ms/crop (crop + flip, batch 4)")
    for note in notes:
        print(f"  note: {note}")
    print("decisions agree at every operating point" if report["all_agree"] else "DECISIONS DIFFER (see above)")
    return 0
