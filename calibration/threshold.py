"""Operating points: the threshold on P(live) that meets a target APCER on a calibration set.

An OperatingPoint is stored in model manifests (``operating_points.points.<name>``) and read back
by the device session, so ``to_dict``/``from_dict`` round-trip exactly (floats are written as
Python floats; JSON keeps them bit-exact).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

from calibration.metrics import check_rate, check_scores_labels, clopper_pearson_upper
from sdk.errors import InputValidationError, UnsupportedOperatingPointError

#: How the number of attacks a threshold may let through is chosen:
#: "empirical": the empirical APCER meets the target (the calibration set's own rate);
#: "upper_95": the one-sided 95 % Clopper-Pearson upper bound meets it (what the point can claim).
BOUNDS = ("empirical", "upper_95")


def required_attacks(target_apcer: float) -> int:
    """Attack presentations needed to offer a target APCER t: ceil(3 / t) (the rule of three;
    zero accepted out of that many bounds the APCER below t with 95 % confidence)."""
    target = check_rate("target_apcer", target_apcer)
    if target <= 0.0:
        return math.inf  # type: ignore[return-value]  # no finite set can support APCER 0
    return math.ceil(3.0 / target - 1e-9)


def check_support(name: str, target_apcer: float, n_attack: int) -> None:
    """Refuse an operating point that the attack count cannot support (typed error, with the need)."""
    need = required_attacks(target_apcer)
    if n_attack < need:
        raise UnsupportedOperatingPointError(name, float(target_apcer), int(n_attack), need)


def allowed_accepts(n_attack: int, target: float, bound: str) -> int:
    """The most attacks a threshold may accept on this set under ``bound``."""
    if bound not in BOUNDS:
        raise InputValidationError(f"bound must be one of {BOUNDS}, got {bound!r}")
    if bound == "upper_95":
        allowed = -1
        while allowed + 1 < n_attack and clopper_pearson_upper(allowed + 1, n_attack, 0.95) <= target:
            allowed += 1
        return allowed  # -1: not even zero accepted attacks can claim the target
    # The same float division the reported APCER uses, so that target = k/n allows exactly k
    # whatever the rounding of target * n.
    allowed = min(n_attack, int(math.floor(target * n_attack)))
    while allowed < n_attack and (allowed + 1) / n_attack <= target:
        allowed += 1
    while allowed > 0 and allowed / n_attack > target:
        allowed -= 1
    return allowed


@dataclass(frozen=True)
class OperatingPoint:
    """A named threshold and the error rates it had on the set it was calibrated on.

    ``apcer_upper_95`` is the one-sided 95 % Clopper-Pearson upper bound of the APCER: the rate
    the point can *claim*. With few attacks it is far above ``apcer`` (zero accepted attacks out
    of n only proves APCER < ~3/n).
    """

    name: str
    threshold: float
    target_apcer: float
    apcer: float
    bpcer: float
    n_attack: int
    n_live: int
    apcer_upper_95: float
    #: How the threshold was chosen: "min_bpcer_at_target_apcer" (threshold_for_apcer) or
    #: "centred_in_admissible_interval" (threshold_with_margin).
    rule: str = "min_bpcer_at_target_apcer"
    #: The BPCER budget of threshold_with_margin (None for threshold_for_apcer).
    max_bpcer: float | None = None
    #: One-sided 95 % Clopper-Pearson upper bound of the BPCER, and the raw counts.
    bpcer_upper_95: float | None = None
    n_attack_accepted: int | None = None
    n_live_rejected: int | None = None
    #: "empirical" or "upper_95" (see BOUNDS): what the target APCER was held to.
    bound: str = "empirical"
    #: Attack presentations the target needs (rule of three); None for points made before it was stored.
    required_attacks: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputValidationError("OperatingPoint.name must be a non-empty string")
        for key in ("threshold", "target_apcer", "apcer", "bpcer", "apcer_upper_95"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputValidationError(f"OperatingPoint.{key} must be a finite number, got {value!r}")
            object.__setattr__(self, key, float(value))
        for key in ("target_apcer", "apcer", "bpcer", "apcer_upper_95"):
            check_rate(f"OperatingPoint.{key}", getattr(self, key))
        for key in ("n_attack", "n_live"):
            value = getattr(self, key)
            if isinstance(value, bool) or int(value) != value or int(value) <= 0:
                raise InputValidationError(f"OperatingPoint.{key} must be a positive integer, got {value!r}")
            object.__setattr__(self, key, int(value))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str | None = None) -> "OperatingPoint":
        """Inverse of to_dict. ``name`` fills in the name when the manifest keys points by name."""
        fields = ("threshold", "target_apcer", "apcer", "bpcer", "n_attack", "n_live", "apcer_upper_95")
        missing = [key for key in fields if key not in data]
        chosen = data.get("name", name)
        if chosen is None:
            missing.insert(0, "name")
        if missing:
            raise InputValidationError(f"operating point {chosen!r} lacks {', '.join(missing)}")
        optional = {key: data[key] for key in ("rule", "max_bpcer", "bpcer_upper_95", "n_attack_accepted",
                                               "n_live_rejected", "bound", "required_attacks") if key in data}
        return cls(name=chosen, **{key: data[key] for key in fields}, **optional)


def threshold_for_apcer(scores: Any, labels: Any, target_apcer: float, name: str = "default", *,
                        bound: str = "empirical", require_support: bool = False) -> OperatingPoint:
    """The smallest threshold t whose empirical APCER(t) = #{attack score >= t} / n_attack <= target.

    Lower thresholds reject fewer live users, so the smallest admissible one gives the lowest
    BPCER at that APCER. With m = floor(target * n_attack) attacks allowed through, the set of
    admissible t is the open interval above the (m+1)-th highest attack score; its smallest
    float is ``np.nextafter(that score, +inf)``: an attack scoring exactly that value is rejected
    (acceptance is ``score >= t``). When every attack may pass (target >= 1), t is the lowest
    score of all, which accepts everyone.

    The threshold sits right at an attack score by design: it is the empirical operating point,
    and ``apcer_upper_95`` says how much that figure can be trusted. Note that scores in [0, 1]
    with an attack at exactly 1.0 and target 0 give a threshold above 1, which the SDK's manifest
    check refuses: such a model cannot meet the target on this set.

    ``bound="upper_95"`` holds the 95 % upper bound of the APCER, not the empirical rate, to the
    target (zero accepted attacks when the set has about 3/t of them). ``require_support``
    refuses (UnsupportedOperatingPointError) a target the set has too few attacks for (3/t).
    """
    s, y = check_scores_labels(scores, labels)
    target = check_rate("target_apcer", target_apcer)
    attack = np.sort(s[y == 0])[::-1]
    live = s[y == 1]
    n_attack, n_live = int(attack.size), int(live.size)
    if require_support:
        check_support(name, target, n_attack)
    allowed = allowed_accepts(n_attack, target, bound)
    if allowed < 0:
        raise UnsupportedOperatingPointError(name, target, n_attack, required_attacks(target))
    if allowed >= n_attack:
        threshold = float(s.min())
    else:
        threshold = float(np.nextafter(attack[allowed], np.inf))
    accepted = int(np.count_nonzero(attack >= threshold))
    rejected = int(np.count_nonzero(live < threshold))
    return OperatingPoint(
        name=name,
        threshold=threshold,
        target_apcer=target,
        apcer=accepted / n_attack,
        bpcer=rejected / n_live,
        n_attack=n_attack,
        n_live=n_live,
        apcer_upper_95=clopper_pearson_upper(accepted, n_attack, 0.95),
        bpcer_upper_95=clopper_pearson_upper(rejected, n_live, 0.95),
        n_attack_accepted=accepted,
        n_live_rejected=rejected,
        bound=bound,
        required_attacks=_required_or_none(target),
    )


def _required_or_none(target: float) -> int | None:
    need = required_attacks(target)
    return need if isinstance(need, int) else None


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    return math.log(p / (1.0 - p))


def threshold_with_margin(
    scores: Any, labels: Any, target_apcer: float, max_bpcer: float, name: str = "default", *,
    bound: str = "empirical", require_support: bool = False,
) -> OperatingPoint:
    """A threshold that meets APCER <= target_apcer AND BPCER <= max_bpcer on this set, with margin.

    ``threshold_for_apcer`` returns the lowest admissible threshold, which sits right on top of
    the highest accepted attack score: fine when attack and live scores overlap, but when the
    calibration set separates them it leaves no margin at all for attacks the set did not hold.
    Here the admissible interval is [t_apcer, t_bpcer], where t_bpcer is the highest threshold
    that still rejects at most max_bpcer of the live samples; the threshold is its middle on the
    logit scale (scores are probabilities), so both unseen attacks and live users keep a margin.
    When the interval is empty (the two targets conflict) security wins: t_apcer is returned.
    """
    s, y = check_scores_labels(scores, labels)
    budget = check_rate("max_bpcer", max_bpcer)
    low = threshold_for_apcer(s, y, target_apcer, name=name, bound=bound, require_support=require_support)
    live = np.sort(s[y == 1])
    allowed = min(live.size - 1, int(math.floor(budget * live.size)))
    while allowed > 0 and allowed / live.size > budget:
        allowed -= 1
    high = float(live[allowed])  # live scores < high are rejected: at most `allowed` of them
    if high <= low.threshold:
        threshold = low.threshold
    else:
        mid = 0.5 * (_logit(low.threshold) + _logit(high))
        threshold = float(min(max(1.0 / (1.0 + math.exp(-mid)), low.threshold), high))
    attack = s[y == 0]
    accepted = int(np.count_nonzero(attack >= threshold))
    rejected = int(np.count_nonzero(live < threshold))
    return OperatingPoint(
        name=name,
        threshold=threshold,
        target_apcer=low.target_apcer,
        apcer=accepted / attack.size,
        bpcer=rejected / live.size,
        n_attack=int(attack.size),
        n_live=int(live.size),
        apcer_upper_95=clopper_pearson_upper(accepted, int(attack.size), 0.95),
        rule="centred_in_admissible_interval",
        max_bpcer=budget,
        bpcer_upper_95=clopper_pearson_upper(rejected, int(live.size), 0.95),
        n_attack_accepted=accepted,
        n_live_rejected=rejected,
        bound=bound,
        required_attacks=low.required_attacks,
    )
