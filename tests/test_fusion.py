"""Temporal fusion and the per-check decision rule: examples from issue #10 and hypothesis
properties over score sequences (no LIVE without k passing frames in a row; LIVE is monotone
in the threshold, so check_score says exactly at which thresholds a check is LIVE)."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdk.fusion import CheckDecider, FusionConfig, TemporalFusion, check_score, decide
from sdk.types import Decision, FaceBox, FrameOutcome, Reason

BOX = FaceBox(200, 150, 320, 290)
K = FusionConfig().min_frames_live


def scored(score: float, box: FaceBox = BOX, depth: float = 0.5, n: int = 0) -> FrameOutcome:
    return FrameOutcome(n, score, (), box, {}, depth)


def gate(reason: Reason = Reason.MOTION_BLUR, n: int = 0) -> FrameOutcome:
    return FrameOutcome(n, None, (reason,), BOX, {}, 0.5)


def verdict_of(scores, threshold, config=FusionConfig()):
    return decide([scored(s) for s in scores], threshold, config)[0].decision


def test_live_needs_k_passing_frames_in_a_row():
    fusion = TemporalFusion(0.5, FusionConfig(window=5, min_frames_live=5))
    for _ in range(4):
        assert fusion.add(0.9, BOX, 0.5).decision is None
    state = fusion.add(0.9, BOX, 0.5)
    assert state.decision is Decision.LIVE and state.frames == 5 and state.run == 5
    assert state.score == pytest.approx(0.9)


def test_issue_sequences_are_not_live():
    # One frame at 1.0 and four at 0.17 (mean 0.336 >= 0.329) were LIVE under the old mean.
    assert verdict_of([1.0, 0.17, 0.17, 0.17, 0.17], 0.329) is not Decision.LIVE
    # Two at 0.9 and three at 0.0 (mean 0.36).
    assert verdict_of([0.9, 0.9, 0.0, 0.0, 0.0], 0.329) is not Decision.LIVE
    # A mask_3d-like bag: one lucky frame among low ones, repeated over a long stream.
    assert verdict_of([0.2, 0.981, 0.1, 0.3, 0.981, 0.2] * 20, 0.329) is not Decision.LIVE


def test_one_low_frame_weighs_more_than_one_high_frame():
    # Symmetric deviations around the threshold on the probability scale: the low one wins.
    fusion = TemporalFusion(0.5, FusionConfig(window=4, min_frames_live=4, min_frames_spoof=4))
    for s in (0.5, 0.5, 0.9, 0.1):
        state = fusion.add(s)
    assert state.score < 0.5 and state.decision is Decision.SPOOF


def test_gate_failure_resets_the_evidence():
    outcomes = [scored(0.9)] * (K - 1) + [gate()] + [scored(0.9)] * (K - 1)
    verdict, _ = decide(outcomes, 0.5)
    assert verdict.decision is Decision.UNCERTAIN and Reason.MOTION_BLUR in verdict.reasons
    verdict, seen = decide(outcomes + [scored(0.9)], 0.5)
    assert verdict.decision is Decision.LIVE and seen == 2 * K


def test_a_change_of_face_resets_the_evidence():
    other = FaceBox(420, 150, 540, 290)  # no overlap with BOX
    outcomes = [scored(0.9)] * (K - 1) + [scored(0.9, other)] + [scored(0.9)] * (K - 1)
    assert decide(outcomes, 0.5)[0].decision is Decision.UNCERTAIN
    # Same box, but the depth jumps by 30 cm: a photo raised in front of the face.
    outcomes = [scored(0.9, depth=0.6)] * (K - 1) + [scored(0.9, depth=0.3)] * (K - 1)
    assert decide(outcomes, 0.5)[0].decision is Decision.UNCERTAIN
    assert decide([scored(0.9, depth=0.6 + 0.01 * i) for i in range(K)], 0.5)[0].decision is Decision.LIVE


def test_spoof_early_when_far_below_and_at_full_window_otherwise():
    assert decide([scored(0.05)] * 3, 0.5)[0].decision is Decision.SPOOF
    verdict, seen = decide([scored(0.45)] * 20, 0.5)
    assert verdict.decision is Decision.SPOOF and seen == FusionConfig().window


def test_stuck_stream_and_missing_modality_end_the_check():
    stuck = FrameOutcome(3, None, (Reason.DEVICE_ERROR,), None, {}, message="frame number did not advance")
    verdict, seen = decide([scored(0.9), stuck, scored(0.9)], 0.5)
    assert verdict.decision is Decision.UNCERTAIN and verdict.reasons == (Reason.DEVICE_ERROR,) and seen == 2
    missing = FrameOutcome(0, None, (Reason.MISSING_MODALITY,), None, {})
    verdict, seen = decide([missing] * 5, 0.5)
    assert verdict.reasons == (Reason.MISSING_MODALITY,) and seen == 3
    # Two missing frames are not enough to end it, and they break the run.
    outcomes = [scored(0.9)] * 2 + [missing] * 2 + [scored(0.9)] * (K - 1)
    assert decide(outcomes, 0.5)[0].decision is Decision.UNCERTAIN


def test_spoof_cues_end_the_check_as_spoof():
    cue = gate(Reason.IMPLAUSIBLE_FACE_SIZE)
    verdict, seen = decide([cue, scored(0.9), cue, gate(), cue], 0.5)
    assert verdict.decision is Decision.SPOOF and verdict.reasons == (Reason.IMPLAUSIBLE_FACE_SIZE,) and seen == 5


def test_invalid_scores_and_configs_are_refused():
    fusion = TemporalFusion(0.5)
    for bad in (float("nan"), 1.5, -0.1, True):
        with pytest.raises(ValueError):
            fusion.add(bad)
    with pytest.raises(ValueError):
        TemporalFusion(math.inf)
    with pytest.raises(ValueError):
        FusionConfig(window=3, min_frames_live=4)
    with pytest.raises(ValueError):
        FusionConfig(score_floor=0.0)
    with pytest.raises(ValueError):
        CheckDecider(0.5, spoof_cue_frames=0)
    fusion.add(0.9)
    fusion.reset()
    assert fusion.state().frames == 0 and fusion.state().decision is None


# -- properties ------------------------------------------------------------------------------
scores = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=40)
thresholds = st.floats(0.01, 1.0, allow_nan=False)
steps = st.lists(
    st.one_of(
        st.floats(0.0, 1.0, allow_nan=False).map(scored),
        st.just(gate()),
        st.just(gate(Reason.IMPLAUSIBLE_FACE_SIZE)),
        st.just(FrameOutcome(0, None, (Reason.MISSING_MODALITY,), None, {})),
        st.floats(0.0, 1.0, allow_nan=False).map(lambda s: scored(s, FaceBox(400, 100, 520, 240))),
        st.floats(0.0, 1.0, allow_nan=False).map(lambda s: scored(s, depth=0.9)),
    ),
    min_size=1, max_size=40,
)


def _longest_passing_run(values, threshold):
    best = run = 0
    for v in values:
        run = run + 1 if v >= threshold else 0
        best = max(best, run)
    return best


@settings(max_examples=300, deadline=None)
@given(scores, thresholds)
def test_no_live_without_k_passing_frames_in_a_row(values, threshold):
    verdict, seen = decide([scored(s) for s in values], threshold)
    if _longest_passing_run(values, threshold) < K:
        assert verdict.decision is not Decision.LIVE
    if verdict.decision is Decision.LIVE:
        # the last k frames before the decision all passed, and so does the statistic
        assert all(s >= threshold for s in values[seen - K:seen]) and verdict.score >= threshold


@settings(max_examples=150, deadline=None)
@given(steps, thresholds)
def test_check_score_says_exactly_where_a_check_is_live(outcomes, threshold):
    score = check_score(outcomes)
    live = decide(outcomes, threshold)[0].decision is Decision.LIVE
    assert live == (score >= threshold)
    assert 0.0 <= score <= 1.0


@settings(max_examples=150, deadline=None)
@given(steps, thresholds, thresholds)
def test_a_lower_threshold_never_turns_live_into_something_else(outcomes, a, b):
    low, high = min(a, b), max(a, b)
    if decide(outcomes, high)[0].decision is Decision.LIVE:
        assert decide(outcomes, low)[0].decision is Decision.LIVE
    if decide(outcomes, low)[0].decision is Decision.SPOOF and Reason.SPOOF_SCORE in decide(outcomes, low)[0].reasons:
        assert decide(outcomes, high)[0].decision is not Decision.LIVE
