"""open_source: one entry point from "what the user named" to a Source."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sdk.capture.base import Source
from sdk.errors import InputValidationError


def open_source(spec: Any = None, **options: Any) -> Source:
    """None -> the first SR300; a path ending in .bag -> BagReplay; a simulator scenario name
    -> SimulatorSource (seed 0 unless ``seed=`` is given); a Source -> itself.

    ``options`` go to the chosen class (e.g. frame_timeout_s, loop, seed, n_frames).
    """
    if isinstance(spec, Source):
        if options:
            raise InputValidationError("options cannot be applied to an already opened Source")
        return spec
    if spec is None:
        from sdk.capture.camera import RealSenseCamera

        return RealSenseCamera(**options)
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        if text.lower().endswith(".bag"):
            from sdk.capture.replay import BagReplay

            return BagReplay(Path(text), **options)
        from sdk.sim import list_scenarios

        if text in list_scenarios():
            from sdk.capture.simulator import SimulatorSource

            seed = options.pop("seed", 0)
            return SimulatorSource(text, seed, **options)
        raise InputValidationError(
            f"cannot open source {text!r}: not a .bag path and not a simulator scenario "
            f"({', '.join(list_scenarios())}); use None for the first connected SR300"
        )
    raise InputValidationError(
        f"cannot open a source from {type(spec).__name__}: pass None (camera), a .bag path, a scenario name or a Source"
    )
