"""Held-out families: excluded from default datasets, rendered alone with --holdout NAME."""
from __future__ import annotations

import json

import pytest

from sdk.cli import main
from sdk.errors import InputValidationError
from sdk.sim import Simulator
from sdk.sim.dataset import SPLIT_SEED_BASE, plan
from sdk.sim.holdout import HOLDOUT_FAMILIES, TRAINING_OPTIONS, get_holdout, holdout_subjects


def test_families_and_lookup():
    assert {"yaw_gt20", "glasses_or_beard", "far_gt08", "sunlight", "mask_3d"} <= set(HOLDOUT_FAMILIES)
    assert get_holdout("mask_3d").scenarios() == ("live", "mask_3d")
    assert "mask_3d" not in get_holdout("yaw_gt20").scenarios()
    with pytest.raises(InputValidationError, match="valid families"):
        get_holdout("beards")


def test_default_plan_never_renders_a_holdout_family():
    jobs = plan(live=6, per_attack=3, frames_per_subject=1)
    assert all(j.holdout is None and j.options() == dict(TRAINING_OPTIONS) for j in jobs)
    assert not any(j.scenario == "mask_3d" for j in jobs)
    # A sample of default sessions lies outside every family.
    for job in jobs[::5]:
        sim = Simulator(job.scenario, job.subject, **job.options())
        assert not sim.profile.is_sunlit
        for idn in (sim.scene.idn, getattr(sim.scene, "content_idn", sim.scene.idn)):
            assert not idn.glasses and idn.beard == 0.0
        for index in (0, 9):
            _, truth = sim.render(index)
            assert abs(truth.yaw_deg) <= 20.0 + 1e-6 and truth.distance_m < 0.86, (job, truth)


@pytest.mark.parametrize("name", ["yaw_gt20", "far_gt08", "sunlight", "glasses_or_beard"])
def test_holdout_sessions_are_in_their_family(name):
    for subject in holdout_subjects(name, "live", 2) + holdout_subjects(name, "cut_eyes_nose_flat", 1):
        sim = Simulator(subject.scenario, subject.seed, **subject.options)
        _, truth = sim.render(3)
        if name == "yaw_gt20":
            assert 20.0 < abs(truth.yaw_deg) <= 30.0 + 1e-6
        elif name == "far_gt08":
            assert truth.distance_m > 0.75
        elif name == "sunlight":
            assert sim.profile.is_sunlit
        else:
            assert sim.scene.idn.glasses or sim.scene.idn.beard > 0


def test_holdout_seeds_are_deterministic_and_disjoint():
    a = holdout_subjects("sunlight", "live", 5)
    assert a == holdout_subjects("sunlight", "live", 5)
    seeds = {s.seed for name in HOLDOUT_FAMILIES for sc in HOLDOUT_FAMILIES[name].scenarios()
             for s in holdout_subjects(name, sc, 50)}
    assert len(seeds) == sum(50 * len(f.scenarios()) for f in HOLDOUT_FAMILIES.values())
    default = {j.subject for j in plan(live=300, per_attack=300, frames_per_subject=1)}
    assert not seeds & default
    assert min(seeds) > max(SPLIT_SEED_BASE.values()) + 10_000


def test_holdout_dataset_via_cli(tmp_path, capsys):
    assert main(["synth-dataset", "--list-holdouts"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in HOLDOUT_FAMILIES)
    out = tmp_path / "mask"
    rc = main(["synth-dataset", "--out", str(out), "--holdout", "mask_3d", "--live", "1", "--per-attack", "1",
               "--frames-per-subject", "1", "--workers", "1", "--no-progress"])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["holdout"] == "mask_3d" and list(manifest["splits"]) == ["Test"]
    assert manifest["splits"]["Test"]["scenarios"] == ["live", "mask_3d"]
    lines = (out / "test_list.txt").read_text().split("\n")
    assert len([l for l in lines if l]) == 2
    assert not (out / "train_list.txt").exists()
    assert main(["synth-dataset", "--out", str(tmp_path / "x"), "--holdout", "nope", "--no-progress"]) == 3
    assert "valid families" in capsys.readouterr().err
