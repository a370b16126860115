"""`hil make-suite`: labelled simulator recordings (bag + sidecar) and their suite.json.

Every recording is rendered by the virtual SR300 and written through librealsense's recorder by
`synth-bag`'s own function, so a suite bag is exactly what `synth-bag` makes and what a real
SR300 recording looks like to the session. suite.json is rewritten atomically after each
recording: an interrupted run loses nothing and a rerun makes only what is missing.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Callable, Sequence

from sdk.errors import HilSuiteError, InputValidationError, RecordingIntegrityError
from sdk.hil.suite import (
    DEFAULT_BPCER_BUDGET,
    DEFAULT_TIMEOUT_S,
    Suite,
    SuiteRecording,
    open_or_create_suite,
    recording_from_sidecar,
)

#: Suite seeds live far from every training / calibration range (synth-dataset draws subjects from
#: 1e6..5e6 + 1e7 x dataset seed; tools/acceptance.py used 7e8): 8e8 + 1e6 x (suite seed % 100)
#: + 1e3 x (a stable hash of the scenario name % 1000) + index.
SEED_BASE = 800_000_000
MAX_PER_SCENARIO = 1000
#: Not a presentation at all (nobody in view): only in a suite when asked for by name.
NOT_PRESENTATIONS = ("empty",)


def recording_seed(suite_seed: int, scenario: str, index: int) -> int:
    if not 0 <= index < MAX_PER_SCENARIO:
        raise InputValidationError(f"recording index must lie in [0, {MAX_PER_SCENARIO}), got {index}")
    return SEED_BASE + 1_000_000 * (int(suite_seed) % 100) + 1000 * (zlib.crc32(scenario.encode()) % 1000) + index


def default_scenarios() -> list[str]:
    from sdk.sim import list_scenarios

    return [s for s in list_scenarios() if s not in NOT_PRESENTATIONS]


def make_suite(
    out: str | Path,
    per_scenario: int = 10,
    seed: int = 0,
    frames: int = 30,
    scenarios: Sequence[str] | None = None,
    bpcer_budget: float = DEFAULT_BPCER_BUDGET,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: bool = True,
    on_recording: Callable[[SuiteRecording], None] | None = None,
) -> Suite:
    """Render ``per_scenario`` recordings of every scenario into ``out`` and list them in suite.json."""
    from sdk.cli.cmd_synth_bag import synth_bag
    from sdk.sim import list_scenarios

    if not 1 <= int(per_scenario) <= MAX_PER_SCENARIO:
        raise InputValidationError(f"--per-scenario must lie in [1, {MAX_PER_SCENARIO}], got {per_scenario}")
    if int(frames) < 1:
        raise InputValidationError(f"--frames must be >= 1, got {frames}")
    names = list(scenarios) if scenarios else default_scenarios()
    unknown = [s for s in names if s not in list_scenarios()]
    if unknown:
        raise InputValidationError(f"unknown scenarios {unknown}; see `sr300-liveness synth-bag --list`")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    suite = open_or_create_suite(root, bpcer_budget=float(bpcer_budget), timeout_s=float(timeout_s))
    if not suite.meta:
        suite = Suite(root, suite.recordings, suite.bpcer_budget, suite.timeout_s,
                      meta={"created_by": "sr300-liveness hil make-suite", "seed": int(seed), "frames": int(frames)})
    by_id = {r.id: r for r in suite.recordings}
    jobs = [(s, i) for s in names for i in range(int(per_scenario))]
    iterator = jobs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(jobs, unit="bag", desc="hil make-suite")
    for scenario, index in iterator:
        recording_seed_value = recording_seed(seed, scenario, index)
        bag = root / scenario / f"{scenario}_{recording_seed_value}.bag"
        key = bag.relative_to(root).as_posix()[: -len(".bag")]
        existing = by_id.get(key)
        if existing is not None:
            try:
                suite.verify(existing)
                continue  # made by an earlier run and untouched since
            except RecordingIntegrityError:
                pass  # a half-written or changed file: make it again
        bag.parent.mkdir(parents=True, exist_ok=True)
        sidecar = synth_bag(scenario, recording_seed_value, int(frames), bag)
        entry = recording_from_sidecar(root, bag, sidecar)
        by_id[entry.id] = entry
        suite = suite.with_recordings(by_id.values())
        suite.save()
        if on_recording is not None:
            on_recording(entry)
    if not suite.recordings:
        raise HilSuiteError(f"{root}: no recordings were made")
    suite.save()
    return suite


def add_recordings(out: str | Path, bags: Sequence[str | Path]) -> list[SuiteRecording]:
    """Copy labelled recordings (a .bag with its sidecar .json, from `synth-bag`, `record --label`
    or another suite) into the suite folder and list them; a recording already listed is replaced."""
    import json
    import shutil

    from sdk.hil.suite import atomic_write_text

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    suite = open_or_create_suite(root)
    if not suite.meta:
        suite = Suite(root, suite.recordings, suite.bpcer_budget, suite.timeout_s,
                      meta={"created_by": "sr300-liveness hil add"})
    added: list[SuiteRecording] = []
    for item in bags:
        bag = Path(item)
        sidecar_path = bag.with_suffix(".json")
        if bag.suffix.lower() != ".bag" or not bag.is_file():
            raise InputValidationError(f"{bag}: not a .bag recording")
        if not sidecar_path.is_file():
            raise InputValidationError(f"{bag}: no sidecar {sidecar_path.name} with its label "
                                       "(record it with `record --label live|attack` or `synth-bag`)")
        try:
            sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputValidationError(f"{sidecar_path}: unreadable sidecar ({error})") from None
        if not isinstance(sidecar, dict):
            raise InputValidationError(f"{sidecar_path}: the sidecar must hold a JSON object")
        folder = str(sidecar.get("scenario") or sidecar.get("species") or "recordings")
        if not all(c.isalnum() or c in "_-" for c in folder):
            folder = "recordings"
        target = root / folder / bag.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if bag.resolve() != target.resolve():
            shutil.copyfile(bag, target)
            atomic_write_text(target.with_suffix(".json"), sidecar_path.read_text(encoding="utf-8"))
        origin = "simulator" if sidecar.get("seed") is not None else "camera"
        entry = recording_from_sidecar(root, target, sidecar, origin=origin)
        suite = suite.with_recordings([r for r in suite.recordings if r.id != entry.id] + [entry])
        suite.save()
        added.append(entry)
    return added
