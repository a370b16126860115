"""Checkpoints inside an epoch: atomic files, resume mid-epoch, and a real kill -9 (issue 14 item 4)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="training needs torch (the train extra)")

from training.config import load_config  # noqa: E402
from training.data.fixtures import write_casia_tree  # noqa: E402
from training.train import CHECKPOINT_NAME, MODEL_NAME, load_trained_model, train  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("casia_ckpt")
    # 6 live subjects x 2 frames + 2 attack subjects x 3 types x 2 frames = 24 samples: 6 steps of 4
    write_casia_tree(root, live_subjects=6, attack_subjects=2, frames=2, val_samples=4)
    return root


def small_config(root: Path, **overrides):
    config = load_config("cpu_tiny").replace(**{
        "data.root": str(root), "data.val_list": None, "optim.batch_size": 4, "optim.epochs": 2,
        "runtime.progress": False, "model.options.width": 0.0625, "seed": 5, "runtime.threads": 1,
        "runtime.checkpoint_every_steps": 2,
    })
    return config.replace(**overrides) if overrides else config


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_mid_epoch_checkpoint_then_resume_matches_uninterrupted(tree, tmp_path):
    config = small_config(tree)
    full = train(config, tmp_path / "full", log=lambda s: None)
    # stop right after the checkpoint at step 4 of epoch 1 (of 6 steps)
    part = train(config, tmp_path / "cut", stop_after_steps=4, log=lambda s: None)
    assert part.epochs_done == 0 and not (tmp_path / "cut" / MODEL_NAME).exists()
    state = torch.load(tmp_path / "cut" / CHECKPOINT_NAME, weights_only=True)
    assert (state["epoch"], state["step"], state["steps_per_epoch"]) == (0, 4, 6)
    assert json.loads(state["partial"])["seen"] == 16
    logs: list[str] = []
    resumed = train(config, tmp_path / "cut", resume=True, log=logs.append)
    assert any("step 4 of epoch 1" in line for line in logs)
    assert_same_weights(full.model.state_dict(), resumed.model.state_dict())
    # the epoch's metrics row is the same as if nothing had happened (running totals were saved)
    assert resumed.history[0]["train_loss"] == pytest.approx(full.history[0]["train_loss"])
    assert not list((tmp_path / "cut").glob(".*tmp*"))


def test_resume_with_another_checkpoint_frequency_is_allowed(tree, tmp_path):
    config = small_config(tree, **{"optim.epochs": 1})
    train(config, tmp_path / "run", stop_after_steps=1, log=lambda s: None)
    resumed = train(config.replace(**{"runtime.checkpoint_every_steps": 0}), tmp_path / "run", resume=True,
                    log=lambda s: None)
    assert resumed.epochs_done == 1


def test_config_json_is_written_atomically(tree, tmp_path):
    config = small_config(tree, **{"optim.epochs": 1})
    train(config, tmp_path / "run", log=lambda s: None)
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == config.to_dict()


def test_kill_9_mid_epoch_then_resume_reaches_the_same_weights(tree, tmp_path):
    """A real SIGKILL while an epoch is in progress, proven by the process status and the checkpoint."""
    config = small_config(tree, **{"optim.epochs": 2, "runtime.checkpoint_every_steps": 1})
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config.to_dict()))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "sdk.cli", "train", "--config", str(config_path), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen_step = None
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        try:
            state = torch.load(out / CHECKPOINT_NAME, weights_only=True)
        except Exception:  # not written yet (the rename is atomic: never a torn file)
            time.sleep(0.01)
            continue
        # Kill on the second step of epoch 2: four steps before that epoch can end.
        if state["epoch"] == 1 and state["step"] >= 2:
            os.kill(process.pid, signal.SIGKILL)
            seen_step = state["step"]
            break
        time.sleep(0.005)
    process.wait(timeout=60)
    assert seen_step is not None, "the run finished or never checkpointed before it could be killed"
    assert process.returncode == -signal.SIGKILL  # it really died of the signal, it did not exit
    state = torch.load(out / CHECKPOINT_NAME, weights_only=True)
    assert state["epoch"] == 1 and 0 < state["step"] < state["steps_per_epoch"]  # died mid-epoch
    assert not (out / MODEL_NAME).exists()
    reference = train(config, tmp_path / "reference", log=lambda s: None)
    resumed = subprocess.run(cmd + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_weights(reference.model.state_dict(), load_trained_model(out / MODEL_NAME).state_dict())


def one_epoch_on_own_list(tree: Path, tmp_path: Path):
    """A one-epoch config reading a copy of the tree's train list that a test may rewrite."""
    config = small_config(tree, **{"optim.epochs": 1})
    lines = (tree / config.data.train_list).read_text().splitlines()
    own_list = tmp_path / "train.txt"
    own_list.write_text("\n".join(lines) + "\n")
    return config.replace(**{"data.train_list": str(own_list)}), lines, own_list


def test_a_list_rewritten_under_its_name_is_refused_on_resume(tree, tmp_path):
    """A dataset rendered again rewrites its list under the same name: resuming would train on
    other crops than the run started with, silently. The run records its samples and refuses."""
    from sdk.errors import InputValidationError
    from training.train import DATA_RECORD_NAME

    config, lines, own_list = one_epoch_on_own_list(tree, tmp_path)
    train(config, tmp_path / "run", stop_after_steps=2, log=lambda s: None)
    record = json.loads((tmp_path / "run" / DATA_RECORD_NAME).read_text())
    assert record["train"]["count"] == len(lines) and len(record["train"]["sha256"]) == 64
    assert record["val"]["count"] == 0 and record["train_list"] == str(own_list)

    own_list.write_text("\n".join(lines[:-4]) + "\n")  # the same name, four crops fewer
    with pytest.raises(InputValidationError, match=f"train {len(lines)} -> {len(lines) - 4}"):
        train(config, tmp_path / "run", resume=True, log=lambda s: None)
    own_list.write_text("\n".join(lines) + "\n")  # the original list back: the run resumes
    assert train(config, tmp_path / "run", resume=True, log=lambda s: None).epochs_done == 1


def test_a_pinned_sample_hash_refuses_a_fresh_run_on_a_rewritten_list(tree, tmp_path):
    """A fresh run is a new run, so the resume check cannot see a list rewritten before it started
    (candidate Z2 trained on 3,585 crops where Z saw 2,820). data.train_sha256 pins what it reads."""
    from sdk.errors import InputValidationError
    from training.train import DATA_RECORD_NAME

    config, lines, own_list = one_epoch_on_own_list(tree, tmp_path)
    train(config, tmp_path / "first", stop_after_steps=1, log=lambda s: None)
    recorded = json.loads((tmp_path / "first" / DATA_RECORD_NAME).read_text())["train"]["sha256"]

    pinned = config.replace(**{"data.train_sha256": recorded[:12].upper()})  # a prefix, any case
    own_list.write_text("\n".join(lines[:-4]) + "\n")  # rendered again under the same name
    with pytest.raises(InputValidationError, match="pinned data.train_sha256"):
        train(pinned, tmp_path / "second", stop_after_steps=1, log=lambda s: None)
    assert not (tmp_path / "second" / CHECKPOINT_NAME).exists()  # refused before a step was taken
    with pytest.raises(InputValidationError, match="12 to 64 hex digits"):
        train(config.replace(**{"data.train_sha256": "abc"}), tmp_path / "third", log=lambda s: None)
    with pytest.raises(InputValidationError, match="string of hex digits"):  # --set parsed it as a number
        train(config.replace(**{"data.train_sha256": 12345e6}), tmp_path / "third", log=lambda s: None)

    own_list.write_text("\n".join(lines) + "\n")  # the pinned samples: it trains, and may resume pinned
    assert train(pinned, tmp_path / "second", stop_after_steps=1, log=lambda s: None).epochs_done == 0
    assert train(pinned, tmp_path / "second", resume=True, log=lambda s: None).epochs_done == 1
    # the pin may be added to a run that started without one: it only adds a check
    assert train(pinned, tmp_path / "first", resume=True, log=lambda s: None).epochs_done == 1
