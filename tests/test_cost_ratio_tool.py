"""tools/cost_ratio.py: the student-vs-ensemble cost figures of issue 11, in one run."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the cost tool measures torch networks")
pytest.importorskip("onnxruntime", reason="the cost tool measures ONNX Runtime latency too")

from sdk.errors import InputValidationError  # noqa: E402
from tests.conftest import load_tool  # noqa: E402
from training.models import create_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tool():
    return load_tool("cost_ratio")


def test_ratios_follow_the_groups_it_measured(tool):
    small = create_model("mlfa_resnet18", width=0.0625, stem_stride=2).eval()
    members = [create_model("mlfa_resnet18", width=0.0625).eval() for _ in range(3)]
    report = tool.cost_report({"student": [small], "ensemble": members}, "ensemble", threads=[1], rounds=2)
    static = report["static"]
    assert static["ensemble"]["networks"] == 3
    assert static["ensemble"]["parameters"] == 3 * static["student"]["parameters"]
    ratios = report["ratios"]["student"]
    assert ratios["flops"] == pytest.approx(static["ensemble"]["flops_per_crop"] / static["student"]["flops_per_crop"])
    assert ratios["flops"] > 3 * 4  # three networks, each with 4x the pixels after the stem
    timing = report["latency_ms"]["1"]
    assert ratios["onnxruntime_latency_1_threads"] == pytest.approx(
        timing["ensemble"]["onnxruntime"]["median_ms"] / timing["student"]["onnxruntime"]["median_ms"])
    assert all(t[e]["median_ms"] > 0 for t in timing.values() for e in ("torch", "onnxruntime"))
    text = tool.render(report)
    assert "ensemble / student" in text
    short = [k for k, v in ratios.items() if k != "parameters" and v < tool.GOAL_RATIO]
    assert ("meets >= 100x on every count" in text) == (not short)


def test_bad_requests_are_refused(tool):
    nets = {"a": [create_model("mlfa_resnet18", width=0.0625).eval()]}
    with pytest.raises(InputValidationError, match="reference"):
        tool.cost_report(nets, "ensemble", threads=[1], rounds=1)
    with pytest.raises(InputValidationError, match="rounds"):
        tool.cost_report(nets, "a", threads=[0], rounds=1)
    with pytest.raises(InputValidationError, match="NAME=PATH"):
        tool.main(["--ensemble", "x", "--student", "no_such.pt"])


def test_the_shipped_bundles_cost_from_its_architectures_alone(tool, tmp_path):
    """Without any checkpoint: the shipped network and its 24 members, rebuilt from the manifest,
    have the parameters and FLOPs measured on the trained weights (docs/eval_runs)."""
    import json
    import shutil
    from pathlib import Path

    from training.compare import flops_per_crop, parameters

    bundle_architectures = tool.bundle_architectures

    repo = Path(__file__).resolve().parent.parent
    bundle = repo / "sdk" / "bundles" / "mlfa_student_sim"
    recorded = json.loads((repo / "docs" / "eval_runs" / "cost_ratio_S_vs_2.34.0.json").read_text())["static"]
    label, network, members = bundle_architectures(bundle)
    assert label.startswith("mlfa_student_sim ") and len(members) == 24
    assert (parameters(network), flops_per_crop(network)) == (recorded["S"]["parameters"], recorded["S"]["flops_per_crop"])
    assert sum(parameters(m) for m in members) == recorded["ensemble"]["parameters"]
    assert sum(flops_per_crop(m) for m in members) == recorded["ensemble"]["flops_per_crop"]

    # A manifest whose recorded network is not the ONNX graph's is refused (here: no stride-2 stem).
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["provenance"]["fine_tune"]["config"]["model"]["options"].pop("stem_stride")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputValidationError, match="is not the network"):
        bundle_architectures(copy)

    # A provenance that records no training config names the manifest it read.
    for key in ("fine_tune", "distillation"):
        manifest["provenance"][key].pop("config", None)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputValidationError, match=r"manifest\.json: .*no training config"):
        bundle_architectures(copy)
