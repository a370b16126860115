"""MLFA networks: registry, stage shapes at 112x112, parameter counts, options."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="training needs torch (the train extra)")

from training.models import MLFANet, create_model, list_models, model_config, predict_live  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def pixels(n: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 112, 112, generator=torch.Generator().manual_seed(seed)) * 255


def test_registry_lists_the_three_models_with_configs():
    assert set(list_models()) >= {"mlfa_resnet34", "mlfa_resnet18", "mlfa_ir50"}
    assert model_config("mlfa_resnet34").blocks == (1, 2, 5, 3)
    assert model_config("mlfa_ir50").blocks == (3, 4, 14, 3)
    assert model_config("mlfa_resnet34").live_class == 1
    with pytest.raises(KeyError):
        create_model("mlfa_resnet1000")


def test_resnet34_parameter_count_is_the_references_61m():
    count = n_params(create_model("mlfa_resnet34"))
    assert abs(count - 61e6) / 61e6 < 0.10, count


def test_ir50_parameter_count_is_about_99m():
    count = n_params(create_model("mlfa_ir50"))
    assert abs(count - 99e6) / 99e6 < 0.10, count


def test_resnet18_is_smaller_than_resnet34():
    assert n_params(create_model("mlfa_resnet18")) < n_params(create_model("mlfa_resnet34"))


def test_resnet34_stage_shapes_at_112():
    model = create_model("mlfa_resnet34").eval()
    seen = {}

    def record(module, inputs, output):
        seen["conv1"] = tuple(output.shape[1:])

    model.branches["rgb"].relu.register_forward_hook(record)
    with torch.no_grad():
        out = model.features(pixels(), pixels(seed=1), pixels(seed=2))
    stage1, stage2, stage3 = (tuple(t.shape[1:]) for t in out["branches"]["rgb"])
    assert seen["conv1"] == (32, 110, 110)
    assert stage1 == (64, 54, 54)
    assert stage2 == (128, 26, 26)
    assert stage3 == (256, 12, 12)
    assert tuple(out["main"].shape[1:]) == (512, 5, 5)
    assert tuple(out["agg1"].shape[1:]) == (128, 26, 26)
    assert tuple(out["agg2"].shape[1:]) == (256, 12, 12)
    assert tuple(out["agg3"].shape[1:]) == (512, 5, 5)
    assert tuple(out["pooled"].shape) == (1, 512)
    assert model.layer4[0].in_channels == 768
    assert model.agg1.reduce.in_channels == 192 and model.agg1.reduce.out_channels == 64
    assert model.agg2.reduce.in_channels == 384 and model.agg3.reduce.in_channels == 768
    assert (model.fc.in_features, model.fc.out_features) == (512, 2)


def test_ir50_small_width_shapes():
    model = create_model("mlfa_ir50", width=0.25).eval()
    with torch.no_grad():
        out = model.features(pixels(), pixels(), pixels())
    assert [tuple(t.shape[2:]) for t in out["branches"]["ir"]] == [(56, 56), (28, 28), (14, 14)]
    assert tuple(out["main"].shape[2:]) == (7, 7) and tuple(out["agg3"].shape[2:]) == (7, 7)


def test_logits_and_predict_live():
    model = create_model("mlfa_resnet18", width=0.25).eval()
    x = [pixels(2, s) for s in range(3)]
    logits = model(*x)
    assert logits.shape == (2, 2)
    p = predict_live(model, *x)
    assert torch.allclose(p, torch.softmax(logits, 1)[:, 1], atol=1e-6)
    assert torch.allclose(model.predict_live(*x), p)
    assert ((p >= 0) & (p <= 1)).all()


def test_normalisation_is_inside_the_network():
    model = create_model("mlfa_resnet18", width=0.25)
    assert float(model.pixel_mean.mean()) == 127.5
    # Buffers are not in the state dict: checkpoints stay plain and mappable.
    assert not any("pixel_" in k for k in model.state_dict())


def test_se_fusion_option_adds_gates_and_changes_output():
    plain = create_model("mlfa_resnet18", width=0.25)
    se = create_model("mlfa_resnet18", width=0.25, se_fusion=True)
    assert plain.se is None and set(se.se.keys()) == {"rgb", "depth", "ir"}
    gate = se.se["rgb"]
    assert gate.fc1.out_features == gate.fc1.in_features // 16
    assert n_params(se) > n_params(plain)
    se.eval()
    with torch.no_grad():
        out = se.features(pixels(), pixels(), pixels())
    assert out["stage3_fused"][0].shape == out["branches"]["rgb"][2].shape


def test_aggregation_off_removes_agg_blocks():
    model = create_model("mlfa_resnet34", aggregation=False)
    assert model.agg1 is None and model.agg3 is None
    assert not any(k.startswith("agg") for k in model.state_dict())
    assert n_params(model) < n_params(create_model("mlfa_resnet34")) - 20e6
    small = create_model("mlfa_resnet18", width=0.25, aggregation=False).eval()
    assert small(pixels(), pixels(), pixels()).shape == (1, 2)


def test_single_modality_feeds_all_branches():
    model = create_model("mlfa_resnet18", width=0.25, modality="depth").eval()
    depth = pixels(1, 5)
    with torch.no_grad():
        a = model(pixels(1, 1), pixels(1, 2), depth)
        b = model(pixels(1, 3), pixels(1, 4), depth)  # rgb and ir ignored
        c = model(pixels(1, 1), pixels(1, 2), pixels(1, 6))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    with pytest.raises(ValueError):
        create_model("mlfa_resnet18", modality="thermal")


def test_width_scales_channels():
    model = create_model("mlfa_resnet34", width=0.25)
    assert model.branches["rgb"].conv1.out_channels == 8
    assert model.fc.in_features == 128
    assert n_params(model) < 61e6 / 10
    assert isinstance(model, MLFANet) and model.options["width"] == 0.25


def test_every_option_exports_to_onnx_with_the_export_module(tmp_path):
    """The networks go through training.export (the lead's exporter) and match ONNX Runtime."""
    pytest.importorskip("onnx", reason="onnx is needed for the export check")
    pytest.importorskip("onnxruntime", reason="onnxruntime is needed for the export check")
    export = pytest.importorskip("training.export", reason="training/export.py is not in this tree")
    import warnings

    model = create_model("mlfa_resnet18", width=0.125, se_fusion=True).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = export.export_onnx(model, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").is_file()
    assert report["max_abs_diff_vs_torch"] <= 1e-4


def test_stride_two_stem_halves_every_feature_map_with_the_same_weights():
    from training.compare import flops_per_crop

    dense = create_model("mlfa_resnet18", width=0.125).eval()
    strided = create_model("mlfa_resnet18", width=0.125, stem_stride=2).eval()
    assert strided.options["stem_stride"] == 2 and dense.options["stem_stride"] == 1
    # the same parameter shapes, so a stride-1 model's weights load into the stride-2 student
    assert {k: v.shape for k, v in dense.state_dict().items()} == {k: v.shape for k, v in strided.state_dict().items()}
    strided.load_state_dict(dense.state_dict())
    x = pixels()
    dense_maps = dense.features(x, x, x)["branches"]["rgb"]
    strided_maps = strided.features(x, x, x)["branches"]["rgb"]
    assert [tuple(m.shape[-2:]) for m in dense_maps] == [(54, 54), (26, 26), (12, 12)]
    assert [tuple(m.shape[-2:]) for m in strided_maps] == [(26, 26), (12, 12), (5, 5)]
    assert strided(x, x, x).shape == (1, 2)
    assert flops_per_crop(strided) < flops_per_crop(dense) / 4
    ir = create_model("mlfa_ir50", width=0.0625, stem_stride=2).eval()
    assert ir.features(x, x, x)["branches"]["rgb"][0].shape[-1] == 28
    with pytest.raises(ValueError, match="stem_stride"):
        create_model("mlfa_resnet18", width=0.125, stem_stride=3)
