"""Held-out parts of the generator: families of sessions training never sees.

A model evaluated only on sessions drawn like its training data says little about a person or
a condition it has not met. Each family below is a region of the generator's parameter space;
``synth-dataset`` without ``--holdout`` renders none of them (TRAINING_OPTIONS keeps every
session outside all families), and ``synth-dataset --holdout NAME`` renders only that family.

Evaluation code draws a family's subjects deterministically with ``holdout_subjects`` (seed
ranges disjoint from every dataset split, the audit and the acceptance seeds):

    from sdk.sim import Simulator
    from sdk.sim.holdout import holdout_subjects
    for subject in holdout_subjects("yaw_gt20", "live", count=20):
        sim = Simulator(subject.scenario, subject.seed, **subject.options)
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from sdk.errors import InputValidationError
from sdk.sim.scenarios import SCENARIOS

#: Simulator options of every training / in-distribution session: outside every family.
TRAINING_OPTIONS: Mapping[str, Any] = MappingProxyType({
    "distance_range_m": (0.3, 0.8),
    "max_yaw_deg": 20.0,
    "sunlight": False,
    "appearance": "plain",
})
#: First subject seed of the held-out families (dataset seed s adds s * 10,000,000; each family
#: owns 100,000 seeds from HOLDOUT_SEED_BASE + index * 100,000).
HOLDOUT_SEED_BASE = 5_000_000
HOLDOUT_SEEDS_PER_FAMILY = 100_000


@dataclass(frozen=True)
class HoldoutFamily:
    name: str
    description: str
    options: Mapping[str, Any]  # Simulator keyword arguments that put a session in the family
    attack_family: str | None = None  # an attack scenario held out whole (None: a nuisance family)

    def scenarios(self) -> tuple[str, ...]:
        """What evaluation renders for the family: live and the attacks it concerns."""
        if self.attack_family is not None:
            return ("live", self.attack_family)
        return ("live",) + tuple(n for n, s in SCENARIOS.items() if s.label == 0 and n != "empty"
                                 and n not in HELD_OUT_ATTACKS)


def _opts(**changes: Any) -> Mapping[str, Any]:
    return MappingProxyType({**TRAINING_OPTIONS, **changes})


_FAMILIES = (
    HoldoutFamily("yaw_gt20", "faces turned more than 20 degrees (up to 30)", _opts(max_yaw_deg=30.0, min_yaw_deg=20.0)),
    HoldoutFamily("glasses_or_beard", "people with glasses (real lenses) or a beard",
                  _opts(appearance="glasses_or_beard")),
    HoldoutFamily("far_gt08", "faces 0.8-1.1 m from the camera", _opts(distance_range_m=(0.8, 1.1))),
    HoldoutFamily("sunlight", "strong ambient NIR (sunlight): saturated IR, depth dies", _opts(sunlight=True)),
    HoldoutFamily("mask_3d", "the whole 3D-mask attack family (an unseen attack species)", _opts(),
                  attack_family="mask_3d"),
)

#: name -> family, in a stable order.
HOLDOUT_FAMILIES: Mapping[str, HoldoutFamily] = MappingProxyType({f.name: f for f in _FAMILIES})
#: Attack scenarios no training set contains.
HELD_OUT_ATTACKS: tuple[str, ...] = tuple(f.attack_family for f in _FAMILIES if f.attack_family)


def get_holdout(name: str) -> HoldoutFamily:
    try:
        return HOLDOUT_FAMILIES[name]
    except (KeyError, TypeError):
        raise InputValidationError(
            f"unknown holdout family {name!r}; valid families: {', '.join(HOLDOUT_FAMILIES)}"
        ) from None


@dataclass(frozen=True)
class HoldoutSubject:
    family: str
    scenario: str
    seed: int
    options: Mapping[str, Any]


def holdout_seed_base(name: str, dataset_seed: int = 0) -> int:
    index = list(HOLDOUT_FAMILIES).index(get_holdout(name).name)
    return HOLDOUT_SEED_BASE + int(dataset_seed) * 10_000_000 + index * HOLDOUT_SEEDS_PER_FAMILY


def holdout_subjects(name: str, scenario: str, count: int, start: int = 0, dataset_seed: int = 0) -> list[HoldoutSubject]:
    """``count`` subjects of family ``name`` for ``scenario``, numbered from ``start``.

    Seeds: holdout_seed_base(name) + scenario slot * 5,000 + i — the same every call.
    """
    family = get_holdout(name)
    if scenario not in family.scenarios():
        raise InputValidationError(f"holdout {name!r} renders {family.scenarios()}, not {scenario!r}")
    if count < 0 or start < 0 or start + count > 5_000:
        raise InputValidationError(f"holdout subjects are numbered 0..4999, got start={start} count={count}")
    slot = list(SCENARIOS).index(scenario)
    base = holdout_seed_base(name, dataset_seed) + slot * 5_000
    return [HoldoutSubject(name, scenario, base + start + i, family.options) for i in range(count)]


def session_families(sim: Any, yaw_deg: "list[float]", distance_m: "list[float]") -> tuple[str, ...]:
    """The held-out families (and other regions outside TRAINING_OPTIONS) a rendered session of
    the full generator falls into; () means in-distribution: a session training could have drawn.

    ``sim`` is the Simulator that rendered it; ``yaw_deg`` / ``distance_m`` its frames' truth.
    Evaluations of full-distribution recordings (synth-bag, tools/evaluate_recordings.py) use it
    to report in-distribution and held-out figures apart.
    """
    families: list[str] = []
    if yaw_deg and max(abs(float(v)) for v in yaw_deg) > TRAINING_OPTIONS["max_yaw_deg"]:
        families.append("yaw_gt20")
    people = [p for p in (getattr(sim.scene, "idn", None), getattr(sim.scene, "content_idn", None)) if p is not None]
    if any(p.glasses or p.beard > 0 for p in people):
        families.append("glasses_or_beard")
    near, far = TRAINING_OPTIONS["distance_range_m"]
    median_m = float(sorted(distance_m)[len(distance_m) // 2]) if distance_m else None
    if median_m is not None and median_m > far:
        families.append("far_gt08")
    if sim.profile.is_sunlit:
        families.append("sunlight")
    if sim.spec.name in HELD_OUT_ATTACKS:
        families.append(sim.spec.name)
    # Not a named family, but outside the training ranges all the same (closer than 0.3 m).
    if median_m is not None and median_m < near:
        families.append("near_lt03")
    # Colour exposure scaled beyond the camera profile's range (calibration recordings only).
    if getattr(sim, "exposure_scale", 1.0) != 1.0:
        families.append("exposure_scaled")
    return tuple(families)
