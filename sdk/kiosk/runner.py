"""The kiosk's check loop: one `LivenessSession.check()` after another, in a background thread.

Sources (``--source``):
- ``sim`` (the default): the virtual SR300 cycling live and attack scenarios (and an empty scene,
  which shows the attract screen), a fresh subject seed every attempt;
- ``camera``: the first connected SR300 (one session kept open, checks back to back);
- a comma-separated list of .bag recordings and/or scenario names, cycled.

Every check goes through the public session API with the ``on_frame`` hook, which hands over the
FrameSet and its FrameOutcome (views, face box, per-frame score or gate reasons). Recordings and
the simulator are paced at ``pace_fps`` so a person can watch them; the camera paces itself.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from sdk.errors import InputValidationError
from sdk.kiosk.state import KioskState

#: The simulator cycle: (scenario, what a correct check says). Attacks of every family, live faces
#: in between, an empty scene for the attract screen.
KIOSK_SEQUENCE: tuple[str, ...] = (
    "live", "print_flat", "live", "screen_replay", "empty", "live", "cut_eyes_nose_flat", "mask_3d",
    "live", "print_curved", "cut_eyes_nose_mouth_curved",
)
#: Kiosk subject seeds: far from the training, calibration and HIL ranges.
SEED_BASE = 910_000_000


@dataclass(frozen=True)
class Attempt:
    label: str  # what the operator page shows as the source
    source: Any  # a spec for LivenessSession: .bag path, Source object
    expected: str | None  # "LIVE" / "NOT_LIVE" when known (simulator, labelled recordings)


def _expected_of_scenario(name: str) -> str:
    from sdk.sim import get_scenario

    return "LIVE" if get_scenario(name).label == 1 else "NOT_LIVE"


def _expected_of_bag(path: Path) -> str | None:
    """From the recording's sidecar JSON (synth-bag / record --label / hil), when there is one."""
    import json

    sidecar = path.with_suffix(".json")
    try:
        label = json.loads(sidecar.read_text(encoding="utf-8")).get("label")
    except (OSError, ValueError, AttributeError):
        return None
    return {1: "LIVE", 0: "NOT_LIVE"}.get(label)


def parse_source(spec: str | None) -> list[str] | None:
    """The cycle of items for ``--source`` (None: the camera). Raises InputValidationError."""
    from sdk.sim import list_scenarios

    if spec is None or spec.strip() in ("", "sim", "simulator"):
        return list(KIOSK_SEQUENCE)
    if spec.strip() == "camera":
        return None
    items = [item.strip() for item in spec.split(",") if item.strip()]
    for item in items:
        if item.lower().endswith(".bag"):
            if not Path(item).is_file():
                raise InputValidationError(f"--source: recording {item} does not exist")
        elif item not in list_scenarios():
            raise InputValidationError(
                f"--source: {item!r} is neither a .bag file nor a scenario ({', '.join(list_scenarios())}); "
                "use 'sim' for the simulator cycle or 'camera' for an SR300")
    if not items:
        raise InputValidationError("--source is empty")
    return items


def attempts(items: list[str], frames_per_attempt: int) -> Iterator[Attempt]:
    """Endless attempts over the items: recordings replayed, scenarios with a new seed each time."""
    from sdk.capture import SimulatorSource

    for number in itertools.count():
        item = items[number % len(items)]
        if item.lower().endswith(".bag"):
            yield Attempt(Path(item).name, str(item), _expected_of_bag(Path(item)))
        else:
            seed = SEED_BASE + number
            yield Attempt(f"{item} (seed {seed})", SimulatorSource(item, seed, n_frames=frames_per_attempt),
                          _expected_of_scenario(item))


class KioskRunner:
    """Runs checks forever (until stop()) and publishes everything into a KioskState."""

    def __init__(self, state: KioskState, bundle: Any, source: str | None = None, *, timeout_s: float = 5.0,
                 hold_s: float = 3.0, pace_fps: float = 30.0, frames_per_attempt: int = 150,
                 operating_point: str | None = None, engine: str = "onnxruntime", retry_s: float = 3.0) -> None:
        self.state = state
        self.bundle = bundle
        self.items = parse_source(source)
        self.timeout_s = float(timeout_s)
        self.hold_s = float(hold_s)
        self.pace_fps = float(pace_fps)
        self.frames_per_attempt = int(frames_per_attempt)
        self.operating_point = operating_point
        self.engine = engine
        self.retry_s = float(retry_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "KioskRunner":
        self._thread = threading.Thread(target=self._run, name="kiosk-checks", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the loop -------------------------------------------------------------------------------
    def _config(self):
        from sdk.session import SessionConfig

        return SessionConfig(operating_point=self.operating_point, timeout_s=self.timeout_s, engine=self.engine)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.items is None:
                    self._run_camera()
                else:
                    self._run_cycle()
            except Exception as error:  # the kiosk keeps going: show the fault, retry
                self.state.fail(f"{type(error).__name__}: {error}")
                self._stop.wait(self.retry_s)

    def _run_cycle(self) -> None:
        from sdk.session import LivenessSession

        config = self._config()
        for attempt in attempts(self.items, self.frames_per_attempt):
            if self._stop.is_set():
                return
            self.state.begin_attempt(attempt.label, attempt.expected)
            started = time.perf_counter()
            session = LivenessSession(attempt.source, self.bundle, config)
            try:
                # open() inside the try: when it fails half-way (a bad recording after the detector
                # loaded), close() still releases what it made; `with` would not call __exit__.
                session.open()
                result = session.check(timeout_s=self.timeout_s, on_frame=self._hook(config, pace=True))
            finally:
                session.close()
            if self._stop.is_set():
                return
            self.state.finish_attempt(result, time.perf_counter() - started)
            self._stop.wait(self.hold_s)

    def _run_camera(self) -> None:
        from sdk.session import LivenessSession

        config = self._config()
        session = LivenessSession(None, self.bundle, config)
        try:
            session.open()
            while not self._stop.is_set():
                self.state.begin_attempt("SR300", None)
                started = time.perf_counter()
                result = session.check(timeout_s=self.timeout_s, on_frame=self._hook(config, pace=False))
                if self._stop.is_set():
                    return
                entry = self.state.finish_attempt(result, time.perf_counter() - started)
                if "DEVICE_ERROR" in entry["reasons"]:
                    return  # reopen the camera (after the retry pause in _run)
                if self.state.status()["state"] == "result":
                    self._stop.wait(self.hold_s)
        finally:
            session.close()

    def _hook(self, config: Any, pace: bool):
        """on_frame: publish the frame and progress; pace recordings and the simulator."""
        needed = max(1, int(getattr(getattr(config, "fusion", None), "min_frames_live", 5)))
        period = 1.0 / self.pace_fps if pace and self.pace_fps > 0 else 0.0
        scored_run = 0
        last = time.perf_counter()

        def on_frame(frames: Any, outcome: Any) -> None:
            nonlocal scored_run, last
            if self._stop.is_set():
                raise KioskStopped()
            scored_run = scored_run + 1 if getattr(outcome, "score", None) is not None else 0
            self.state.frame(frames, outcome, progress=scored_run / needed)
            if period:
                delay = period - (time.perf_counter() - last)
                if delay > 0:
                    time.sleep(delay)
                last = time.perf_counter()

        return on_frame


class KioskStopped(Exception):
    """Raised inside a check's frame hook to end it when the kiosk shuts down."""


def camera_connected() -> bool:
    try:
        from sdk.capture import list_devices

        return bool(list_devices())
    except Exception:  # no pyrealsense2 / libusb: no camera either
        return False


__all__ = ["KIOSK_SEQUENCE", "Attempt", "KioskRunner", "attempts", "camera_connected", "parse_source"]
