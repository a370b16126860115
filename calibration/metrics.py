"""Presentation-attack-detection metrics in ISO/IEC 30107-3 vocabulary (numpy + math only).

Conventions used everywhere in this module:

* a score is P(live); a higher score means "more bona fide";
* labels: 1 = live (bona fide presentation), 0 = attack (presentation attack);
* a sample is *accepted as live* when ``score >= threshold`` (the same rule the device session
  and ``sdk.fusion`` apply), so
  APCER(t) = #{attacks with score >= t} / #attacks  (attacks wrongly accepted),
  BPCER(t) = #{live with score < t} / #live         (bona fide wrongly rejected),
  ACER = (APCER + BPCER) / 2;
* on the ROC, positive = live: FPR = APCER and TPR = 1 - BPCER.

The ROC is built exactly like scikit-learn's ``roc_curve(drop_intermediate=False)`` (the
reference solution's metric code used it) so numbers can be compared with published ones
without depending on scikit-learn.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from sdk.errors import InputValidationError

#: The operating points the CASIA-SURF challenge and the paper report TPR at.
DEFAULT_FPR_TARGETS: tuple[float, ...] = (1e-2, 1e-3, 1e-4)


# --- input checks ------------------------------------------------------------------------------
def check_scores_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return (scores float64, labels int8) or raise InputValidationError saying what is wrong.

    Scores must be finite (a NaN would silently fall on the "reject" side of every comparison),
    labels exactly 0 or 1, lengths equal, and both classes present (every rate here divides by
    the size of one class).
    """
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputValidationError("scores must be numbers") from None
    try:
        raw = np.asarray(labels)
        y = raw.astype(np.float64)
    except (TypeError, ValueError):
        raise InputValidationError("labels must be numbers 0 (attack) or 1 (live)") from None
    if s.ndim != 1 or y.ndim != 1:
        raise InputValidationError(f"scores and labels must be 1-D, got shapes {s.shape} and {y.shape}")
    if s.shape[0] != y.shape[0]:
        raise InputValidationError(f"scores and labels differ in length: {s.shape[0]} scores, {y.shape[0]} labels")
    if not np.isfinite(s).all():
        bad = int(np.flatnonzero(~np.isfinite(s))[0])
        raise InputValidationError(f"scores contain NaN or infinite values (first at index {bad})")
    bad_labels = ~((y == 0) | (y == 1))
    if bad_labels.any():
        index = int(np.flatnonzero(bad_labels)[0])
        raise InputValidationError(f"labels must be 0 (attack) or 1 (live); index {index} holds {raw[index].item()!r}")
    y = y.astype(np.int8)
    n_live = int(y.sum())
    if n_live == 0:
        raise InputValidationError("no live (bona fide, label 1) samples: BPCER and TPR are undefined")
    if n_live == y.shape[0]:
        raise InputValidationError("no attack (label 0) samples: APCER and FPR are undefined")
    return s, y


def _check_threshold(threshold: Any) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise InputValidationError(f"threshold must be a number, got {threshold!r}") from None
    if math.isnan(value):
        raise InputValidationError("threshold must not be NaN")
    return value


def check_rate(name: str, value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise InputValidationError(f"{name} must be a number, got {value!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise InputValidationError(f"{name} must lie in [0, 1], got {value!r}")
    return rate


# --- ROC / DET ---------------------------------------------------------------------------------
def roc_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) with positive = live, as sklearn ``roc_curve(drop_intermediate=False)``.

    Thresholds are the distinct scores in descending order, preceded by +inf (the point (0, 0):
    nothing accepted). Point i is the rate of samples with ``score >= thresholds[i]``; equal
    scores form one group, so a live/attack tie gives a diagonal step rather than two points.
    """
    s, y = check_scores_labels(scores, labels)
    order = np.argsort(s, kind="mergesort")[::-1]
    s_sorted = s[order]
    y_sorted = y[order].astype(np.int64)
    # Index of the last sample of every group of equal scores.
    last_of_group = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[last_of_group]
    fps = 1 + last_of_group - tps
    tps = np.r_[0, tps]
    fps = np.r_[0, fps]
    thresholds = np.r_[np.inf, s_sorted[last_of_group]]
    return fps / fps[-1], tps / tps[-1], thresholds


def det_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, fnr, thresholds): the ROC's points as APCER vs BPCER, for DET plots."""
    fpr, tpr, thresholds = roc_curve(scores, labels)
    return fpr, 1.0 - tpr, thresholds


def auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Area under a ROC by the trapezoidal rule (ties count half, as in the Mann-Whitney U)."""
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


# --- TPR at FPR --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TprAtFpr:
    """TPR (= 1 - BPCER) at a target FPR (= APCER), in both conventions found in the literature.

    ``empirical``: the largest TPR over ROC points whose FPR <= target (no interpolation: the
    reference solution's convention; an operating point that exists on this data).
    ``interpolated``: ``np.interp(target, fpr, tpr)`` (later CASIA code), a point on the
    straight line between two ROC points. ``empirical_threshold`` is the score threshold of the
    empirical point.
    """

    target: float
    empirical: float
    interpolated: float
    empirical_threshold: float

    def to_json_dict(self) -> dict[str, float]:
        return {
            "empirical": self.empirical,
            "interpolated": self.interpolated,
            "empirical_threshold": _json_float(self.empirical_threshold),
        }


def tpr_at_fpr_from_roc(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray, target: float) -> TprAtFpr:
    target = check_rate("target FPR", target)
    allowed = np.flatnonzero(fpr <= target)  # never empty: fpr[0] == 0
    # tpr is non-decreasing along the curve, so the last allowed point has the largest TPR.
    best = int(allowed[-1])
    return TprAtFpr(target, float(tpr[best]), float(np.interp(target, fpr, tpr)), float(thresholds[best]))


def tpr_at_fpr(scores: Any, labels: Any, target: float) -> dict[str, float]:
    """{"empirical": ..., "interpolated": ...} TPR at FPR = target (see TprAtFpr)."""
    point = tpr_at_fpr_from_roc(*roc_curve(scores, labels), target)
    return {"empirical": point.empirical, "interpolated": point.interpolated}


# --- error rates at a threshold ----------------------------------------------------------------
def apcer(scores: Any, labels: Any, threshold: float) -> float:
    """Share of attacks accepted as live (score >= threshold)."""
    s, y = check_scores_labels(scores, labels)
    t = _check_threshold(threshold)
    return float(np.mean(s[y == 0] >= t))


def bpcer(scores: Any, labels: Any, threshold: float) -> float:
    """Share of live (bona fide) samples rejected (score < threshold)."""
    s, y = check_scores_labels(scores, labels)
    t = _check_threshold(threshold)
    return float(np.mean(s[y == 1] < t))


def acer(scores: Any, labels: Any, threshold: float) -> float:
    """(APCER + BPCER) / 2 at one threshold."""
    return (apcer(scores, labels, threshold) + bpcer(scores, labels, threshold)) / 2.0


@dataclass(frozen=True)
class AttackTypeRate:
    """APCER of one attack type, with its counts and one-sided 95 % Clopper-Pearson bound."""

    attack_type: str
    n_attack: int
    n_accepted: int
    apcer: float
    apcer_upper_95: float

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "n_attack": self.n_attack,
            "n_accepted": self.n_accepted,
            "apcer": self.apcer,
            "apcer_upper_95": self.apcer_upper_95,
        }


def apcer_per_attack_type(scores: Any, labels: Any, attack_types: Any, threshold: float) -> dict[str, AttackTypeRate]:
    """APCER of each attack type at ``threshold``; keys are the types as strings, sorted.

    ``attack_types`` has one entry per sample; entries of live samples are ignored (any value).
    """
    s, y = check_scores_labels(scores, labels)
    t = _check_threshold(threshold)
    types = np.asarray(attack_types, dtype=object)
    if types.ndim != 1 or types.shape[0] != s.shape[0]:
        raise InputValidationError(f"attack_types must have one entry per sample ({s.shape[0]}), got shape {types.shape}")
    attack = y == 0
    keys = np.array([str(v) for v in types[attack]], dtype=object)
    accepted = s[attack] >= t
    result: dict[str, AttackTypeRate] = {}
    for key in sorted(set(keys.tolist())):
        mask = keys == key
        n, k = int(mask.sum()), int(accepted[mask].sum())
        result[key] = AttackTypeRate(key, n, k, k / n, clopper_pearson_upper(k, n, 0.95))
    return result


def worst_attack_type(rates: Mapping[str, AttackTypeRate]) -> str | None:
    """The type with the highest APCER (ISO/IEC 30107-3 reports the maximum); ties: first key."""
    if not rates:
        return None
    return max(rates, key=lambda key: rates[key].apcer)


# --- EER ---------------------------------------------------------------------------------------
def eer_from_roc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """EER where the ROC, drawn with straight segments, crosses FPR = FNR (= 1 - TPR).

    g = FPR - FNR = FPR + TPR - 1 rises strictly along the curve from -1 at (0, 0) to +1 at
    (1, 1) (every point adds at least one sample), so it crosses zero exactly once; the EER is
    FPR at that crossing, linearly interpolated between the two ROC points around it. On a
    vertical step (a run of live samples) this is the FPR of the step.
    """
    g = fpr + tpr - 1.0
    i = int(np.argmax(g >= 0.0))  # first point at or past the diagonal; g[-1] == 1 so exists
    if g[i] == 0.0 or i == 0:
        return float(fpr[i])
    w = -g[i - 1] / (g[i] - g[i - 1])
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))


def eer(scores: Any, labels: Any) -> float:
    """Equal error rate by the ROC/diagonal crossing rule (see eer_from_roc)."""
    fpr, tpr, _ = roc_curve(scores, labels)
    return eer_from_roc(fpr, tpr)


def eer_closest_point_from_roc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """EER variant: take the ROC point where |FPR - FNR| is smallest, report (FPR + FNR) / 2.

    Common in challenge code (e.g. bob/pytorch helpers); on a staircase ROC it can be half the
    crossing value. Ties in |FPR - FNR|: the first point along the curve (highest threshold).
    """
    fnr = 1.0 - tpr
    i = int(np.argmin(np.abs(fpr - fnr)))
    return float((fpr[i] + fnr[i]) / 2.0)


def eer_closest_point(scores: Any, labels: Any) -> float:
    fpr, tpr, _ = roc_curve(scores, labels)
    return eer_closest_point_from_roc(fpr, tpr)


# --- exact binomial confidence bounds ----------------------------------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    # Convergence needs O(sqrt(max(a, b))) terms; the cap only guards against a bug.
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            return h
    raise ArithmeticError(f"incomplete beta did not converge (a={a}, b={b}, x={x})")  # pragma: no cover


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1 (the Beta(a, b) CDF at x)."""
    if not (a > 0 and b > 0):
        raise InputValidationError(f"incomplete beta needs a, b > 0, got a={a}, b={b}")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    # The continued fraction converges fast on this side of the mean; use symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _beta_quantile(q: float, a: float, b: float) -> float:
    """x with I_x(a, b) = q, by bisection (I is increasing in x); accurate to ~1e-15 absolute."""
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if mid in (lo, hi):
            break
        if regularized_incomplete_beta(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def _check_counts(k: Any, n: Any) -> tuple[int, int]:
    if int(k) != k or int(n) != n:
        raise InputValidationError(f"counts must be integers, got k={k!r}, n={n!r}")
    k, n = int(k), int(n)
    if n <= 0 or not 0 <= k <= n:
        raise InputValidationError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    return k, n


def _check_confidence(confidence: Any) -> float:
    value = float(confidence)
    if not 0.0 < value < 1.0:
        raise InputValidationError(f"confidence must lie in (0, 1), got {confidence!r}")
    return value


def clopper_pearson_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact upper bound p_u on a proportion after k events in n trials.

    p_u solves P(X <= k | n, p_u) = 1 - confidence, i.e. p_u is the Beta(k+1, n-k) quantile at
    ``confidence``. "APCER <= p_u with 95 % confidence" is the claim an operating point can make;
    for k = 0 it is 1 - 0.05**(1/n), about 3/n (the rule of three).
    """
    k, n = _check_counts(k, n)
    c = _check_confidence(confidence)
    if k == n:
        return 1.0
    if k == 0:
        return 1.0 - (1.0 - c) ** (1.0 / n)  # closed form, exact
    return _beta_quantile(c, k + 1.0, float(n - k))


def clopper_pearson_lower(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided exact lower bound: the Beta(k, n-k+1) quantile at 1 - confidence."""
    k, n = _check_counts(k, n)
    c = _check_confidence(confidence)
    if k == 0:
        return 0.0
    if k == n:
        return (1.0 - c) ** (1.0 / n)
    return _beta_quantile(1.0 - c, float(k), n - k + 1.0)


def clopper_pearson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided exact (Clopper-Pearson) interval: each tail holds (1 - confidence) / 2."""
    c = _check_confidence(confidence)
    one_sided = 1.0 - (1.0 - c) / 2.0
    return clopper_pearson_lower(k, n, one_sided), clopper_pearson_upper(k, n, one_sided)


def rule_of_three(n: int) -> float:
    """3 / n: approximate 95 % upper bound on a rate after zero events in n trials."""
    _check_counts(0, n)
    return 3.0 / int(n)


def samples_needed_for_zero_error_claim(p: float, confidence: float = 0.95) -> int:
    """Smallest n such that zero errors in n trials bound the rate below p (exact; ~3/p at 95 %)."""
    p = check_rate("p", p)
    if p <= 0.0:
        raise InputValidationError("p must be > 0")
    c = _check_confidence(confidence)
    n = math.ceil(math.log(1.0 - c) / math.log1p(-p))
    # Guard against rounding at the boundary of the closed form.
    while 1.0 - (1.0 - c) ** (1.0 / n) > p:
        n += 1
    return n


#: ISO/IEC 30107-3 reports BPCER at these APCERs.
ISO_APCER_TARGETS = (5e-2, 1e-2)


def bpcer_at_apcer(scores: Any, labels: Any, target_apcer: float) -> dict[str, Any]:
    """ISO/IEC 30107-3 "BPCER at APCER = x": the BPCER at the lowest threshold whose empirical
    APCER is <= x. ``supported`` says whether the set holds the ~3/x attacks that figure needs."""
    from calibration.threshold import required_attacks, threshold_for_apcer

    point = threshold_for_apcer(scores, labels, target_apcer)
    return {
        "apcer_target": float(target_apcer),
        "threshold": point.threshold,
        "apcer": point.apcer,
        "bpcer": point.bpcer,
        "bpcer_upper_95": point.bpcer_upper_95,
        "n_attack": point.n_attack,
        "n_live": point.n_live,
        "supported": point.n_attack >= required_attacks(target_apcer),
    }


# --- the full evaluation -----------------------------------------------------------------------
def target_key(target: float) -> str:
    """JSON key of an FPR target: 1e-2 -> "1e-2", 5e-3 -> "5e-3", 0.015 -> "1.5e-2"."""
    mantissa, exponent = f"{float(target):.12e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _json_float(value: float) -> float | None:
    """JSON has no inf/NaN; the +inf ROC threshold is written as null."""
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Evaluation:
    """Every metric of one score set at one threshold. ``to_json_dict`` is the stable shape."""

    n_live: int
    n_attack: int
    tpr_at_fpr: Mapping[str, TprAtFpr]
    threshold: float
    apcer: float
    bpcer: float
    acer: float
    eer: float
    eer_closest_point: float
    auc: float
    n_attack_accepted: int
    n_live_rejected: int
    apcer_upper_95: float
    bpcer_upper_95: float
    rule_of_three_apcer: float
    apcer_per_attack_type: Mapping[str, AttackTypeRate] = field(default_factory=dict)
    worst_attack_type: str | None = None
    #: ISO/IEC 30107-3 "BPCER at APCER = x": key target_key(x) -> bpcer_at_apcer(...)
    bpcer_at_apcer: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def max_apcer_per_attack_type(self) -> float | None:
        if self.worst_attack_type is None:
            return None
        return self.apcer_per_attack_type[self.worst_attack_type].apcer

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "n_live": self.n_live,
            "n_attack": self.n_attack,
            "tpr_at_fpr": {key: point.to_json_dict() for key, point in self.tpr_at_fpr.items()},
            "threshold": self.threshold,
            "apcer": self.apcer,
            "bpcer": self.bpcer,
            "acer": self.acer,
            "eer": self.eer,
            # extras
            "eer_rule": "roc_diagonal_crossing_interpolated",
            "eer_closest_point": self.eer_closest_point,
            "auc": self.auc,
            "n_attack_accepted": self.n_attack_accepted,
            "n_live_rejected": self.n_live_rejected,
            "apcer_upper_95": self.apcer_upper_95,
            "bpcer_upper_95": self.bpcer_upper_95,
            "confidence_bounds": "one-sided 95% Clopper-Pearson",
            "rule_of_three_apcer": self.rule_of_three_apcer,
            "apcer_per_attack_type": {k: v.to_json_dict() for k, v in self.apcer_per_attack_type.items()},
            "worst_attack_type": self.worst_attack_type,
            "max_apcer_per_attack_type": self.max_apcer_per_attack_type,
            "bpcer_at_apcer": {k: dict(v) for k, v in self.bpcer_at_apcer.items()},
        }


def evaluate(
    scores: Any,
    labels: Any,
    threshold: float = 0.5,
    *,
    attack_types: Any | None = None,
    fpr_targets: Sequence[float] | Iterable[float] = DEFAULT_FPR_TARGETS,
) -> Evaluation:
    """All metrics of ``scores`` (P(live)) against ``labels`` (1 live, 0 attack) at ``threshold``."""
    s, y = check_scores_labels(scores, labels)
    t = _check_threshold(threshold)
    fpr, tpr, thresholds = roc_curve(s, y)
    live, attack = s[y == 1], s[y == 0]
    n_live, n_attack = int(live.size), int(attack.size)
    k_attack = int(np.count_nonzero(attack >= t))
    k_live = int(np.count_nonzero(live < t))
    a, b = k_attack / n_attack, k_live / n_live
    per_type = apcer_per_attack_type(s, y, attack_types, t) if attack_types is not None else {}
    return Evaluation(
        n_live=n_live,
        n_attack=n_attack,
        tpr_at_fpr={target_key(x): tpr_at_fpr_from_roc(fpr, tpr, thresholds, x) for x in fpr_targets},
        threshold=t,
        apcer=a,
        bpcer=b,
        acer=(a + b) / 2.0,
        eer=eer_from_roc(fpr, tpr),
        eer_closest_point=eer_closest_point_from_roc(fpr, tpr),
        auc=auc(fpr, tpr),
        n_attack_accepted=k_attack,
        n_live_rejected=k_live,
        apcer_upper_95=clopper_pearson_upper(k_attack, n_attack),
        bpcer_upper_95=clopper_pearson_upper(k_live, n_live),
        rule_of_three_apcer=rule_of_three(n_attack),
        apcer_per_attack_type=per_type,
        worst_attack_type=worst_attack_type(per_type),
        bpcer_at_apcer={target_key(x): bpcer_at_apcer(s, y, x) for x in ISO_APCER_TARGETS},
    )
