"""The simulator's scenarios: what stands in front of the virtual SR300.

Names are stable strings (datasets, manifests and CLI flags use them). ``attack_type`` is the
CASIA-SURF attack type (1-6) where one applies; the other attacks carry None.
"""
from __future__ import annotations

from dataclasses import dataclass

from sdk.errors import UnknownScenarioError


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    label: int  # 1 = live (bona fide), 0 = attack or no person
    attack_type: int | None  # CASIA-SURF type 1-6, None otherwise
    description: str

    @property
    def kind(self) -> str:
        """Which renderer family builds it: live, print, screen, mask or empty."""
        if self.name == "live":
            return "live"
        if self.name == "empty":
            return "empty"
        if self.name == "screen_replay":
            return "screen"
        if self.name == "mask_3d":
            return "mask"
        return "print"

    @property
    def curved(self) -> bool:
        return self.name.endswith("_curved")

    @property
    def cutouts(self) -> tuple[str, ...]:
        """Face parts cut out of the print ("eyes", "nose", "mouth"); empty for whole prints."""
        if not self.name.startswith("cut_"):
            return ()
        parts = self.name[len("cut_"):].rsplit("_", 1)[0]
        return tuple(parts.split("_"))


_SPECS = (
    ScenarioSpec("live", 1, None, "a real person: 3D face, blinks, small head motion"),
    ScenarioSpec("print_flat", 0, None, "flat printed photo of a face (no holes)"),
    ScenarioSpec("print_curved", 0, None, "printed photo bent into a cylinder (no holes)"),
    ScenarioSpec("cut_eyes_flat", 0, 1, "CASIA-SURF type 1: flat print, eyes cut out"),
    ScenarioSpec("cut_eyes_curved", 0, 2, "CASIA-SURF type 2: curved print, eyes cut out"),
    ScenarioSpec("cut_eyes_nose_flat", 0, 3, "CASIA-SURF type 3: flat print, eyes and nose cut out"),
    ScenarioSpec("cut_eyes_nose_curved", 0, 4, "CASIA-SURF type 4: curved print, eyes and nose cut out"),
    ScenarioSpec(
        "cut_eyes_nose_mouth_flat", 0, 5, "CASIA-SURF type 5: flat print, eyes, nose and mouth cut out"
    ),
    ScenarioSpec(
        "cut_eyes_nose_mouth_curved", 0, 6, "CASIA-SURF type 6: curved print, eyes, nose and mouth cut out"
    ),
    ScenarioSpec("screen_replay", 0, None, "a face video replayed on a phone or tablet screen"),
    ScenarioSpec("mask_3d", 0, None, "a rigid face-shaped 3D mask with a printed face"),
    ScenarioSpec("empty", 0, None, "background only, no person in view"),
)

#: name -> spec, in a stable order.
SCENARIOS: dict[str, ScenarioSpec] = {spec.name: spec for spec in _SPECS}


def list_scenarios() -> list[str]:
    return list(SCENARIOS)


def get_scenario(name: str) -> ScenarioSpec:
    try:
        return SCENARIOS[name]
    except (KeyError, TypeError):
        raise UnknownScenarioError(
            f"unknown scenario {name!r}; valid scenarios: {', '.join(SCENARIOS)}"
        ) from None
