"""`sr300-liveness build-engine`: build (or take from the cache) the TensorRT plan of a bundle on this GPU."""
from __future__ import annotations

import argparse
import json
import shutil


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build-engine",
        help="build the TensorRT engine of a bundle on this GPU (strongly typed, dynamic batch) and cache it",
        description="The precision is the graph's (TensorRT 10 and 11 build strongly typed networks): an fp16 or "
        "int8 engine needs the bundle's fp16 or int8 graph (sr300-liveness quantize).",
    )
    parser.add_argument("--bundle", default=None, help="bundle folder (default: the shipped model)")
    parser.add_argument("--precision", default=None, choices=["fp32", "fp16", "int8"],
                        help="which graph of the bundle (default: the bundle's TensorRT default)")
    parser.add_argument("--out", default=None, metavar="PLAN", help="also copy the plan to this file")
    parser.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    parser.add_argument("--max-batch", type=int, default=8, help="largest batch of the optimisation profile")
    parser.add_argument("--opt-batch", type=int, default=2, help="batch the profile is tuned for (crop + flip)")
    parser.add_argument("--workspace-mb", type=int, default=512)
    parser.add_argument("--version-compatible", action="store_true",
                        help="a plan that later TensorRT versions (and the lean runtime) can run")
    parser.add_argument("--exclude-lean-runtime", action="store_true",
                        help="with --version-compatible: leave the lean runtime out (the device has it installed)")
    parser.add_argument("--cache-dir", default=None, help="engine cache folder (default ~/.cache/sr300-liveness/tensorrt)")
    parser.add_argument("--cuda", default=None, choices=["cuda-python", "pycuda"], help="CUDA binding (default: cuda-python if installed)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sdk.engine import ModelBundle, resolve_model
    from sdk.engine.cuda_memory import select_backend
    from sdk.engine.engine_cache import DEFAULT_CACHE_DIR, BuildOptions, EngineCache
    from sdk.engine.tensorrt_api import import_tensorrt
    from sdk.engine.tensorrt_engine import prepare_plan
    from sdk.errors import InputValidationError

    try:
        options = BuildOptions(max_batch=args.max_batch, opt_batch=args.opt_batch, workspace_mb=args.workspace_mb,
                               version_compatible=args.version_compatible,
                               exclude_lean_runtime=args.exclude_lean_runtime)
    except ValueError as error:
        raise InputValidationError(str(error)) from None
    bundle = ModelBundle.load(args.bundle)
    onnx_path, precision = resolve_model(bundle, "tensorrt", args.precision)
    trt = import_tensorrt()
    gpu = select_backend(args.cuda, args.device).gpu_info()
    plan, info = prepare_plan(trt, onnx_path, gpu, precision=precision, options=options,
                              cache=EngineCache(args.cache_dir or DEFAULT_CACHE_DIR))
    if args.out:
        shutil.copyfile(info.path, args.out)
    report = {"bundle": f"{bundle.name} {bundle.version}", "onnx": str(onnx_path), "precision": info.precision,
              "plan": str(info.path), "copied_to": args.out, "key": info.key, "built": info.built,
              "build_s": round(info.build_s, 2), "plan_bytes": len(plan), "tensorrt": info.trt_version,
              "gpu": info.gpu.name, "compute_capability": info.gpu.compute_capability, "device": args.device,
              "version_compatible": options.version_compatible}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        state = f"built in {info.build_s:.1f} s" if info.built else "taken from the cache"
        print(f"{report['plan']} ({len(plan) / 1e6:.1f} MB, {info.precision}, TensorRT {info.trt_version}, "
              f"{gpu.name} sm {gpu.compute_capability}): {state}" + (f"; copied to {args.out}" if args.out else ""))
    return 0
