"""The 24-member ensemble: plan, member status, Ray training with a killed driver, scoring."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch (the train extra)")

from sdk.errors import InputValidationError  # noqa: E402
from training.data.casia import read_list  # noqa: E402
from training.data.fixtures import write_casia_tree  # noqa: E402
from training.ensemble.plan import FOLDS, INIT_ORDER, SEEDS, load_members, make_plan, member_dir  # noqa: E402
from training.ensemble.status import ensemble_status, member_status, write_worker_status  # noqa: E402
from training.train import MODEL_NAME, train  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parent.parent
#: Members of a few optimiser steps: the CI-sized check of the whole machinery.
TINY = {"optim.epochs": 1, "optim.batch_size": 4, "model.options.width": 0.0625, "data.max_train_samples": 12,
        "data.max_val_samples": 4, "runtime.checkpoint_every_steps": 1, "runtime.progress": False}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("casia_ensemble")
    write_casia_tree(root, live_subjects=6, attack_subjects=2, frames=2, val_samples=6)
    return root


def test_plan_has_24_members_over_inits_folds_and_seeds(tree, tmp_path):
    members = make_plan("cpu_tiny", tree, tmp_path / "run", overrides=TINY)
    assert len(members) == 24 == len(INIT_ORDER) * len(FOLDS) * len(SEEDS)
    assert {(m.init, m.fold, m.seed) for m in members} == {(i, f, s) for i in INIT_ORDER for f in FOLDS for s in SEEDS}
    assert len({m.name for m in members}) == 24 and len({m.config.seed for m in members}) == 24
    table = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert [list(row) for row in table["members"]] == [["name", "init", "fold", "seed", "status"]] * 24
    assert {row["status"] for row in table["members"]} == {"pending"}
    # attack folds: fold k validates on held-out attack type 3+k and live subjects nobody trains on
    for member in members[:3]:
        train_list = Path(member.config.data.folds_dir) / "attack3" / f"fold{member.fold}" / "train_list.txt"
        val_list = train_list.with_name("val_list.txt")
        train_rows, val_rows = read_list(train_list), read_list(val_list)
        held = 3 + member.fold
        assert {s.attack_type for s in val_rows if s.label == 0} == {held}
        assert held not in {s.attack_type for s in train_rows if s.label == 0}
        assert not {s.subject for s in train_rows if s.label == 1} & {s.subject for s in val_rows if s.label == 1}
    # the run folder alone rebuilds every member's config
    again = load_members(tmp_path / "run")
    assert [m.to_json() for m in again] == [m.to_json() for m in members]
    # re-planning the same run is a no-op; another plan into it is refused
    assert len(make_plan("cpu_tiny", tree, tmp_path / "run", overrides=TINY)) == 24
    with pytest.raises(InputValidationError):
        make_plan("cpu_tiny", tree, tmp_path / "run", overrides={**TINY, "optim.lr": 0.5})


def test_paper_preset_uses_resnet34_and_ir50_slots(tree, tmp_path):
    members = make_plan("paper_resnet34", tree, tmp_path / "run")
    models = {m.init: m.config.model.name for m in members}
    assert models == {"resnet34-face": "mlfa_resnet34", "resnet34-gender": "mlfa_resnet34",
                      "ir50-face": "mlfa_ir50", "ir50-face-asian": "mlfa_ir50"}
    assert {m.config.init.slot for m in members} == set(INIT_ORDER)


def test_ensemble_presets_load(tree, tmp_path):
    from training.ensemble.plan import list_ensemble_presets

    names = list_ensemble_presets()
    assert "ci_tiny" in names
    for name in names:
        members = make_plan(name, tree, tmp_path / name)
        assert len(members) == 24


def test_member_status_follows_the_run_folder(tree, tmp_path):
    run = tmp_path / "run"
    members = make_plan("cpu_tiny", tree, run, overrides={**TINY, "optim.epochs": 2})
    member = members[0]
    folder = member_dir(run, member)
    assert member_status(run, member)["status"] == "pending"
    train(member.config, folder, stop_after_steps=1, log=lambda s: None)
    info = member_status(run, member)
    assert info["status"] == "interrupted" and info["step"] == 1 and info["epochs_done"] == 0
    write_worker_status(folder, "running")  # this (live) process holds it
    assert member_status(run, member)["status"] == "running"
    record = json.loads((folder / "status.json").read_text())
    record["pid"] = 2**22 + 12345  # a process that does not exist: the worker died
    (folder / "status.json").write_text(json.dumps(record))
    assert member_status(run, member)["status"] == "interrupted"
    write_worker_status(folder, "failed", error="boom")
    assert member_status(run, member)["status"] == "failed"
    train(member.config, folder, resume=True, log=lambda s: None)
    assert member_status(run, member)["status"] == "done"
    status = ensemble_status(run)
    assert status["counts"] == {"done": 1, "pending": 23}
    assert json.loads((run / "plan.json").read_text())["members"][0]["status"] == "done"


def test_warm_started_plan_continues_every_member_from_its_namesake(tree, tmp_path):
    from training.ensemble.plan import sha256_file

    first = make_plan("cpu_tiny", tree, tmp_path / "first", overrides=TINY)
    with pytest.raises(InputValidationError, match="not done"):  # nothing trained yet
        make_plan("cpu_tiny", tree, tmp_path / "second", overrides=TINY, warm_start=tmp_path / "first")
    with pytest.raises(InputValidationError, match="not an ensemble run"):
        make_plan("cpu_tiny", tree, tmp_path / "second", overrides=TINY, warm_start=tmp_path)
    for member in first:
        train(member.config, member_dir(tmp_path / "first", member), log=lambda s: None)
    with pytest.raises(InputValidationError, match="exclusive"):
        make_plan("cpu_tiny", tree, tmp_path / "second", overrides=TINY, warm_start=tmp_path / "first",
                  init_dir=tmp_path)
    second = make_plan("cpu_tiny", tree, tmp_path / "second", overrides={**TINY, "optim.lr": 1e-12},
                       warm_start=tmp_path / "first")
    meta = json.loads((tmp_path / "second" / "ensemble.json").read_text())
    assert meta["warm_start"] == str((tmp_path / "first").resolve())
    for before, after in zip(first, second):
        assert before.name == after.name
        assert after.config.init.weights == str((member_dir(tmp_path / "first", before) / MODEL_NAME).resolve())
    # lr ~0: the continued member must come out with its namesake's weights, and say where they came from
    member = second[5]
    folder = member_dir(tmp_path / "second", member)
    train(member.config, folder, log=lambda s: None)
    report = json.loads((folder / "init_report.json").read_text())
    assert report["sha256"] == sha256_file(member.config.init.weights)
    from training.train import read_model_file

    _, old = read_model_file(Path(member.config.init.weights))
    _, new = read_model_file(folder / MODEL_NAME)
    conv = [k for k in old if k.endswith("weight") and old[k].ndim == 4]
    assert conv and all(torch.allclose(old[k], new[k], atol=1e-8) for k in conv)


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sdk.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, **kwargs)


def test_ray_training_survives_a_killed_driver_then_scores(tree, tmp_path):
    """CI-sized: 24 members of a few steps each on a local Ray cluster; kill -9 the driver midway."""
    pytest.importorskip("ray", reason="the ensemble runs on Ray (the ensemble extra)")
    run = tmp_path / "run"
    sets = [item for key, value in TINY.items() for item in ("--set", f"{key}={json.dumps(value)}")]
    planned = _cli("ensemble", "plan", "--config", "cpu_tiny", "--root", str(tree), "--out", str(run), "--json", *sets)
    assert planned.returncode == 0, planned.stderr[-2000:]
    assert len(json.loads(planned.stdout)["members"]) == 24

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "sdk.cli", "ensemble", "train", "--out", str(run), "--num-cpus", "2", "--quiet"]
    # Own session: after the driver's SIGKILL the test can also clean up Ray's helper processes.
    driver = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    done_before: dict[str, float] = {}
    try:
        deadline = time.time() + 240
        while time.time() < deadline and driver.poll() is None:
            done = list(run.glob(f"members/*/{MODEL_NAME}"))
            if len(done) >= 2:
                os.kill(driver.pid, signal.SIGKILL)
                break
            time.sleep(0.2)
        driver.wait(timeout=60)
        assert driver.returncode == -signal.SIGKILL, "the driver finished before it could be killed"
        # The driver's Ray workers end with it (fate sharing), within seconds.
        deadline = time.time() + 60
        while "running" in ensemble_status(run)["counts"] and time.time() < deadline:
            time.sleep(0.5)
        done_before = {p.parent.name: p.stat().st_mtime_ns for p in run.glob(f"members/*/{MODEL_NAME}")}
        status = ensemble_status(run)
        assert 2 <= status["counts"].get("done", 0) < 24
        assert "running" not in status["counts"]
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    resumed = _cli("ensemble", "train", "--out", str(run), "--num-cpus", "2", "--max-parallel", "2", "--quiet",
                   timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"skipped {len(done_before)}" in resumed.stdout
    for name, mtime in done_before.items():  # finished members were not trained again
        assert (run / "members" / name / MODEL_NAME).stat().st_mtime_ns == mtime
    status = json.loads(_cli("ensemble", "status", "--out", str(run), "--json").stdout)
    assert status["counts"] == {"done": 24}

    scored = _cli("ensemble", "score", "--out", str(run), "--labels", "val_list.txt", "--root", str(tree), "--json")
    assert scored.returncode == 0, scored.stderr[-2000:]
    report = json.loads(scored.stdout)
    assert report["n_members"] == 24 and report["n_samples"] == 6
    ensemble_file = run / "scores" / "val_list" / "ensemble.csv"
    members = [np.loadtxt(p, delimiter=",", skiprows=1) for p in sorted((run / "scores" / "val_list").glob("*_seed*.csv"))]
    assert len(members) == 24
    assert np.allclose(np.loadtxt(ensemble_file, delimiter=",", skiprows=1), np.mean(members, axis=0))
    assert 0.0 <= report["ensemble"]["apcer"] <= 1.0 and report["best_member"] in report["members"]
