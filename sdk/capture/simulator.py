"""SimulatorSource: the virtual SR300 (sdk.sim) as a Source."""
from __future__ import annotations

import time
from typing import Any

from sdk.capture.base import Source, StreamProfile
from sdk.types import DeviceInfo, FrameSet, FrameTruth, Stream


class SimulatorSource(Source):
    """Renders a scenario frame by frame: ``n_frames`` of them, or forever when None.

    With ``real_time=True`` frames are paced at ``fps`` like a camera; otherwise they come as
    fast as they render. ``last_truth`` holds the ground truth of the latest frame.
    """

    def __init__(
        self,
        scenario: str,
        seed: int,
        n_frames: int | None = None,
        fps: float = 30.0,
        real_time: bool = False,
    ) -> None:
        from sdk.sim import Simulator  # the simulator is numpy-only, but keep import cost lazy

        if n_frames is not None and int(n_frames) < 0:
            raise ValueError("n_frames must be >= 0 or None")
        if fps <= 0:
            raise ValueError("fps must be > 0")
        self.scenario = scenario
        self.seed = int(seed)
        self.n_frames = None if n_frames is None else int(n_frames)
        self.fps = float(fps)
        self.real_time = bool(real_time)
        self.simulator: Any = Simulator(scenario, self.seed, fps=self.fps)
        self.last_truth: FrameTruth | None = None
        self._index = 0
        self._t0: float | None = None
        intr = self.simulator.intrinsics
        rate = int(round(self.fps))
        self._profiles = [
            StreamProfile(Stream.DEPTH, "z16", intr.depth.width, intr.depth.height, rate),
            StreamProfile(Stream.IR, "y8", intr.ir.width, intr.ir.height, rate),
            StreamProfile(Stream.COLOR, "rgb8", intr.color.width, intr.color.height, rate),
        ]

    @property
    def device_info(self) -> DeviceInfo:
        return self.simulator.device_info

    @property
    def profiles(self) -> list[StreamProfile]:
        return list(self._profiles)

    @property
    def depth_scale(self) -> float:
        return float(self.simulator.depth_scale)

    def _next_frameset(self) -> FrameSet:
        if self.n_frames is not None and self._index >= self.n_frames:
            raise StopIteration
        if self.real_time:
            now = time.monotonic()
            if self._t0 is None:
                self._t0 = now
            due = self._t0 + self._index / self.fps
            if due > now:
                time.sleep(due - now)
        frameset, truth = self.simulator.render(self._index)
        self._index += 1
        self.last_truth = truth
        return frameset

    def _release(self) -> None:
        close = getattr(self.simulator, "close", None)
        if callable(close):
            close()
