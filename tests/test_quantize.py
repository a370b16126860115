"""Precision in the graph (FP16, INT8 Q/DQ), quantized bundles, the CPU-default rule, parity math and the CLI."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sdk.cli import main
from sdk.engine import ModelBundle, create_engine, resolve_model
from sdk.engine.bundle import OperatingPointSpec
from sdk.engine.compare import compare_scores
from sdk.engine.precision import graph_precision, io_dtypes, parse_engine_spec, precision_info
from sdk.errors import EngineError, InputValidationError, ModelIntegrityError
from sdk.preprocess import crops_to_inputs
from sdk.types import FaceCrops

onnx = pytest.importorskip("onnx", reason="quantization needs the quantize extra (onnx)")

from sdk.quantize import (  # noqa: E402
    choose_cpu_default, convert_fp16, load_crop_set, quantize_bundle, quantize_int8, render_dataset, score_cpu,
)


def _crops(n: int, seed: int = 0) -> list[FaceCrops]:
    rng = np.random.default_rng(seed)
    return [FaceCrops(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8), rng.integers(0, 255, (112, 112), dtype=np.uint8),
                      rng.integers(0, 255, (112, 112), dtype=np.uint8), 0.5, 1.0, "x") for _ in range(n)]


@pytest.fixture(scope="module")
def sim_data(tmp_path_factory):
    """A tiny simulator dataset (8 crops): TestExtra's attacks calibrate, Test's live and attacks check."""
    return render_dataset(tmp_path_factory.mktemp("sim") / "data", seed=7, live=3, per_attack=3, frames_per_subject=1,
                          splits=("Test", "TestExtra"))


CALIB = {"calibration_lists": ("test_extra_list.txt",), "check_lists": ("test_list.txt",)}
CALIB_ARGS = ["--calibration-list", "test_extra_list.txt", "--check-list", "test_list.txt"]


def test_graph_precision_of_fp16_and_int8_graphs(tiny_bundle, tmp_path):
    assert graph_precision(tiny_bundle.model_path) == "fp32"
    fp16 = convert_fp16(tiny_bundle.model_path, tmp_path / "fp16.onnx")
    assert graph_precision(fp16) == "fp16"
    assert set(io_dtypes(fp16).values()) == {"FLOAT"}  # float32 inputs and outputs (keep_io_types)
    int8 = quantize_int8(tiny_bundle.model_path, tmp_path / "int8.onnx", crops_to_inputs(_crops(8)))
    assert graph_precision(int8) == "int8" and set(io_dtypes(int8).values()) == {"FLOAT"}
    model = onnx.load(str(int8))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)  # symmetric int8 (TensorRT)
    inputs = crops_to_inputs(_crops(4, seed=5))
    reference = score_cpu(tiny_bundle.model_path, inputs)
    assert np.allclose(score_cpu(fp16, inputs), reference, atol=1e-3)
    assert np.allclose(score_cpu(int8, inputs), reference, atol=3e-2)
    with pytest.raises(InputValidationError, match="lack"):
        quantize_int8(tiny_bundle.model_path, tmp_path / "x.onnx", {"rgb": inputs["rgb"]})


def test_cpu_default_rule():
    assert choose_cpu_default("int8", faster=True, decisions_agree=True) == "int8"
    assert choose_cpu_default("int8", faster=False, decisions_agree=True) == "fp32"
    assert choose_cpu_default("int8", faster=True, decisions_agree=False) == "fp32"


def test_compare_scores_counts_disagreements_and_tpr_change():
    points = {"a": OperatingPointSpec("a", 0.5), "b": OperatingPointSpec("b", 0.9)}
    reference = np.array([0.95, 0.6, 0.4, 0.1])
    other = np.array([0.85, 0.6, 0.55, 0.1])
    labels = np.array([1, 1, 0, 0])
    report = compare_scores(reference, other, points, labels=labels)
    assert report["max_abs_diff"] == pytest.approx(0.15) and report["mean_abs_diff"] == pytest.approx(0.25 / 4)
    assert report["decisions"]["a"]["disagreements"] == 1  # 0.4 -> 0.55 crosses 0.5 (an attack accepted)
    assert report["decisions"]["a"]["compared"]["apcer"] == 0.5 and report["decisions"]["a"]["tpr_change_points"] == 0
    assert report["decisions"]["b"]["disagreements"] == 1 and report["decisions"]["b"]["tpr_change_points"] == -50.0
    assert not report["all_agree"]
    assert compare_scores(reference, reference, points)["all_agree"]
    with pytest.raises(InputValidationError):
        compare_scores(reference, other[:3], points)
    with pytest.raises(InputValidationError):
        compare_scores(reference, np.array([np.nan, 0, 0, 0]), points)


def test_engine_specs():
    assert parse_engine_spec("onnxruntime") == ("onnxruntime", None)
    assert parse_engine_spec("tensorrt-fp16") == ("tensorrt", "fp16")
    for bad in ("tflite", "onnxruntime-int4"):
        with pytest.raises(EngineError):
            parse_engine_spec(bad)


def test_quantized_bundle_declares_its_graphs(tiny_bundle, sim_data, tmp_path):
    bundle, report = quantize_bundle(tiny_bundle.path, "int8", tmp_path / "b8", calibration_dir=sim_data, repeats=3,
                                     log=lambda *_: None, **CALIB)
    assert bundle.name == "tiny-test-model-int8" and bundle.version == "0.0.1+int8"
    assert set(bundle.manifest["files"]) == {"model.onnx", "model.fp32.onnx"}
    assert graph_precision(bundle.model_path) == "int8"
    info = precision_info(bundle.manifest)
    assert info["graph"] == "int8" and info["variants"] == {"fp32": "model.fp32.onnx"}
    assert info["defaults"]["onnxruntime"] == report["cpu_default"] and info["defaults"]["tensorrt"] == "int8"
    assert report["cpu_default"] == choose_cpu_default("int8", faster=report["faster"], decisions_agree=report["decisions_agree"])
    assert report["n_live"] + report["n_attack"] == len(load_crop_set(sim_data, ["test_list.txt"]))
    assert report["latency_cpu"]["fp32"]["median_ms"] > 0 and report["latency_ratio"] > 0
    # every operating point keeps its threshold and carries the re-check
    for name, point in bundle.manifest["operating_points"]["points"].items():
        assert point["threshold"] == tiny_bundle.manifest["operating_points"]["points"][name]["threshold"]
        assert point["recheck"]["precision"] == "int8" and "disagreements" in point["recheck"]
    # engines pick the declared graphs
    path, precision = resolve_model(bundle, "onnxruntime")
    assert precision == report["cpu_default"]
    assert resolve_model(bundle, "onnxruntime", "fp32")[0].name == "model.fp32.onnx"
    with create_engine("onnxruntime-int8", bundle) as engine:
        assert engine.model_path.name == "model.onnx" and engine.precision == "int8"
    with create_engine("onnxruntime", bundle.model_path, precision="fp32") as engine:
        assert engine.model_path.name == "model.fp32.onnx"
    # a session hands the engine the bundle's model.onnx: the declared CPU default is what runs
    default_file = {"int8": "model.onnx", "fp32": "model.fp32.onnx"}[report["cpu_default"]]
    with create_engine("onnxruntime", bundle.model_path) as engine:
        assert engine.model_path.name == default_file and engine.precision == report["cpu_default"]
    manifest = json.loads((bundle.path / "manifest.json").read_text())
    for cpu_default, expected_file in (("int8", "model.onnx"), ("fp32", "model.fp32.onnx")):
        manifest["precision"]["defaults"]["onnxruntime"] = cpu_default
        (bundle.path / "manifest.json").write_text(json.dumps(manifest))
        with create_engine("onnxruntime", bundle.model_path) as engine:
            assert engine.model_path.name == expected_file
    with pytest.raises(EngineError, match="quantize"):
        resolve_model(bundle, "onnxruntime", "fp16")
    with pytest.raises(InputValidationError, match="FP32 bundle"):
        quantize_bundle(bundle.path, "fp16", tmp_path / "again", calibration_dir=sim_data, log=lambda *_: None, **CALIB)


def test_variant_files_are_hash_checked(tiny_bundle, sim_data, tmp_path):
    bundle, _ = quantize_bundle(tiny_bundle.path, "fp16", tmp_path / "b16", calibration_dir=sim_data, repeats=2,
                                log=lambda *_: None, **CALIB)
    copy = tmp_path / "copy"
    shutil.copytree(bundle.path, copy)
    data = bytearray((copy / "model.fp32.onnx").read_bytes())
    data[-3] ^= 0xFF
    (copy / "model.fp32.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        ModelBundle.load(copy)
    manifest = json.loads((bundle.path / "manifest.json").read_text())
    manifest["precision"]["variants"]["int8"] = "model.int8.onnx"  # a graph with no hash
    with pytest.raises(ModelIntegrityError, match="no hash"):
        precision_info(manifest)


def test_cli_quantize_and_compare_engines(tiny_bundle, sim_data, tmp_path, capsys):
    out = tmp_path / "b8"
    assert main(["quantize", "--bundle", str(tiny_bundle.path), "--precision", "int8", "--out", str(out),
                 "--calibration", str(sim_data), "--repeats", "2", "--json", *CALIB_ARGS]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["name"] == "tiny-test-model-int8" and set(report["parity"]["decisions"]) == {"balanced", "strict"}
    # CPU only: the quantized bundle, and an FP32 bundle with precisions converted on the fly
    assert main(["compare-engines", "--bundle", str(out), "--engines", "onnxruntime-fp32,onnxruntime-int8",
                 "--data", str(sim_data), "--crops", "6", "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert compared["crops"] == 6 and compared["reference"] == "onnxruntime-fp32"
    entry = compared["comparisons"]["onnxruntime-int8"]
    # INT8 ranges from 4 attack crops clip the live crops' activations: differences are real, and reported
    assert 0 <= entry["mean_abs_diff"] <= entry["max_abs_diff"] < 0.5
    assert set(entry["decisions"]) == {"balanced", "strict"} and compared["all_agree"] == entry["all_agree"]
    assert compared["engines"]["onnxruntime-int8"]["precision"] == "int8"
    assert compared["engines"]["onnxruntime-int8"]["detail"] == "CPUExecutionProvider"
    assert main(["compare-engines", "--bundle", str(tiny_bundle.path), "--engines", "onnxruntime,onnxruntime-fp16",
                 "--data", str(sim_data), "--crops", "4"]) == 0
    text = capsys.readouterr().out
    assert "converted on the fly" in text and "onnxruntime-fp16" in text


def test_cli_errors_are_typed(tiny_bundle, sim_data, tmp_path, capsys):
    assert main(["compare-engines", "--bundle", str(tiny_bundle.path), "--engines", "onnxruntime"]) == 3
    assert "at least two" in capsys.readouterr().err
    assert main(["compare-engines", "--bundle", str(tiny_bundle.path), "--engines", "onnxruntime,tflite"]) == 3
    assert "unknown engine" in capsys.readouterr().err
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert main(["build-engine", "--bundle", str(tiny_bundle.path)]) == 3
        assert "TensorRT is not installed" in capsys.readouterr().err
        assert main(["compare-engines", "--bundle", str(tiny_bundle.path), "--engines", "onnxruntime,tensorrt",
                     "--data", str(sim_data), "--crops", "2"]) == 3
        assert "TensorRT is not installed" in capsys.readouterr().err
    assert main(["quantize", "--bundle", str(tiny_bundle.path), "--precision", "int8", "--out", str(tmp_path / "x"),
                 "--calibration", str(tmp_path / "nothing")]) == 3
    assert "list file not found" in capsys.readouterr().err


def test_new_commands_are_registered():
    from sdk.cli import build_parser

    names = set(build_parser()._subparsers._group_actions[0].choices)
    assert {"quantize", "build-engine", "compare-engines", "benchmark"} <= names


def test_benchmark_reports_the_graph_it_ran(tiny_bundle, sim_data, tmp_path, capsys):
    pytest.importorskip("pyrealsense2", reason="the benchmark replays a bag: needs the camera extra")
    bundle, _ = quantize_bundle(tiny_bundle.path, "int8", tmp_path / "b8", calibration_dir=sim_data, repeats=2,
                                log=lambda *_: None, **CALIB)
    assert main(["benchmark", "--model", str(bundle.path), "--precision", "fp32", "--frames", "3", "--warmup", "1",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    detail = report["meta"]["engine_detail"]
    assert report["meta"]["engine"] == "onnxruntime" and detail["precision"] == "fp32"
    assert detail["model"].endswith("model.fp32.onnx") and detail["providers"] == ["CPUExecutionProvider"]
    assert set(report["engine"]) == {"median_ms", "p95_ms"}  # the stage key is not shadowed


def test_histogram_calibration_methods(tiny_bundle, tmp_path):
    calibration = crops_to_inputs(_crops(5, seed=9))  # 10 views: not a multiple of the min-max batch
    path = quantize_int8(tiny_bundle.model_path, tmp_path / "p.onnx", calibration, method="percentile")
    assert graph_precision(path) == "int8"
    inputs = crops_to_inputs(_crops(3, seed=9))
    assert np.allclose(score_cpu(path, inputs), score_cpu(tiny_bundle.model_path, inputs), atol=5e-2)
    with pytest.raises(InputValidationError, match="calibration method"):
        quantize_int8(tiny_bundle.model_path, tmp_path / "q.onnx", calibration, method="kl")
