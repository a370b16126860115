"""A small set of labelled simulator recordings shared by the calibration and shipped-bundle tests.

Seeds lie in their own range (650_000_000 + ...), far from the training datasets' (below 3e7),
the calibration recordings' (6e8), the HIL suites' (8e8) and the evaluation run's (9e8).
"""
from __future__ import annotations

from pathlib import Path

import pytest

SEED_BASE = 650_000_000
FRAMES = 10
#: (scenario, count): 4 live and 6 attacks, enough for a target APCER of 0.5 (3/t = 6).
PLAN = (("live", 4), ("print_flat", 2), ("cut_eyes_flat", 2), ("mask_3d", 1), ("screen_replay", 1))


def make(folder: Path) -> list[Path]:
    from sdk.cli.cmd_synth_bag import synth_bag

    folder.mkdir(parents=True, exist_ok=True)
    bags = []
    for index, (scenario, count) in enumerate(PLAN):
        for i in range(count):
            bag = folder / f"{scenario}_{i}.bag"
            synth_bag(scenario, SEED_BASE + 1000 * index + i, FRAMES, bag)
            bags.append(bag)
    return bags


@pytest.fixture(scope="session")
def sim_recordings(tmp_path_factory) -> Path:
    pytest.importorskip("pyrealsense2", reason="recordings are written and replayed with pyrealsense2")
    pytest.importorskip("mediapipe", reason="the session's detector needs mediapipe")
    # One folder per test run, even when several modules import this fixture.
    folder = tmp_path_factory.getbasetemp() / "sim_recordings"
    done = folder / "DONE"
    if not done.is_file():
        make(folder)
        done.write_text("ok\n")
    return folder


def longest_scored_run(row: dict) -> int:
    """Longest run of consecutive scored frames in a calibration report row: LIVE needs
    FusionConfig.min_frames_live of them in a row (a gate failure resets the evidence), so a
    check with fewer can only end UNCERTAIN or SPOOF, however high its scores."""
    best = run = 0
    for outcome in row["outcomes"]:
        run = run + 1 if outcome["score"] is not None else 0
        best = max(best, run)
    return best
