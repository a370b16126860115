"""`hil live`: real SR300 attempts, recorded as labelled bags into a suite and checked.

Before each attempt the operator is prompted (present a live face / the attack instrument, then
Enter); the camera is recorded by librealsense's recorder (sdk.capture.BagRecorder), the sidecar
JSON is written in `synth-bag`'s format (label, attack type, device, plus origin "camera"), the
recording is appended to suite.json (atomically) and checked at once, so real recordings grow the
suite that `hil run` replays.

The camera and the prompt are parameters (``record`` and ``ask``) so the whole flow is testable
without hardware; the defaults drive a real SR300 and the terminal.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sdk.errors import InputValidationError
from sdk.hil.runner import RecordingResult, check_recording
from sdk.hil.suite import BONA_FIDE, atomic_write_text, open_or_create_suite, recording_from_sidecar


@dataclass(frozen=True)
class RecordedAttempt:
    """What the recorder reports about one recorded attempt."""

    frames: int
    fps: float
    device_name: str
    device_serial: str


#: record(path, seconds) -> RecordedAttempt; ask(prompt) -> the operator's answer.
Recorder = Callable[[Path, float], RecordedAttempt]
Ask = Callable[[str], str]


def camera_recorder(serial: str | None = None, fps: int = 30) -> Recorder:
    """A recorder driving a real SR300 through BagRecorder (needs the camera extra and a camera)."""

    def record(path: Path, seconds: float) -> RecordedAttempt:
        from sdk.capture.bag_writer import BagRecorder
        from sdk.capture.camera import RealSenseCamera

        camera = RealSenseCamera(serial=serial, fps=fps, record_to=path)
        device = camera.device_info
        with BagRecorder(camera, path) as recorder:
            count = recorder.record(seconds=seconds)
        return RecordedAttempt(frames=count, fps=float(fps), device_name=device.name, device_serial=device.serial)

    return record


def resolve_species(expect: str, attack_type: str | None) -> tuple[str, int | None]:
    """(species / scenario name, CASIA attack type or None) for an attempt.

    ``attack_type`` may be a CASIA-SURF type number 1-6 (mapped to the simulator's scenario of that
    type, e.g. 1 -> cut_eyes_flat) or any species name (print_flat, screen_replay, mask_3d, ...).
    """
    if expect not in ("live", "attack"):
        raise InputValidationError(f"--expect must be live or attack, got {expect!r}")
    if expect == "live":
        if attack_type is not None:
            raise InputValidationError("--attack-type is for --expect attack only")
        return "live", None
    if not attack_type:
        raise InputValidationError("--expect attack needs --attack-type (a species name such as print_flat, or 1-6)")
    text = attack_type.strip()
    if text.isdigit():
        from sdk.sim import get_scenario, list_scenarios

        number = int(text)
        for name in list_scenarios():
            if get_scenario(name).attack_type == number:
                return name, number
        raise InputValidationError(f"no attack species of CASIA-SURF type {number} (types are 1-6)")
    if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", text) or text == BONA_FIDE:
        raise InputValidationError(f"--attack-type {text!r}: use letters, digits, '_' or '-' (e.g. print_flat)")
    try:
        from sdk.sim import get_scenario

        return text, get_scenario(text).attack_type
    except Exception:  # a species the simulator does not render (e.g. a silicone mask): fine for real recordings
        return text, None


def write_camera_sidecar(bag: Path, species: str, attack_type: int | None, label: int, attempt: RecordedAttempt) -> dict[str, Any]:
    """The sidecar of a camera recording: `synth-bag`'s keys (no per-frame truth: nobody knows it)."""
    sidecar = {
        "scenario": species,
        "species": species,
        "attack_type": attack_type,
        "label": int(label),
        "seed": None,
        "fps": attempt.fps,
        "bag": bag.name,
        "device": {"name": attempt.device_name, "serial": attempt.device_serial},
        "frames": [],
        "origin": "camera",
        "frame_count": attempt.frames,
        "recorded_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(bag.with_suffix(".json"), json.dumps(sidecar, indent=1) + "\n")
    return sidecar


def run_live(
    out: str | Path,
    expect: str,
    count: int,
    attack_type: str | None = None,
    seconds: float = 3.0,
    model: Any = None,
    operating_point: str | None = None,
    record: Recorder | None = None,
    ask: Ask = input,
    say: Callable[[str], None] = print,
) -> list[RecordingResult]:
    """Prompt, record, add to the suite and check ``count`` attempts; return the check results."""
    from sdk.engine import ModelBundle

    if int(count) < 1:
        raise InputValidationError(f"--count must be >= 1, got {count}")
    if not seconds > 0:
        raise InputValidationError(f"--seconds must be > 0, got {seconds}")
    species, casia_type = resolve_species(expect, attack_type)
    label = 1 if expect == "live" else 0
    bundle = model if isinstance(model, ModelBundle) else ModelBundle.load(model)
    record = record or camera_recorder()
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    suite = open_or_create_suite(root)
    if not suite.meta:
        suite = type(suite)(root, suite.recordings, suite.bpcer_budget, suite.timeout_s,
                            meta={"created_by": "sr300-liveness hil live"})
    what = "a LIVE face" if label == 1 else f"the attack instrument '{species}'"
    stamp = _dt.datetime.now().strftime("%Y%m%d_%H%M%S")
    results: list[RecordingResult] = []
    for attempt in range(1, int(count) + 1):
        answer = ask(f"[{attempt}/{count}] Present {what} to the camera, then press Enter to record "
                     f"{seconds:g} s (s = skip, q = quit): ").strip().lower()
        if answer == "q":
            say("stopped by the operator")
            break
        if answer == "s":
            say("skipped")
            continue
        bag = root / f"camera_{species}" / f"{species}_{stamp}_{attempt:03d}.bag"
        bag.parent.mkdir(parents=True, exist_ok=True)
        recorded = record(bag, float(seconds))
        sidecar = write_camera_sidecar(bag, species, casia_type, label, recorded)
        entry = recording_from_sidecar(root, bag, sidecar, species=species, origin="camera")
        suite = suite.with_recordings([r for r in suite.recordings if r.id != entry.id] + [entry])
        suite.save()
        result = check_recording(suite, entry, bundle, operating_point)
        results.append(result)
        score = "n/a" if result.score is None else f"{result.score:.3f}"
        say(f"  {entry.id}: {recorded.frames} frames -> {result.decision} score {score} "
            f"[{result.status.upper()}] {', '.join(result.reasons) or ''}".rstrip())
    return results
