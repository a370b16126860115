"""Latency rounds: every model is timed warm, whatever was timed before it."""
from __future__ import annotations

import time

import pytest

pytest.importorskip("torch", reason="training needs torch (the train extra)")

from training.compare import timed_rounds  # noqa: E402


def test_a_model_timed_after_another_is_timed_warm():
    calls: list[str] = []

    def runner(name: str):
        def run() -> None:
            cold = bool(calls) and calls[-1] != name  # another model's weights are in the cache
            calls.append(name)
            time.sleep(0.03 if cold else 0.002)
        return run

    times = timed_rounds({"student": runner("student"), "ensemble": runner("ensemble")}, rounds=3)
    assert all(len(t) == 3 for t in times.values())
    assert max(max(t) for t in times.values()) < 0.02 * 1000.0  # no timed call paid the cold start
    assert calls[:4] == ["student", "student", "ensemble", "ensemble"]  # interleaved, one warm-up call each
