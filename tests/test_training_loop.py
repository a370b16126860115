"""Training loop: optimiser coverage, one short run, checkpoints, resume equivalence, scores, CLI."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch (the train extra)")

from sdk.errors import InputValidationError  # noqa: E402
from training.config import TrainConfig, config_from_dict, list_presets, load_config  # noqa: E402
from training.data.fixtures import write_casia_tree  # noqa: E402
from training.models import create_model  # noqa: E402
from training.train import (  # noqa: E402
    CHECKPOINT_NAME,
    METRICS_NAME,
    MODEL_NAME,
    epoch_order,
    load_trained_model,
    make_optimizer,
    predict,
    predict_views,
    read_scores,
    train,
    val_metrics,
    write_scores,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("casia_train")
    # 4 live subjects x 2 frames + 2 attack subjects x 3 types x 2 frames = 20 training samples
    write_casia_tree(root, live_subjects=4, attack_subjects=2, frames=2, val_samples=6)
    return root


def tiny_config(root: Path, **overrides) -> TrainConfig:
    config = load_config("cpu_tiny").replace(**{
        "data.root": str(root), "optim.batch_size": 8, "optim.epochs": 2, "runtime.progress": False,
        "model.options.width": 0.125, "seed": 3,
        # one thread: on a shared 2-core box two OpenMP threads run several times slower
        "runtime.threads": 1,
    })
    return config.replace(**overrides) if overrides else config


def test_presets_load():
    names = list_presets()
    assert {"cpu_tiny", "paper_resnet34", "paper_ir50"} <= set(names)
    paper = load_config("paper_resnet34")
    assert (paper.optim.epochs, paper.optim.batch_size, paper.model.name) == (30, 128, "mlfa_resnet34")
    for name in names:
        load_config(name)


def test_config_rejects_unknown_keys():
    with pytest.raises(InputValidationError):
        config_from_dict({"optim": {"epoch": 3}})
    with pytest.raises(InputValidationError):
        config_from_dict({"model": {"name": "nope"}})
    with pytest.raises(InputValidationError):
        TrainConfig().replace(**{"optim.nonsense": 1})


def test_optimizer_holds_every_parameter_including_the_head():
    model = create_model("mlfa_resnet18", width=0.25, se_fusion=True)
    optimizer = make_optimizer(model, TrainConfig())
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in model.parameters()}
    assert id(model.fc.weight) in in_optimizer and id(model.fc.bias) in in_optimizer


def test_epoch_order_depends_on_seed_and_epoch_only():
    assert epoch_order(20, 1, 0) == epoch_order(20, 1, 0)
    assert epoch_order(20, 1, 0) != epoch_order(20, 1, 1)
    assert sorted(epoch_order(20, 1, 3)) == list(range(20))


def test_one_epoch_run_writes_checkpoint_metrics_and_model(tree, tmp_path):
    config = tiny_config(tree, **{"optim.epochs": 1})
    result = train(config, tmp_path / "run", log=lambda s: None)
    out = tmp_path / "run"
    assert result.epochs_done == 1
    assert (out / CHECKPOINT_NAME).is_file() and (out / MODEL_NAME).is_file()
    rows = list(csv.DictReader((out / METRICS_NAME).open()))
    assert len(rows) == 1 and float(rows[0]["train_loss"]) > 0 and float(rows[0]["samples_per_s"]) > 0
    assert "val_acer" in rows[0] and "val_tpr@0.0001" in rows[0]
    state = torch.load(out / CHECKPOINT_NAME, weights_only=True)
    assert state["epoch"] == 1 and {"model", "optimizer", "scheduler", "rng"} <= set(state)
    assert json.loads((out / "config.json").read_text())["model"]["name"] == "mlfa_resnet18"
    # no temporary files left behind by the atomic writes
    assert not list(out.glob(".*tmp*"))
    # an existing run is not silently overwritten
    with pytest.raises(InputValidationError):
        train(config, out, log=lambda s: None)


def test_training_reduces_loss(tree, tmp_path):
    config = tiny_config(tree, **{"optim.epochs": 4, "data.val_list": None})
    result = train(config, tmp_path / "run", log=lambda s: None)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0]


def test_resume_after_kill_equals_uninterrupted_run(tree, tmp_path):
    config = tiny_config(tree)
    full = train(config, tmp_path / "full", log=lambda s: None)
    first = train(config, tmp_path / "killed", stop_after_epochs=1, log=lambda s: None)
    assert first.epochs_done == 1 and not (tmp_path / "killed" / MODEL_NAME).exists()
    resumed = train(config, tmp_path / "killed", resume=True, log=lambda s: None)
    assert resumed.epochs_done == 2
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [r["train_loss"] for r in full.history] == pytest.approx([r["train_loss"] for r in resumed.history])
    rows = list(csv.DictReader((tmp_path / "killed" / METRICS_NAME).open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]


def test_resume_refuses_another_config(tree, tmp_path):
    config = tiny_config(tree)
    train(config, tmp_path / "run", stop_after_epochs=1, log=lambda s: None)
    with pytest.raises(InputValidationError):
        train(config.replace(**{"optim.lr": 0.5}), tmp_path / "run", resume=True, log=lambda s: None)


def test_predict_tta_and_score_file(tree, tmp_path):
    model = create_model("mlfa_resnet18", width=0.125).eval()
    views, labels = predict_views(model, tree / "val_list.txt", root=tree, batch_size=4)
    assert views.shape == (6, 2) and list(labels) == [1, 0, 1, 0, 1, 0]
    scores = predict(model, tree / "val_list.txt", root=tree, batch_size=4)
    assert np.allclose(scores, views.mean(axis=1))
    # the flipped view really is the flipped crop
    assert not np.allclose(views[:, 0], views[:, 1])
    path = write_scores(tmp_path / "scores.csv", views)
    assert path.read_text().splitlines()[0] == "crop0,crop0_hflip"
    assert np.allclose(read_scores(path), views)


def test_val_metrics_on_separable_scores():
    labels = np.array([1, 1, 0, 0, 0])
    metrics = val_metrics(np.array([0.9, 0.8, 0.1, 0.2, 0.6]), labels)
    assert metrics["val_acer"] == pytest.approx((1 / 3 + 0) / 2)
    assert metrics["val_tpr@0.01"] == 1.0


def test_load_trained_model_roundtrip(tree, tmp_path):
    config = tiny_config(tree, **{"optim.epochs": 1, "data.val_list": None})
    result = train(config, tmp_path / "run", log=lambda s: None)
    model = load_trained_model(tmp_path / "run" / MODEL_NAME)
    x = [torch.rand(1, 3, 112, 112) * 255 for _ in range(3)]
    result.model.eval()
    assert torch.allclose(model(*x), result.model(*x), atol=1e-5)


def test_cli_train_from_preset(tree, tmp_path):
    from sdk.cli import main

    out = tmp_path / "cli"
    code = main([
        "train", "--config", "cpu_tiny", "--root", str(tree), "--out", str(out), "--quiet",
        "--set", "optim.epochs=1", "--set", "optim.batch_size=8", "--set", "model.options.width=0.125",
        "--set", "runtime.threads=1", "--score-list", str(tree / "val_list.txt"),
    ])
    assert code == 0
    assert (out / MODEL_NAME).is_file()
    assert read_scores(out / "scores_val_list.csv").shape == (6, 2)
    # resume of a finished run is a no-op that still succeeds
    assert main(["train", "--config", "cpu_tiny", "--root", str(tree), "--out", str(out), "--quiet", "--resume",
                 "--set", "optim.epochs=1", "--set", "optim.batch_size=8", "--set", "model.options.width=0.125",
                 "--set", "runtime.threads=1"]) == 0


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches(tree, tmp_path):
    """A real SIGKILL of the CLI process during epoch 2 (or later), then --resume."""
    import os
    import signal
    import subprocess
    import sys
    import time

    config = tiny_config(tree, **{"optim.epochs": 3})
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config.to_dict()))
    reference = train(config, tmp_path / "reference", log=lambda s: None)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "sdk.cli", "train", "--config", str(config_path), "--out", str(out)]
    repo = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if (out / CHECKPOINT_NAME).exists():
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait(timeout=60)
    killed_at = torch.load(out / CHECKPOINT_NAME, weights_only=True)["epoch"]
    print(f"returncode {process.returncode}, checkpoint epoch {killed_at}")
    state = torch.load(out / CHECKPOINT_NAME, weights_only=True)  # never a torn file
    assert state["epoch"] >= 1
    assert subprocess.run(cmd + ["--resume"], cwd=repo, capture_output=True).returncode == 0
    resumed = load_trained_model(out / MODEL_NAME).state_dict()
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed[key]), key


def test_autocast_bf16_path_runs_on_cpu(tree, tmp_path):
    config = tiny_config(tree, **{"optim.epochs": 1, "runtime.amp": "bf16", "data.val_list": None})
    result = train(config, tmp_path / "amp", log=lambda s: None)
    assert np.isfinite(result.history[0]["train_loss"])


def test_score_files_and_metrics_reproduce_the_reference_fixture():
    from tests.conftest import shared_dir

    base = shared_dir() / "fixtures" / "casia_surf_val_scores"
    files = sorted((base / "exp1_2stage_seed1").glob("fold*_tta_epoch31_val_score.txt"))
    if len(files) != 3:
        pytest.skip(reason=f"reference score fixture not found under {base}")
    labels = np.loadtxt(base / "labels" / "phase1_list.txt", delimiter=",", skiprows=1, usecols=(3,)).astype(int)
    # our score-file reader + TTA mean + fold mean = the README's "model A"
    scores = np.mean([read_scores(f).mean(axis=1) for f in files], axis=0)
    metrics = val_metrics(scores, labels)
    assert metrics["val_tpr@0.0001"] == pytest.approx(2990 / 2994)
    assert metrics["val_tpr@0.01"] == 1.0


def test_warm_start_loads_a_trained_model_of_the_same_network(tree, tmp_path):
    from training.train import build_model

    train(tiny_config(tree, **{"optim.epochs": 1}), tmp_path / "first", log=lambda s: None)
    trained = load_trained_model(tmp_path / "first" / MODEL_NAME)
    warm = tiny_config(tree, **{"init.weights": str(tmp_path / "first" / MODEL_NAME), "seed": 11})
    model, report = build_model(warm, log=lambda s: None)
    for name, tensor in trained.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    assert report["sha256"] and report["model_name"] == warm.model.name
    cold, _ = build_model(tiny_config(tree, **{"seed": 11}), log=lambda s: None)
    assert not all(torch.equal(cold.state_dict()[n], t) for n, t in trained.state_dict().items())
    # another width is another network: refused, never half loaded
    with pytest.raises(InputValidationError, match="init.weights"):
        build_model(warm.replace(**{"model.options.width": 0.0625}), log=lambda s: None)
    with pytest.raises(InputValidationError, match="choose one"):
        warm.replace(**{"init.checkpoint": "face.pt"})


def test_warm_start_may_change_only_the_shape_neutral_options_it_names(tree, tmp_path):
    """A stride-1 model continues as a stride-2 student only when init.adapt_options says so."""
    from training.train import build_model

    train(tiny_config(tree, **{"optim.epochs": 1}), tmp_path / "first", log=lambda s: None)
    trained = load_trained_model(tmp_path / "first" / MODEL_NAME)
    weights = str(tmp_path / "first" / MODEL_NAME)
    strided = tiny_config(tree, **{"init.weights": weights, "model.options.stem_stride": 2})
    with pytest.raises(InputValidationError, match="init.weights"):
        build_model(strided, log=lambda s: None)
    adapted = strided.replace(**{"init.adapt_options": ["stem_stride"]})
    model, report = build_model(adapted, log=lambda s: None)
    assert model.options["stem_stride"] == 2
    assert report["adapted_options"] == {"stem_stride": {"from": 1, "to": 2}}
    for name, tensor in trained.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    # a width changes parameter shapes: it can never be adapted
    with pytest.raises(InputValidationError, match="adapt_options"):
        strided.replace(**{"init.adapt_options": ["width"]})
    with pytest.raises(InputValidationError, match="init.weights too"):
        tiny_config(tree, **{"init.adapt_options": ["stem_stride"]})


def test_model_files_saved_before_stem_stride_existed_load_as_stride_one(tree, tmp_path):
    """Older model.pt files carry no stem_stride: they were built, and are warm-started, at stride 1."""
    import json as _json

    from training.train import build_model, read_model_file

    train(tiny_config(tree, **{"optim.epochs": 1}), tmp_path / "first", log=lambda s: None)
    meta, state = read_model_file(tmp_path / "first" / MODEL_NAME)
    meta["model_options"].pop("stem_stride")
    old = tmp_path / "old_model.pt"
    torch.save({"meta": _json.dumps(meta), "state_dict": state}, old)
    model, report = build_model(tiny_config(tree, **{"init.weights": str(old)}), log=lambda s: None)
    assert report["model_options"]["stem_stride"] == 1 and model.options["stem_stride"] == 1
    assert load_trained_model(old).options["stem_stride"] == 1
