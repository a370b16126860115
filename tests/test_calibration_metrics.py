"""Metrics against brute-force definitions (hypothesis), exact bounds, and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.metrics import (
    apcer,
    apcer_per_attack_type,
    bpcer,
    clopper_pearson_interval,
    clopper_pearson_lower,
    clopper_pearson_upper,
    det_curve,
    eer,
    eer_closest_point,
    evaluate,
    roc_curve,
    rule_of_three,
    samples_needed_for_zero_error_claim,
    target_key,
    tpr_at_fpr,
)
from sdk.errors import InputValidationError

# Scores on an integer grid: plenty of ties, and strictly increasing maps keep them distinct.
scored_samples = st.lists(
    st.tuples(st.integers(-40, 40), st.integers(0, 1)), min_size=2, max_size=60
).filter(lambda rows: 0 < sum(label for _, label in rows) < len(rows))


def _arrays(rows):
    scores = np.array([float(s) for s, _ in rows])
    labels = np.array([label for _, label in rows])
    return scores, labels


def _brute_roc(scores, labels):
    live, attack = scores[labels == 1], scores[labels == 0]
    thresholds = [math.inf] + sorted(set(scores.tolist()), reverse=True)
    fpr = [np.mean(attack >= t) for t in thresholds]
    tpr = [np.mean(live >= t) for t in thresholds]
    return np.array(fpr), np.array(tpr), np.array(thresholds)


@settings(max_examples=150, deadline=None)
@given(scored_samples)
def test_roc_matches_brute_force(rows):
    scores, labels = _arrays(rows)
    fpr, tpr, thresholds = roc_curve(scores, labels)
    bfpr, btpr, bthr = _brute_roc(scores, labels)
    np.testing.assert_array_equal(thresholds, bthr)
    np.testing.assert_allclose(fpr, bfpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(tpr, btpr, rtol=0, atol=1e-15)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0


@settings(max_examples=150, deadline=None)
@given(scored_samples, st.sampled_from([1e-2, 0.1, 0.25, 0.5]))
def test_tpr_at_fpr_matches_definitions(rows, target):
    scores, labels = _arrays(rows)
    bfpr, btpr, _ = _brute_roc(scores, labels)
    got = tpr_at_fpr(scores, labels, target)
    assert got["empirical"] == pytest.approx(max(t for f, t in zip(bfpr, btpr) if f <= target), abs=1e-15)
    assert got["interpolated"] == pytest.approx(np.interp(target, bfpr, btpr), abs=1e-12)
    assert got["interpolated"] >= got["empirical"] - 1e-15


@settings(max_examples=150, deadline=None)
@given(scored_samples)
def test_eer_is_on_the_diagonal_and_variants_are_close(rows):
    scores, labels = _arrays(rows)
    fpr, tpr, _ = roc_curve(scores, labels)
    value = eer(scores, labels)
    assert 0.0 <= value <= 1.0
    # the crossing lies on some ROC segment where FPR = FNR
    found = False
    for i in range(1, fpr.size):
        g0, g1 = fpr[i - 1] + tpr[i - 1] - 1, fpr[i] + tpr[i] - 1
        if g0 <= 0 <= g1:
            w = 0.0 if g1 == g0 else -g0 / (g1 - g0)
            assert fpr[i - 1] + w * (fpr[i] - fpr[i - 1]) == pytest.approx(value, abs=1e-12)
            assert 1 - (tpr[i - 1] + w * (tpr[i] - tpr[i - 1])) == pytest.approx(value, abs=1e-12)
            found = True
            break
    assert found
    closest = eer_closest_point(scores, labels)
    fnr = 1 - tpr
    i = int(np.argmin(np.abs(fpr - fnr)))
    assert closest == pytest.approx((fpr[i] + fnr[i]) / 2, abs=1e-15)


TRANSFORMS = [
    lambda x: 3.0 * x + 7.0,
    lambda x: np.exp(x / 10.0),
    lambda x: x**3 + x,
    lambda x: 1.0 / (1.0 + np.exp(-x / 5.0)),  # logits -> probabilities
]


@settings(max_examples=120, deadline=None)
@given(scored_samples, st.sampled_from(range(len(TRANSFORMS))), st.integers(-41, 41))
def test_metrics_invariant_under_increasing_transforms(rows, which, threshold):
    scores, labels = _arrays(rows)
    f = TRANSFORMS[which]
    a = evaluate(scores, labels, float(threshold))
    b = evaluate(f(scores), labels, float(f(np.float64(threshold))))
    fa, ta, _ = roc_curve(scores, labels)
    fb, tb, _ = roc_curve(f(scores), labels)
    np.testing.assert_array_equal(fa, fb)
    np.testing.assert_array_equal(ta, tb)
    for key in a.tpr_at_fpr:
        assert a.tpr_at_fpr[key].empirical == b.tpr_at_fpr[key].empirical
        assert a.tpr_at_fpr[key].interpolated == b.tpr_at_fpr[key].interpolated
    assert (a.eer, a.eer_closest_point, a.auc) == (b.eer, b.eer_closest_point, b.auc)
    assert (a.apcer, a.bpcer, a.acer) == (b.apcer, b.bpcer, b.acer)


@settings(max_examples=120, deadline=None)
@given(scored_samples, st.lists(st.floats(-50, 50), min_size=2, max_size=8))
def test_apcer_and_bpcer_are_monotone_in_threshold(rows, thresholds):
    scores, labels = _arrays(rows)
    ts = sorted(thresholds)
    a = [apcer(scores, labels, t) for t in ts]
    b = [bpcer(scores, labels, t) for t in ts]
    assert all(x >= y for x, y in zip(a, a[1:]))  # APCER non-increasing
    assert all(x <= y for x, y in zip(b, b[1:]))  # BPCER non-decreasing


def test_small_example_by_hand():
    scores = np.array([0.9, 0.8, 0.8, 0.6, 0.4, 0.3, 0.2])
    labels = np.array([1, 1, 0, 0, 1, 0, 0])
    fpr, tpr, thr = roc_curve(scores, labels)
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.8, 0.6, 0.4, 0.3, 0.2])
    np.testing.assert_allclose(fpr, [0, 0, 0.25, 0.5, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    fpr_d, fnr, _ = det_curve(scores, labels)
    np.testing.assert_allclose(fnr, 1 - tpr)
    assert apcer(scores, labels, 0.6) == 0.5  # 0.8 and 0.6 accepted (>=)
    assert bpcer(scores, labels, 0.6) == pytest.approx(1 / 3)
    e = evaluate(scores, labels, 0.6)
    assert e.acer == pytest.approx((0.5 + 1 / 3) / 2)
    # crossing: g goes -1/3 at (0, 2/3)... between (0.25, 2/3) g=-1/12 and (0.5, 2/3) g=1/6
    assert e.eer == pytest.approx(0.25 + (1 / 12) / (1 / 12 + 1 / 6) * 0.25)


def test_per_attack_type_apcer_and_worst_type():
    scores = np.array([0.9, 0.7, 0.6, 0.2, 0.8, 0.1, 0.95])
    labels = np.array([1, 0, 0, 0, 0, 0, 1])
    types = np.array(["", "4", "4", "4", "5", "5", ""], dtype=object)
    rates = apcer_per_attack_type(scores, labels, types, 0.5)
    assert set(rates) == {"4", "5"}
    assert (rates["4"].n_attack, rates["4"].n_accepted) == (3, 2)
    assert rates["5"].apcer == 0.5
    e = evaluate(scores, labels, 0.5, attack_types=types)
    assert e.worst_attack_type == "4" and e.max_apcer_per_attack_type == pytest.approx(2 / 3)
    assert e.to_json_dict()["apcer_per_attack_type"]["4"]["n_accepted"] == 2


def test_clopper_pearson_against_closed_forms():
    assert clopper_pearson_upper(0, 10) == pytest.approx(1 - 0.05 ** 0.1, abs=1e-15)
    assert clopper_pearson_upper(0, 6614) == pytest.approx(3 / 6614, rel=0.002)
    assert clopper_pearson_upper(10, 10) == 1.0 and clopper_pearson_lower(0, 10) == 0.0
    # k = n - 1: P(X <= n-1) = 1 - p**n = 0.05  ->  p = 0.95 ** (1/n)
    assert clopper_pearson_upper(9, 10) == pytest.approx(0.95 ** 0.1, abs=1e-13)
    # k = 1: P(X >= 1) = 1 - (1-p)**n = 0.05 -> lower bound p = 1 - 0.95 ** (1/n)
    assert clopper_pearson_lower(1, 20) == pytest.approx(1 - 0.95 ** (1 / 20), abs=1e-13)
    lo, hi = clopper_pearson_interval(115, 6614)
    assert lo < 115 / 6614 < hi
    assert rule_of_three(6614) == 3 / 6614
    assert samples_needed_for_zero_error_claim(1e-4) == 29956  # ~3/p


@pytest.mark.parametrize("k, n", [(1, 10), (5, 10), (115, 6614), (3000, 6614), (2, 40252), (17000, 40252)])
def test_clopper_pearson_matches_scipy(k, n):
    stats = pytest.importorskip("scipy.stats", reason="scipy is only an optional cross-check")
    assert clopper_pearson_upper(k, n) == pytest.approx(stats.beta.ppf(0.95, k + 1, n - k), abs=1e-12)
    lo, hi = clopper_pearson_interval(k, n)
    assert lo == pytest.approx(stats.beta.ppf(0.025, k, n - k + 1), abs=1e-12)
    assert hi == pytest.approx(stats.beta.ppf(0.975, k + 1, n - k), abs=1e-12)


def test_target_keys():
    assert [target_key(t) for t in (1e-2, 1e-3, 1e-4, 5e-3, 0.015)] == ["1e-2", "1e-3", "1e-4", "5e-3", "1.5e-2"]


@pytest.mark.parametrize(
    "scores, labels, message",
    [
        ([0.1, float("nan"), 0.3], [0, 1, 1], "NaN"),
        ([0.1, float("inf"), 0.3], [0, 1, 1], "NaN or infinite"),
        ([0.1, 0.2, 0.3], [0, 1, 2], r"0 \(attack\) or 1 \(live\)"),
        ([0.1, 0.2, 0.3], [0, 1, 0.5], r"0 \(attack\) or 1 \(live\)"),
        ([0.1, 0.2, 0.3], ["a", "b", "c"], "labels must be numbers"),
        ([0.1, 0.2], [0, 1, 1], "differ in length"),
        ([0.1, 0.2, 0.3], [0, 0, 0], "no live"),
        ([0.1, 0.2, 0.3], [1, 1, 1], "no attack"),
        ([[0.1, 0.2]], [[0, 1]], "1-D"),
        ([], [], "no live"),
    ],
)
def test_bad_input_is_rejected(scores, labels, message):
    with pytest.raises(InputValidationError, match=message):
        evaluate(scores, labels)
    with pytest.raises(ValueError):  # InputValidationError is a ValueError for generic callers
        roc_curve(scores, labels)


def test_bad_threshold_and_targets():
    scores, labels = [0.2, 0.8], [0, 1]
    with pytest.raises(InputValidationError, match="NaN"):
        apcer(scores, labels, float("nan"))
    with pytest.raises(InputValidationError, match=r"\[0, 1\]"):
        tpr_at_fpr(scores, labels, 1.5)
    with pytest.raises(InputValidationError, match="one entry per sample"):
        apcer_per_attack_type(scores, labels, ["4"], 0.5)
    with pytest.raises(InputValidationError):
        clopper_pearson_upper(5, 3)
