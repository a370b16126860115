"""Face-checkpoint mapping into MLFA networks, margin heads, pretraining on tiny datasets."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch (the train extra)")

from sdk.errors import InputValidationError  # noqa: E402
from training.models import create_model  # noqa: E402
from training.models.face import create_face_model  # noqa: E402
from training.pretrain import (  # noqa: E402
    MarginHead,
    afad_samples,
    identity_folder_samples,
    init_from_face_checkpoint,
    load_state_dict,
    pretrain,
    save_face_checkpoint,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def distinct_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A face state dict whose every tensor is distinct (so a wrong mapping cannot pass)."""
    g = torch.Generator().manual_seed(0)
    return {k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone())
            for k, v in model.state_dict().items()}


def test_caffe_mapping_puts_tensors_where_design_says():
    face = distinct_state(create_face_model("resnet34", width=0.25))
    model = create_model("mlfa_resnet34", width=0.25)
    report = init_from_face_checkpoint(model, face)
    sd = model.state_dict()
    for branch in ("rgb", "depth", "ir"):
        assert torch.equal(sd[f"branches.{branch}.conv1.weight"], face["conv1.weight"])
        assert torch.equal(sd[f"branches.{branch}.layer3.4.conv2.weight"], face["layer3.4.conv2.weight"])
        assert torch.equal(sd[f"branches.{branch}.layer1.1.running_var"], face["layer1.1.running_var"])
    assert torch.equal(sd["agg1.stage.0.weight"], face["layer2.0.weight"])
    assert torch.equal(sd["agg2.stage.6.conv1.weight"], face["layer3.6.conv1.weight"])
    assert torch.equal(sd["agg3.stage.5.bn2.bias"], face["layer4.5.bn2.bias"])
    # main stage 4: first conv tiled 3x along input channels, the rest copied
    w = face["layer4.0.weight"]
    assert sd["layer4.0.weight"].shape[1] == 3 * w.shape[1]
    assert torch.equal(sd["layer4.0.weight"], torch.cat([w, w, w], dim=1))
    assert torch.equal(sd["layer4.4.conv1.weight"], face["layer4.4.conv1.weight"])
    assert report.tiled == ["layer4.0.weight"]
    # random: agg 1x1 convs and the classifier
    assert {k.split(".")[0] for k in report.left_random} == {"agg1", "agg2", "agg3", "fc"}
    assert all(".reduce." in k or k.startswith("fc.") for k in report.left_random)
    assert not report.shape_mismatches and not report.missing_in_source
    assert "fc.weight" in report.unused_source or "bn_embedding.weight" in report.unused_source


def test_ir_mapping_uses_body_indices_and_tiles_stage4_inputs():
    face = distinct_state(create_face_model("ir50", width=0.25))
    model = create_model("mlfa_ir50", width=0.25)
    report = init_from_face_checkpoint(model, face)
    sd = model.state_dict()
    assert torch.equal(sd["branches.ir.input_layer.0.weight"], face["input_layer.0.weight"])
    assert torch.equal(sd["branches.rgb.layer1.2.res_layer.1.weight"], face["body.2.res_layer.1.weight"])
    assert torch.equal(sd["branches.depth.layer2.0.shortcut_layer.0.weight"], face["body.3.shortcut_layer.0.weight"])
    assert torch.equal(sd["branches.rgb.layer3.13.res_layer.3.weight"], face["body.20.res_layer.3.weight"])
    assert torch.equal(sd["agg1.stage.1.res_layer.1.weight"], face["body.4.res_layer.1.weight"])
    assert torch.equal(sd["agg2.stage.0.res_layer.1.weight"], face["body.7.res_layer.1.weight"])
    assert torch.equal(sd["agg3.stage.2.res_layer.4.weight"], face["body.23.res_layer.4.weight"])
    w = face["body.21.res_layer.1.weight"]
    assert torch.equal(sd["layer4.0.res_layer.1.weight"], torch.cat([w, w, w], dim=1))
    bn = face["body.21.res_layer.0.running_mean"]
    assert torch.equal(sd["layer4.0.res_layer.0.running_mean"], torch.cat([bn, bn, bn]))
    assert torch.equal(sd["layer4.0.res_layer.4.weight"], face["body.21.res_layer.4.weight"])
    assert len(report.tiled) == 6 and not report.shape_mismatches


def test_mapping_reports_width_mismatch_and_rejects_other_family(tmp_path):
    face = create_face_model("resnet34", width=0.25)
    model = create_model("mlfa_resnet34", width=0.5)
    report = init_from_face_checkpoint(model, face.state_dict())
    assert report.shape_mismatches and "shape mismatch" in report.summary()
    with pytest.raises(InputValidationError):
        init_from_face_checkpoint(create_model("mlfa_ir50", width=0.25), face.state_dict())
    with pytest.raises(InputValidationError):
        init_from_face_checkpoint(model, {"foo.weight": torch.zeros(1)})


def test_checkpoint_files_safetensors_and_weights_only(tmp_path):
    face = create_face_model("resnet34", width=0.25)
    st = save_face_checkpoint(face, tmp_path / "face.safetensors", meta={"arch": "resnet34"})
    pt = save_face_checkpoint(face, tmp_path / "face.pt")
    a, b = load_state_dict(st), load_state_dict(pt)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # a "module."-prefixed, wrapped state dict (DataParallel checkpoints) loads too
    torch.save({"state_dict": {f"module.{k}": v for k, v in face.state_dict().items()}}, tmp_path / "wrapped.pt")
    assert load_state_dict(tmp_path / "wrapped.pt").keys() == face.state_dict().keys()
    # a pickled object is refused, not executed
    torch.save({"weights": object()}, tmp_path / "pickle.pt")
    with pytest.raises(InputValidationError):
        load_state_dict(tmp_path / "pickle.pt")


def test_margin_heads():
    emb = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    target = torch.tensor([0, 1, 2, 0])
    for kind in ("arcface", "cosface"):
        head = MarginHead(8, 3, kind, s=10.0)
        logits = head(emb, target)
        plain = 10.0 * torch.nn.functional.linear(emb, torch.nn.functional.normalize(head.weight))
        rows = torch.arange(4)
        # the margin lowers the target logit only
        assert (logits[rows, target] < plain[rows, target]).all()
        mask = torch.ones_like(plain, dtype=torch.bool)
        mask[rows, target] = False
        assert torch.allclose(logits[mask], plain[mask], atol=1e-5)


def _write_faces(root: Path, layout: str, n: int = 4, per: int = 3) -> Path:
    import cv2

    rng = np.random.default_rng(0)
    for identity in range(n):
        folder = root / f"id{identity}" if layout == "identity" else root / str(20 + identity) / ("111", "112")[identity % 2]
        folder.mkdir(parents=True, exist_ok=True)
        colour = rng.integers(0, 256, 3)
        for k in range(per):
            image = np.clip(colour + rng.normal(0, 10, (100, 100, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{k}.jpg"), image)
    return root


def test_dataset_layouts(tmp_path):
    samples, classes = identity_folder_samples(_write_faces(tmp_path / "ids", "identity"))
    assert len(samples) == 12 and classes == ["id0", "id1", "id2", "id3"]
    samples, classes = afad_samples(_write_faces(tmp_path / "afad", "afad"))
    assert classes == ["male", "female"] and {label for _, label in samples} == {0, 1}
    with pytest.raises(InputValidationError):
        identity_folder_samples(tmp_path / "missing")


def test_pretrain_face_then_init_mlfa(tmp_path):
    data = _write_faces(tmp_path / "ids", "identity")
    result = pretrain("face", "resnet34", data, tmp_path / "face.safetensors", epochs=1, batch_size=6, width=0.125,
                      margin="cosface", progress=False, log=lambda s: None)
    assert result.checkpoint.is_file() and result.classes == 4
    model = create_model("mlfa_resnet34", width=0.125)
    report = init_from_face_checkpoint(model, result.checkpoint, slot="resnet34-face")
    assert len(report.loaded) > 100 and not report.shape_mismatches


def test_pretrain_gender_ir(tmp_path):
    data = _write_faces(tmp_path / "afad", "afad")
    result = pretrain("gender", "ir50", data, tmp_path / "g.pt", epochs=1, batch_size=6, width=0.125,
                      progress=False, log=lambda s: None)
    report = init_from_face_checkpoint(create_model("mlfa_ir50", width=0.125), result.checkpoint)
    assert len(report.tiled) == 6


def test_train_config_init_slot(tmp_path):
    from training.config import TrainConfig
    from training.train import build_model

    path = save_face_checkpoint(create_face_model("resnet34", width=0.125), tmp_path / "f.safetensors")
    config = TrainConfig().replace(**{"model.options.width": 0.125, "init.checkpoint": str(path),
                                      "init.slot": "resnet34-face"})
    model, report = build_model(config, log=lambda s: None)
    assert report is not None and report["tiled"] == ["layer4.0.weight"]


def test_sim_identity_dataset_and_cli(tmp_path):
    pytest.importorskip("sdk.sim", reason="the simulator (sdk.sim) is not in this tree")
    from sdk.cli import main

    assert main(["pretrain", "sim-data", "--out", str(tmp_path / "sim"), "--identities", "2", "--per-identity", "2"]) == 0
    samples, classes = identity_folder_samples(tmp_path / "sim")
    assert len(classes) == 2 and len(samples) == 4
    out = tmp_path / "face.safetensors"
    assert main(["pretrain", "run", "--task", "face", "--arch", "resnet34", "--data", str(tmp_path / "sim"),
                 "--out", str(out), "--epochs", "1", "--batch-size", "4", "--width", "0.125", "--quiet"]) == 0
    assert main(["pretrain", "map", "--checkpoint", str(out), "--model", "mlfa_resnet34", "--width", "0.125"]) == 0
