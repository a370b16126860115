"""Virtual Intel RealSense SR300: live people and presentation attacks, rendered deterministically.

    from sdk.sim import Simulator
    sim = Simulator("live", seed=7)
    frames, truth = sim.render(0)
"""
from __future__ import annotations

from sdk.sim.scenarios import SCENARIOS, ScenarioSpec, get_scenario, list_scenarios
from sdk.sim.simulator import Simulator

__all__ = ["SCENARIOS", "ScenarioSpec", "Simulator", "get_scenario", "list_scenarios"]
