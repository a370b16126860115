"""tools/probe_independent.py: the diagnosis script that scores one transform at a time."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from sdk.types import FaceCrops

TOOL = Path(__file__).resolve().parents[1] / "tools" / "probe_independent.py"


@pytest.fixture(scope="module")
def probe():
    spec = importlib.util.spec_from_file_location("probe_independent", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _crops() -> FaceCrops:
    rng = np.random.default_rng(0)
    depth = np.zeros((112, 112), np.uint8)
    depth[20:90, 30:80] = rng.integers(100, 160, (70, 50))
    return FaceCrops(rgb=rng.integers(1, 255, (112, 112, 3)).astype(np.uint8),
                     ir=rng.integers(0, 255, (112, 112)).astype(np.uint8), depth=depth,
                     face_depth_m=0.5, depth_valid_fraction=1.0, preprocess_version="sr300-mlfa-crops/1")


def test_transforms_change_what_they_name_and_nothing_else(probe):
    crops = _crops()
    for name, transform in probe.TRANSFORMS.items():
        out = transform(crops)
        if name == "flat_depth":
            assert np.array_equal(out.rgb, crops.rgb) and np.array_equal(out.ir, crops.ir)
            valid = crops.depth > 0
            assert np.array_equal(out.depth > 0, valid) and len(np.unique(out.depth[valid])) == 1
        else:
            assert not np.array_equal(out.rgb, crops.rgb), name
            assert np.array_equal(out.ir, crops.ir) and np.array_equal(out.depth, crops.depth), name


def test_probe_prints_one_row_per_session(probe, capsys):
    assert probe.main(["--seeds", "9100000", "--reference", "9100001"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("model ") and "reference 9100001 (astronaut)" in lines[0]
    row = lines[-1].split()
    assert row[:2] == ["9100000", "james"]
    header = lines[1].split()
    scores = [float(x) for x in row[-(len(header) - 4):]]  # seed, person, z_m, gates, then one score a column
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_sessions_of_every_run_seed_map_to_their_person(probe):
    from calibration.independent.evaluate import plan

    for run_seed in (0, 1, 7):
        for p in plan(4, kinds=("live",), seed=run_seed):
            assert probe._person_of(p.seed) == p.person
