"""Two models on the same crops: the gap in TPR at a fixed FPR, with a paired bootstrap.

"Within 0.3 points of the ensemble's TPR@FPR=1e-3" is a statement about a difference of two
figures measured on one set. Each figure alone is noisy (at FPR 1e-3 the threshold sits on one
or two attack scores), but the two models score the same crops, so their errors are correlated:
resampling crops and recomputing both figures on every resample gives the spread of the
difference itself (a paired bootstrap). Live and attack crops are resampled within their class,
so every resample keeps the set's class sizes and the number of attacks FPR 1e-3 allows.

The resampling treats every crop as an independent session. Sets with several frames of one
subject (the s4 lists: 2 frames each) understate the spread; `runs/ho20` has one frame per subject.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from calibration.metrics import check_rate, check_scores_labels
from calibration.threshold import allowed_accepts

VERDICT_MET = "met"
VERDICT_NOT_MET = "not met"
VERDICT_UNRESOLVED = "unresolved at this size"


def attacks_allowed(n_attack: int, target: float) -> int:
    """The most attacks k that may score as live with k / n_attack <= target (as the ROC compares;
    the same count threshold_for_apcer allows)."""
    return allowed_accepts(n_attack, target, "empirical")


def tpr_at_fpr_rows(live: np.ndarray, attack: np.ndarray, target: float) -> np.ndarray:
    """Empirical TPR at FPR <= target for every row of (rows, n_live) and (rows, n_attack) scores.

    The same figure as ``calibration.metrics.tpr_at_fpr(...)["empirical"]``: with k attacks
    allowed, the lowest allowed ROC threshold lies just above the (k+1)-th highest attack score,
    so TPR is the share of live scores strictly above it (a live score tied with that attack
    cannot be accepted without it).
    """
    live = np.atleast_2d(np.asarray(live, np.float64))
    attack = np.atleast_2d(np.asarray(attack, np.float64))
    n_attack = attack.shape[1]
    k = attacks_allowed(n_attack, target)
    if k >= n_attack:
        return np.ones(live.shape[0])
    bar = np.partition(attack, n_attack - 1 - k, axis=1)[:, n_attack - 1 - k]
    return np.mean(live > bar[:, None], axis=1)


@dataclass(frozen=True)
class TprGap:
    """model - reference in empirical TPR at one FPR, on the same crops, with its bootstrap bounds.

    ``lower_95`` / ``upper_95`` are one-sided 95 % bounds (the 5th and 95th percentiles of the
    resampled gaps). The goal "model >= reference - tolerance" is ``met`` when lower_95 >=
    -tolerance, ``not met`` when upper_95 < -tolerance, and unresolved otherwise.
    """

    target_fpr: float
    n_live: int
    n_attack: int
    attacks_allowed: int
    tpr_model: float
    tpr_reference: float
    gap: float
    lower_95: float
    upper_95: float
    tolerance: float
    verdict: str
    resamples: int
    seed: int

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_tpr_gap(model_scores: Any, reference_scores: Any, labels: Any, target: float, *, tolerance: float,
                   resamples: int = 2000, seed: int = 0, chunk: int = 250) -> TprGap:
    """The gap model - reference in TPR at FPR ``target`` with a paired, class-stratified bootstrap."""
    s_model, y = check_scores_labels(model_scores, labels)
    s_reference, y_reference = check_scores_labels(reference_scores, labels)
    if s_model.shape != s_reference.shape or not np.array_equal(y, y_reference):
        raise ValueError("both models must score the same crops")
    target = check_rate("target FPR", target)
    tolerance = check_rate("tolerance", tolerance)
    if resamples < 100:
        raise ValueError(f"at least 100 resamples are needed for 95 % bounds, got {resamples}")
    live_rows, attack_rows = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if live_rows.size == 0 or attack_rows.size == 0:
        raise ValueError("the set needs live and attack crops")

    def tpr(scores: np.ndarray, live_idx: np.ndarray, attack_idx: np.ndarray) -> np.ndarray:
        return tpr_at_fpr_rows(scores[live_idx], scores[attack_idx], target)

    point_model = float(tpr(s_model, live_rows, attack_rows)[0])
    point_reference = float(tpr(s_reference, live_rows, attack_rows)[0])
    rng = np.random.default_rng(seed)
    gaps = []
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        live_idx = live_rows[rng.integers(0, live_rows.size, (rows, live_rows.size))]
        attack_idx = attack_rows[rng.integers(0, attack_rows.size, (rows, attack_rows.size))]
        gaps.append(tpr(s_model, live_idx, attack_idx) - tpr(s_reference, live_idx, attack_idx))
    resampled = np.concatenate(gaps)
    lower, upper = (float(v) for v in np.percentile(resampled, [5.0, 95.0]))
    # A hair of float slack: a gap of exactly -tolerance (e.g. 3 of 1,000 crops at 0.3 points) meets it.
    slack = 1e-12
    if lower >= -tolerance - slack:
        verdict = VERDICT_MET
    elif upper < -tolerance - slack:
        verdict = VERDICT_NOT_MET
    else:
        verdict = VERDICT_UNRESOLVED
    return TprGap(target_fpr=target, n_live=int(live_rows.size), n_attack=int(attack_rows.size),
                  attacks_allowed=attacks_allowed(int(attack_rows.size), target), tpr_model=point_model,
                  tpr_reference=point_reference, gap=point_model - point_reference, lower_95=lower, upper_95=upper,
                  tolerance=tolerance, verdict=verdict, resamples=int(resamples), seed=int(seed))
