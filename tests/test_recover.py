"""A trainable network recovered from a folded ONNX graph (training/recover.py, tools/recover_checkpoint.py)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="recovery builds a torch network (the train extra)")
pytest.importorskip("onnxruntime", reason="the recovered network is checked against ONNX Runtime")

from sdk.errors import InputValidationError, ModelError  # noqa: E402
from training.models.registry import create_model  # noqa: E402

WIDTH = 0.0625


def _trained_looking(seed: int, **options) -> torch.nn.Module:
    """A small MLFA whose BatchNorms hold non-trivial statistics and affine parameters, as a
    trained network's do (the fold then really changes the convolutions)."""
    torch.manual_seed(seed)
    network = create_model("mlfa_resnet18", width=WIDTH, **options)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.3, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
            elif isinstance(module, torch.nn.PReLU):
                module.weight.uniform_(0.05, 0.4)
        # Logits of order 1, so P(live) is not saturated at 0 or 1 and every check can see a change.
        network.eval()
        logits = network(*(torch.from_numpy(a) for a in _inputs(4, seed=9).values()))
        spread = float((logits[:, 1] - logits[:, 0]).abs().max())
        network.fc.weight.div_(spread)
        network.fc.bias.zero_()
    return network


def _inputs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {m: rng.uniform(0, 255, (n, 3, 112, 112)).astype(np.float32) for m in ("rgb", "ir", "depth")}


@pytest.fixture(scope="module")
def folded(tmp_path_factory):
    from training.export import export_onnx

    torch.set_num_threads(1)
    original = _trained_looking(0, stem_stride=2)
    path = tmp_path_factory.mktemp("recover") / "model.onnx"
    export_onnx(original, path)
    return original, path


def _graph_p_live(graph, inputs):
    import onnxruntime as ort

    return ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"]).run(["p_live"], inputs)[0]


def _p_live(network, inputs):
    from training.export import LiveProbability

    with torch.no_grad():
        return LiveProbability(network)(*(torch.from_numpy(inputs[m]) for m in ("rgb", "ir", "depth"))).numpy()


def test_the_recovered_network_computes_the_graph_and_its_batchnorms_hold_the_crops_statistics(folded):
    from training.recover import recover_network

    original, graph = folded
    import onnx

    assert not any(n.op_type == "BatchNormalization" for n in onnx.load(str(graph)).graph.node)  # really folded
    calibration = _inputs(12)
    fresh = create_model("mlfa_resnet18", width=WIDTH, stem_stride=2)
    report = recover_network(graph, fresh, calibration)
    assert report["n_batchnorms_refolded"] == sum(isinstance(m, torch.nn.BatchNorm2d) for m in fresh.modules())
    assert report["max_abs_diff_eval_vs_graph"] <= 1e-5
    unseen = _inputs(6, seed=1)
    assert np.abs(_p_live(fresh.eval(), unseen) - _graph_p_live(graph, unseen)).max() < 1e-5
    # against the torch network it was exported from: within the export's own tolerance (the fold rounds)
    assert np.abs(_p_live(fresh, unseen) - _p_live(original, unseen)).max() < 1e-4

    # Each BatchNorm's running statistics are those of its convolution's output on the crops, so
    # in train mode (batch statistics) on that very batch the network still computes the graph:
    # a fine-tune starts where the shipped network is.
    fresh.train()
    train_mode = _p_live(fresh, calibration)
    fresh.eval()
    assert np.abs(train_mode - _p_live(fresh, calibration)).max() < 1e-3
    assert report["max_abs_diff_train_mode_first_batch"] < 1e-3


def test_another_architecture_is_refused(folded):
    from training.recover import recover_network

    _, graph = folded
    with pytest.raises(ModelError, match="convolution 0"):  # the graph's stem has stride 2
        recover_network(graph, create_model("mlfa_resnet18", width=WIDTH, stem_stride=1), _inputs(4))
    with pytest.raises(ModelError, match="not this network|convolution"):
        recover_network(graph, create_model("mlfa_resnet18", width=WIDTH * 2, stem_stride=2), _inputs(4))
    with pytest.raises(ModelError, match="not this network"):
        recover_network(graph, create_model("mlfa_resnet18", width=WIDTH, stem_stride=2, aggregation=False), _inputs(4))
    with pytest.raises(InputValidationError, match="float32"):
        recover_network(graph, create_model("mlfa_resnet18", width=WIDTH, stem_stride=2),
                        {m: a.astype(np.float64) for m, a in _inputs(4).items()})
    with pytest.raises(InputValidationError, match="at least 2"):
        recover_network(graph, create_model("mlfa_resnet18", width=WIDTH, stem_stride=2), _inputs(1))


def test_a_graph_that_disagrees_with_the_network_is_refused(folded, tmp_path):
    """The mapping is trusted only through the final comparison: a graph whose normalisation
    constants differ from the architecture's (same parameter shapes) is refused."""
    import onnx
    from onnx import numpy_helper

    from training.recover import recover_network

    _, graph = folded
    model = onnx.load(str(graph))
    for node in model.graph.node:
        if node.op_type == "Constant":
            value = numpy_helper.to_array(node.attribute[0].t)
            if value.size == 3:  # the pixel mean or std
                node.attribute[0].t.CopyFrom(numpy_helper.from_array((value * 1.5).astype(value.dtype)))
                break
    changed = tmp_path / "changed.onnx"
    onnx.save(model, str(changed))
    with pytest.raises(ModelError, match="disagree"):
        recover_network(changed, create_model("mlfa_resnet18", width=WIDTH, stem_stride=2), _inputs(4))


def test_a_batchnorm_before_a_convolution_is_refused(tmp_path):
    """The IR backbone normalises before its convolutions; the exporter keeps such a BatchNorm as
    its own node, which the recovery does not map."""
    from training.export import export_onnx
    from training.recover import recover_network

    torch.set_num_threads(1)
    export_onnx(create_model("mlfa_ir50", width=WIDTH).eval(), tmp_path / "ir.onnx")
    with pytest.raises(ModelError, match="BatchNorm"):
        recover_network(tmp_path / "ir.onnx", create_model("mlfa_ir50", width=WIDTH), _inputs(2))


# --- the tool: a bundle (or a committed one) -> model.pt of training.train -------------------------------------


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("recover_checkpoint", Path(__file__).parents[1] / "tools" / "recover_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tool_writes_a_model_file_that_warm_starts_and_teaches(tool, tmp_path, capsys):
    from training.config import load_config
    from training.data.fixtures import write_casia_tree
    from training.ensemble.teacher import ModelTeacher
    from training.export import export_bundle
    from training.train import load_trained_model, read_model_file

    root = tmp_path / "data"
    train_list, _ = write_casia_tree(root, live_subjects=3, attack_subjects=2, frames=2, val_samples=2)
    config = load_config("cpu_tiny").replace(**{"model.options.width": WIDTH, "model.options.stem_stride": 2})
    original = _trained_looking(3, stem_stride=2)
    bundle = export_bundle(original, tmp_path / "bundle", name="tiny", version="1.2.3",
                           operating_points={"default": {"threshold": 0.5}}, default_operating_point="default",
                           provenance={"fine_tune": {"config": config.to_dict()}}).path
    out = tmp_path / "recovered" / "model.pt"
    argv = ["--bundle", str(bundle), "--data", str(root), "--list", str(root / train_list), "--out", str(out)]
    assert tool.main(argv) == 0
    assert "tiny 1.2.3 recovered" in capsys.readouterr().out
    meta, _ = read_model_file(out)
    assert meta["recovered_from"]["version"] == "1.2.3" and meta["recovered_from"]["training_record"] == "fine_tune"
    assert meta["config"]["model"]["options"]["stem_stride"] == 2
    report = json.loads((out.parent / "model_recovery.json").read_text())
    assert report["max_abs_diff_eval_vs_graph"] <= 1e-5 and report["n_calibration_crops"] >= 2
    unseen = _inputs(3, seed=5)
    assert np.abs(_p_live(load_trained_model(out), unseen) - _graph_p_live(bundle / "model.onnx", unseen)).max() < 1e-5
    assert ModelTeacher.load(out).config.model.options["stem_stride"] == 2  # it can teach

    # Never overwrites; a tampered bundle, a bundle without a training record and a bad count are refused.
    assert tool.main(argv) == 3
    assert "never overwrites" in capsys.readouterr().err
    bare = export_bundle(original, tmp_path / "bare", name="tiny", version="1.2.4",
                         operating_points={"default": {"threshold": 0.5}}, default_operating_point="default").path
    assert tool.main([*argv[:1], str(bare), *argv[2:-1], str(tmp_path / "b.pt")]) == 3
    assert "no training config" in capsys.readouterr().err
    with open(bundle / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    assert tool.main([*argv[:-1], str(tmp_path / "c.pt")]) == 3
    assert tool.main([*argv[:-1], str(tmp_path / "d.pt"), "--max-crops", "1"]) == 3
    assert not any((tmp_path / name).exists() for name in ("b.pt", "c.pt", "d.pt"))


def test_the_tool_takes_a_committed_bundle_from_git(tool, tmp_path, capsys):
    """--git-rev: the shipped bundle as committed at HEAD comes out of git archive verified, and
    the recovered file says which revision it came from."""
    from sdk.engine.bundle import ModelBundle
    from training.data.fixtures import write_casia_tree
    from training.train import read_model_file

    shipped_dir = tool.REPO / "sdk" / "bundles" / "mlfa_student_sim"
    folder = tool.extract_bundle_at("HEAD", shipped_dir, tmp_path / "archive")
    shipped = ModelBundle.load(shipped_dir)
    assert ModelBundle.load(folder).model_sha256 == shipped.model_sha256

    root = tmp_path / "data"
    train_list, _ = write_casia_tree(root, live_subjects=2, attack_subjects=1, frames=2, val_samples=2)
    out = tmp_path / "shipped" / "model.pt"
    assert tool.main(["--bundle", str(shipped_dir), "--git-rev", "HEAD", "--data", str(root),
                      "--list", str(root / train_list), "--out", str(out)]) == 0
    recovered_from = read_model_file(out)[0]["recovered_from"]
    assert (recovered_from["git_rev"], recovered_from["version"]) == ("HEAD", shipped.version)
    assert recovered_from["model_sha256"] == shipped.model_sha256 and "config" not in recovered_from
    with pytest.raises(InputValidationError, match="inside the repository"):
        tool.extract_bundle_at("HEAD", tmp_path, tmp_path / "x")
    with pytest.raises(InputValidationError, match="git archive"):
        tool.extract_bundle_at("no-such-rev", tool.REPO / "sdk" / "bundles" / "mlfa_student_sim", tmp_path / "y")
