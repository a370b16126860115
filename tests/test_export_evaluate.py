"""Export a trained network to a bundle and evaluate models straight from a list file."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="export and model scoring need the train extra (torch)")

from sdk.cli import main  # noqa: E402
from sdk.engine import ModelBundle, create_engine  # noqa: E402
from training.data.casia import load_model_crops, read_list  # noqa: E402
from training.data.fixtures import write_casia_tree  # noqa: E402
from training.models import create_model  # noqa: E402
from training.train import model_payload  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny (untrained but real) MLFA network saved as train.py saves it, and a CASIA tree."""
    root = tmp_path_factory.mktemp("casia")
    _, val_list = write_casia_tree(root, live_subjects=3, attack_subjects=2, frames=1, val_samples=12)
    torch.manual_seed(0)
    model = create_model("mlfa_resnet18", width=0.125).eval()
    path = root / "model.pt"
    torch.save(model_payload(model), path)
    return root, val_list, path, model


def test_export_bundle_matches_torch_and_engine(trained, tmp_path):
    from training.ship import package_model

    root, val_list, model_path, model = trained
    bundle, report = package_model(model_path, tmp_path / "bundle", data_root=root, calibration_list=val_list.name,
                                   test_lists=[val_list.name], name="t", version="0.0.1", log=lambda *_: None)
    loaded = ModelBundle.load(bundle.path)
    export = loaded.manifest["provenance"]["export"]
    assert export["max_abs_diff_vs_torch"] <= 1e-4 and export["checked_on"] == "real crops" and export["opset"] >= 17
    assert set(loaded.manifest["operating_points"]["points"]) == {"balanced", "apcer_1e-2", "apcer_1e-3"}
    assert loaded.default_operating_point == "balanced"
    assert "1e-4" in loaded.manifest["metrics"]["test"]["tpr_at_fpr"]
    # the device engine on stored crops gives what torch gives on the same crops
    samples = read_list(root / val_list.name)[:4]
    crops = [load_model_crops(root, s) for s in samples]
    engine_scores = create_engine("onnxruntime", loaded.model_path).score_crops(crops, tta=False)
    from sdk.preprocess import crops_to_inputs

    inputs = crops_to_inputs(crops)
    with torch.no_grad():
        logits = model(*(torch.from_numpy(inputs[m]) for m in ("rgb", "ir", "depth")))
    assert np.allclose(engine_scores, torch.softmax(logits, 1)[:, 1].numpy(), atol=1e-4)


def test_evaluate_straight_from_models(trained, tmp_path, capsys):
    root, val_list, model_path, _ = trained
    saved = tmp_path / "scores.csv"
    code = main(["evaluate", "--model", str(model_path), "--labels", str(root / val_list.name), "--json",
                 "--save-scores", str(saved)])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n_live"] + data["n_attack"] == len(read_list(root / val_list.name))
    assert set(data["tpr_at_fpr"]) == {"1e-2", "1e-3", "1e-4"}
    # the saved scores evaluate to the same figures through the score-file path
    code = main(["evaluate", "--scores", str(saved), "--labels", str(root / val_list.name), "--json"])
    assert code == 0
    again = json.loads(capsys.readouterr().out)
    assert again["eer"] == pytest.approx(data["eer"]) and again["apcer"] == pytest.approx(data["apcer"])


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_export_bundle_refuses_a_threshold_of_0_or_1_and_writes_nothing(trained, tmp_path, threshold):
    from sdk.errors import ModelIntegrityError
    from training.export import export_bundle

    model = trained[3]
    with pytest.raises(ModelIntegrityError, match="threshold"):
        export_bundle(model, tmp_path / "out" / "bundle", name="t", version="0.0.1",
                      operating_points={"balanced": {"threshold": threshold}}, default_operating_point="balanced")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
