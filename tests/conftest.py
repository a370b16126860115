"""Shared test fixtures: small frames, a tiny ONNX liveness model and a bundle around it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from sdk.types import DeviceInfo, FrameSet, Intrinsics, StreamIntrinsics

# --- hardware-in-the-loop entry point: `pytest tests --hil-suite DIR` (sdk/hil/pytest_plugin.py) --------
# Give pytest a test path (or write --hil-suite=DIR): in a bare `pytest --hil-suite DIR` pytest takes
# DIR for the test path while it looks for its ini file and conftests, before it knows the option.
from sdk.hil.pytest_plugin import hil_bundle, pytest_addoption, pytest_generate_tests  # noqa: F401

REPO = Path(__file__).resolve().parent.parent


def load_tool(name: str):
    """Import tools/<name>.py as a module (the tools are scripts, not a package)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def shared_dir() -> Path:
    """The project's shared/ folder (beside the repo in sessions and CI; SR300_SHARED overrides)."""
    return Path(os.environ.get("SR300_SHARED", REPO.parent / "shared"))


def make_frameset(
    color: np.ndarray | None = None,
    ir: np.ndarray | None = None,
    depth: np.ndarray | None = None,
    *,
    depth_scale: float = 0.000125,
    frame_number: int = 1,
    height: int = 480,
    width: int = 640,
) -> FrameSet:
    intr = Intrinsics(width, height, 475.0, 475.0, width / 2.0, height / 2.0)
    return FrameSet(
        color=np.zeros((height, width, 3), np.uint8) if color is None else color,
        ir=np.zeros((height, width), np.uint8) if ir is None else ir,
        depth=np.zeros((height, width), np.uint16) if depth is None else depth,
        depth_scale=depth_scale,
        intrinsics=StreamIntrinsics(intr, intr, intr),
        timestamp_ms=33.3 * frame_number,
        frame_number=frame_number,
        device=DeviceInfo("Intel RealSense SR300", "TEST0001", origin="simulator"),
    )


def tiny_onnx_model(path: Path, weights: tuple[float, float, float] = (0.02, 0.0, -0.02), bias: float = 0.0) -> Path:
    """p_live = sigmoid(w_rgb*mean(rgb) + w_ir*mean(ir) + w_depth*mean(depth) + b): a real ONNX graph."""
    import onnx
    from onnx import TensorProto, helper

    nodes, inputs, terms = [], [], []
    for name, weight in zip(("rgb", "ir", "depth"), weights):
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", 3, 112, 112]))
        nodes.append(helper.make_node("ReduceMean", [name, f"{name}_axes"], [f"{name}_mean"], keepdims=0))
        nodes.append(helper.make_node("Mul", [f"{name}_mean", f"{name}_w"], [f"{name}_term"]))
        terms.append(f"{name}_term")
    initializers = [helper.make_tensor(f"{n}_axes", TensorProto.INT64, [3], [1, 2, 3]) for n in ("rgb", "ir", "depth")]
    initializers += [helper.make_tensor(f"{n}_w", TensorProto.FLOAT, [], [w]) for n, w in zip(("rgb", "ir", "depth"), weights)]
    initializers.append(helper.make_tensor("bias", TensorProto.FLOAT, [], [bias]))
    nodes.append(helper.make_node("Sum", terms + ["bias"], ["logit"]))
    nodes.append(helper.make_node("Sigmoid", ["logit"], ["p_live"]))
    graph = helper.make_graph(nodes, "tiny_liveness", inputs, [helper.make_tensor_value_info("p_live", TensorProto.FLOAT, ["batch"])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture
def one_torch_thread():
    """One torch thread for a test: on a shared 2-core box two OpenMP threads run several times slower.

    Opt in per module (pytestmark = pytest.mark.usefixtures("one_torch_thread")) so that tests
    that never touch torch do not import it.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_bundle(tmp_path: Path):
    from sdk.engine.bundle import write_bundle

    model = tiny_onnx_model(tmp_path / "tiny.onnx")
    return write_bundle(
        tmp_path / "bundle",
        model,
        name="tiny-test-model",
        version="0.0.1",
        operating_points={"balanced": {"threshold": 0.5, "target_apcer": 0.01}, "strict": {"threshold": 0.9}},
        default_operating_point="balanced",
        provenance={"made_by": "tests/conftest.py"},
    )
