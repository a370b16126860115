import math

import pytest

from sdk.fusion import FusionConfig, TemporalFusion
from sdk.types import Decision


def test_live_needs_enough_frames_over_threshold():
    fusion = TemporalFusion(0.5, FusionConfig(window=5, min_frames_live=5))
    for i in range(4):
        assert fusion.add(0.9).decision is None
    state = fusion.add(0.9)
    assert state.decision is Decision.LIVE and state.frames == 5 and state.score == pytest.approx(0.9)


def test_spoof_early_when_far_below_and_at_full_window_otherwise():
    fusion = TemporalFusion(0.5, FusionConfig(window=5, min_frames_spoof=3, early_spoof_margin=0.25))
    fusion.add(0.1)
    fusion.add(0.1)
    assert fusion.add(0.1).decision is Decision.SPOOF
    slow = TemporalFusion(0.5)
    for _ in range(4):
        assert slow.add(0.45).decision is None
    assert slow.add(0.45).decision is Decision.SPOOF


def test_window_slides_and_invalid_scores_are_refused():
    fusion = TemporalFusion(0.5, FusionConfig(window=3, min_frames_live=3, min_frames_spoof=3))
    for s in (0.0, 0.0, 0.0, 1.0, 1.0, 1.0):
        state = fusion.add(s)
    assert state.score == pytest.approx(1.0) and state.decision is Decision.LIVE
    with pytest.raises(ValueError):
        fusion.add(float("nan"))
    with pytest.raises(ValueError):
        fusion.add(1.5)
    with pytest.raises(ValueError):
        TemporalFusion(math.inf)
    fusion.reset()
    assert fusion.state().frames == 0 and fusion.state().decision is None
