"""A hardware-in-the-loop suite: labelled recordings (bag + sidecar JSON) listed in suite.json.

    suite/
      suite.json                      the list below, written atomically after every change
      live/live_800412001.bag         a recording (librealsense ROS1 bag)
      live/live_800412001.json        its sidecar (the `synth-bag` / `record --label` format)
      print_flat/...

suite.json::

    {"format": "sr300-liveness-hil-suite", "format_version": 1,
     "bpcer_budget": 0.05, "timeout_s": 5.0,
     "recordings": [{"id": "live/live_800412001", "bag": "live/live_800412001.bag",
                     "sidecar": "live/live_800412001.json", "sha256": "...", "sidecar_sha256": "...",
                     "scenario": "live", "label": 1, "attack_type": null, "species": "bona_fide",
                     "expected": "LIVE", "seed": 800412001, "frames": 30, "origin": "simulator",
                     "content_sha256": "..."}, ...]}

``expected`` is "LIVE" for a bona fide presentation (label 1) and "NOT_LIVE" for an attack
(label 0): an attack passes when it is SPOOF or UNCERTAIN, a live face only when it is LIVE.
``species`` names the presentation-attack instrument species APCER is reported per (ISO/IEC
30107-3): the scenario name for attacks, "bona_fide" for live faces.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

from sdk.engine.bundle import sha256_file  # one hashing helper for bundles and suites
from sdk.errors import HilSuiteError, RecordingIntegrityError
from sdk.validate import read_json_in_folder

SUITE_FILE = "suite.json"
SUITE_FORMAT = "sr300-liveness-hil-suite"
SUITE_FORMAT_VERSION = 1
BONA_FIDE = "bona_fide"
EXPECT_LIVE = "LIVE"
EXPECT_NOT_LIVE = "NOT_LIVE"
DEFAULT_BPCER_BUDGET = 0.05
DEFAULT_TIMEOUT_S = 5.0


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def _relative(value: Any, what: str) -> str:
    """A path inside the suite folder, in POSIX form (no absolute paths, no '..')."""
    if not isinstance(value, str) or not value:
        raise HilSuiteError(f"{what} must be a non-empty relative path, got {value!r}")
    posix = PurePosixPath(value.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or (posix.parts and ":" in posix.parts[0]):
        raise HilSuiteError(f"{what} {value!r} leaves the suite folder")
    return str(posix)


@dataclass(frozen=True)
class SuiteRecording:
    """One labelled recording of the suite."""

    id: str
    bag: str
    sidecar: str
    sha256: str
    sidecar_sha256: str
    scenario: str
    label: int
    attack_type: int | None
    species: str
    expected: str
    seed: int | None = None
    frames: int | None = None
    origin: str = "simulator"
    #: SHA-256 of the frames the bag shows (sdk.capture.replay.content_sha256): equal for two
    #: renders of one seed, whose files differ. Suites written before it have none.
    content_sha256: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise HilSuiteError(f"recording id must be a non-empty string, got {self.id!r}")
        object.__setattr__(self, "bag", _relative(self.bag, f"recording {self.id}: bag"))
        object.__setattr__(self, "sidecar", _relative(self.sidecar, f"recording {self.id}: sidecar"))
        if not self.bag.lower().endswith(".bag"):
            raise HilSuiteError(f"recording {self.id}: bag {self.bag!r} is not a .bag file")
        for name in ("sha256", "sidecar_sha256", "content_sha256"):
            value = getattr(self, name)
            if name == "content_sha256" and value is None:
                continue
            if not (isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
                raise HilSuiteError(f"recording {self.id}: {name} must be 64 lower-case hex digits, got {value!r}")
        if self.label not in (0, 1) or isinstance(self.label, bool):
            raise HilSuiteError(f"recording {self.id}: label must be 1 (live) or 0 (attack), got {self.label!r}")
        wanted = EXPECT_LIVE if self.label == 1 else EXPECT_NOT_LIVE
        if self.expected != wanted:
            raise HilSuiteError(f"recording {self.id}: label {self.label} needs expected {wanted!r}, got {self.expected!r}")
        if self.attack_type is not None and (isinstance(self.attack_type, bool) or not isinstance(self.attack_type, int)):
            raise HilSuiteError(f"recording {self.id}: attack_type must be an integer or null, got {self.attack_type!r}")
        if not isinstance(self.species, str) or not self.species:
            raise HilSuiteError(f"recording {self.id}: species must be a non-empty string")
        if (self.species == BONA_FIDE) != (self.label == 1):
            raise HilSuiteError(f"recording {self.id}: species {BONA_FIDE!r} is for live recordings only")
        if not isinstance(self.scenario, str) or not self.scenario:
            raise HilSuiteError(f"recording {self.id}: scenario must be a non-empty string")

    @property
    def is_attack(self) -> bool:
        return self.label == 0

    @classmethod
    def from_dict(cls, data: Any) -> "SuiteRecording":
        if not isinstance(data, Mapping):
            raise HilSuiteError(f"a recording entry must be an object, got {type(data).__name__}")
        required = ("id", "bag", "sidecar", "sha256", "sidecar_sha256", "scenario", "label", "species", "expected")
        missing = [k for k in required if k not in data]
        if missing:
            raise HilSuiteError(f"recording {data.get('id', '?')!r}: missing {', '.join(missing)}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Suite:
    """A suite folder and its recordings."""

    root: Path
    recordings: tuple[SuiteRecording, ...]
    bpcer_budget: float = DEFAULT_BPCER_BUDGET
    timeout_s: float = DEFAULT_TIMEOUT_S
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.bpcer_budget, (int, float)) and 0.0 <= float(self.bpcer_budget) <= 1.0):
            raise HilSuiteError(f"bpcer_budget must be a number in [0, 1], got {self.bpcer_budget!r}")
        if not (isinstance(self.timeout_s, (int, float)) and math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise HilSuiteError(f"timeout_s must be a positive number, got {self.timeout_s!r}")
        ids = [r.id for r in self.recordings]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise HilSuiteError(f"{self.root}: duplicate recording ids {duplicates[:5]}")
        object.__setattr__(self, "recordings", tuple(self.recordings))

    def path_of(self, relative: str) -> Path:
        return self.root / relative

    def verify(self, recording: SuiteRecording) -> None:
        """Raise RecordingIntegrityError unless the bag and sidecar are there with their hashes."""
        for relative, expected in ((recording.bag, recording.sha256), (recording.sidecar, recording.sidecar_sha256)):
            path = self.path_of(relative)
            if not path.is_file():
                raise RecordingIntegrityError(f"{recording.id}: {relative} is missing from {self.root}")
            actual = sha256_file(path)
            if actual != expected:
                raise RecordingIntegrityError(
                    f"{recording.id}: SHA-256 of {relative} is {actual}, suite.json says {expected}: "
                    "the recording changed since it was added to the suite"
                )

    def with_recordings(self, recordings: Iterable[SuiteRecording]) -> "Suite":
        return replace(self, recordings=tuple(recordings))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SUITE_FORMAT,
            "format_version": SUITE_FORMAT_VERSION,
            **{k: v for k, v in self.meta.items() if k not in ("format", "format_version", "recordings")},
            "bpcer_budget": float(self.bpcer_budget),
            "timeout_s": float(self.timeout_s),
            "recordings": [r.to_dict() for r in self.recordings],
        }

    def save(self) -> Path:
        path = self.root / SUITE_FILE
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path


def load_suite(root: str | os.PathLike[str]) -> Suite:
    """Read and validate ``root/suite.json`` (HilSuiteError on anything malformed)."""
    folder = Path(root)
    data = read_json_in_folder(folder, SUITE_FILE, HilSuiteError, "suite",
                               f" (make one with `sr300-liveness hil make-suite --out {folder}`)")
    return suite_from_dict(folder, data, where=folder / SUITE_FILE)


def suite_from_dict(root: Path, data: Any, where: object = "suite.json") -> Suite:
    if not isinstance(data, Mapping):
        raise HilSuiteError(f"{where}: must hold a JSON object")
    if data.get("format") != SUITE_FORMAT:
        raise HilSuiteError(f"{where}: format must be {SUITE_FORMAT!r}, got {data.get('format')!r}")
    if data.get("format_version") != SUITE_FORMAT_VERSION:
        raise HilSuiteError(f"{where}: unsupported format_version {data.get('format_version')!r} "
                            f"(this SDK reads {SUITE_FORMAT_VERSION})")
    recordings = data.get("recordings")
    if not isinstance(recordings, list):
        raise HilSuiteError(f"{where}: 'recordings' must be a list")
    try:
        entries = tuple(SuiteRecording.from_dict(r) for r in recordings)
    except TypeError as error:  # a field of the wrong kind that the checks above did not name
        raise HilSuiteError(f"{where}: {error}") from None
    meta = {k: v for k, v in data.items() if k not in ("recordings", "bpcer_budget", "timeout_s")}
    return Suite(
        root=Path(root),
        recordings=entries,
        bpcer_budget=data.get("bpcer_budget", DEFAULT_BPCER_BUDGET),
        timeout_s=data.get("timeout_s", DEFAULT_TIMEOUT_S),
        meta=meta,
    )


def open_or_create_suite(root: str | os.PathLike[str], **defaults: Any) -> Suite:
    """The suite in ``root``, or a new empty one (not yet saved) when there is none."""
    folder = Path(root)
    if (folder / SUITE_FILE).is_file():
        return load_suite(folder)
    if folder.exists() and not folder.is_dir():
        raise HilSuiteError(f"{folder}: exists and is not a folder")
    return Suite(root=folder, recordings=(), **defaults)


def recording_from_sidecar(suite_root: Path, bag: Path, sidecar: Mapping[str, Any], *, species: str | None = None,
                           origin: str = "simulator") -> SuiteRecording:
    """A suite entry for a bag and its (already written) sidecar JSON."""
    from sdk.capture.replay import content_sha256  # replays the bag once: librealsense only here

    sidecar_path = bag.with_suffix(".json")
    label = sidecar.get("label")
    if label not in (0, 1) or isinstance(label, bool):
        raise HilSuiteError(f"{sidecar_path}: label must be 1 (live) or 0 (attack), got {label!r}")
    # synth-bag names the scenario; `record --label` names only the species (scenario null)
    scenario = str(sidecar.get("scenario") or sidecar.get("species") or ("live" if label == 1 else "attack"))
    attack_type = sidecar.get("attack_type")
    if isinstance(attack_type, bool) or not isinstance(attack_type, int):
        attack_type = None  # a species name (record --label attack --attack-type print): kept as species
    relative_bag = bag.resolve().relative_to(suite_root.resolve()).as_posix()
    return SuiteRecording(
        id=relative_bag[: -len(".bag")],
        bag=relative_bag,
        sidecar=sidecar_path.resolve().relative_to(suite_root.resolve()).as_posix(),
        sha256=sha256_file(bag),
        sidecar_sha256=sha256_file(sidecar_path),
        scenario=scenario,
        label=label,
        attack_type=attack_type,
        species=BONA_FIDE if label == 1 else (species or sidecar.get("species") or scenario),
        expected=EXPECT_LIVE if label == 1 else EXPECT_NOT_LIVE,
        seed=sidecar.get("seed"),
        frames=len(sidecar.get("frames", [])) or None,
        origin=origin,
        content_sha256=content_sha256(bag),
    )
