"""Independent evaluation: real people (and prints / replays of them) through the device path.

Every presentation is rendered by this package's own renderer, written to a real .bag with the
SDK's capture writer (sdk.capture.write_bag), and checked with the public session API,
``LivenessSession(source=bag, model=bundle, config=SessionConfig(operating_point=...)).check()``,
once per operating point of the bundle. BPCER counts live people not accepted as LIVE (SPOOF or
UNCERTAIN), APCER per attack kind counts attacks accepted as LIVE.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from calibration.independent.people import PEOPLE
from calibration.independent.scene import ATTACK_KINDS, INTRINSICS, KINDS, Scene
from calibration.metrics import clopper_pearson_upper
from sdk.errors import InputValidationError

DEFAULT_FRAMES = 10
SEED_BASE = 9_100_000  # far from every seed range the simulator's datasets use


@dataclass(frozen=True)
class Presentation:
    """One recording: a person (or an attack made from their picture) and its seed."""

    person_index: int
    person: str
    kind: str
    seed: int

    @property
    def live(self) -> bool:
        return self.kind == "live"


@dataclass(frozen=True)
class Outcome:
    presentation: Presentation
    operating_point: str
    decision: str
    score: float | None
    reasons: tuple[str, ...]
    frames_used: int
    message: str = ""


@dataclass
class Report:
    model: str
    model_version: str
    people: int
    frames: int
    seeds: list[int]
    operating_points: dict[str, float]
    outcomes: list[Outcome] = field(default_factory=list)

    def summary(self) -> dict:
        """BPCER (with its Clopper-Pearson 95 % upper bound) and APCER per attack kind, per point."""
        out: dict = {}
        for point in self.operating_points:
            rows = [o for o in self.outcomes if o.operating_point == point]
            live = [o for o in rows if o.presentation.live]
            rejected = sum(o.decision != "LIVE" for o in live)
            per_kind = {}
            for kind in ATTACK_KINDS:
                attacks = [o for o in rows if o.presentation.kind == kind]
                if attacks:
                    accepted = sum(o.decision == "LIVE" for o in attacks)
                    per_kind[kind] = {"accepted": accepted, "n": len(attacks), "apcer": accepted / len(attacks),
                                      "apcer_upper_95": clopper_pearson_upper(accepted, len(attacks))}
            attacks_all = [o for o in rows if not o.presentation.live]
            out[point] = {
                "threshold": self.operating_points[point],
                "bpcer": rejected / len(live) if live else None,
                "bpcer_upper_95": clopper_pearson_upper(rejected, len(live)) if live else None,
                "live_rejected": rejected,
                "live_n": len(live),
                "live_spoof": sum(o.decision == "SPOOF" for o in live),
                "live_uncertain": sum(o.decision == "UNCERTAIN" for o in live),
                "apcer_per_kind": per_kind,
                "attacks_accepted": sum(o.decision == "LIVE" for o in attacks_all),
                "attacks_n": len(attacks_all),
            }
        return out

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "model_version": self.model_version,
            "people": self.people,
            "frames_per_recording": self.frames,
            "seeds": self.seeds,
            "operating_points": self.operating_points,
            "summary": self.summary(),
            "presentations": [
                {**asdict(o.presentation), "operating_point": o.operating_point, "decision": o.decision,
                 "score": o.score, "reasons": list(o.reasons), "frames_used": o.frames_used,
                 "message": o.message}
                for o in self.outcomes
            ],
        }


def plan(people: int, kinds: tuple[str, ...] = KINDS, seed: int = 0) -> list[Presentation]:
    """Person i is PEOPLE[i % len(PEOPLE)] with its own seed; every kind is made of every person."""
    if people < 1:
        raise InputValidationError(f"people must be >= 1, got {people}")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise InputValidationError(f"unknown kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    out = []
    for i in range(people):
        person_seed = SEED_BASE + 1000 * int(seed) + i
        for kind in kinds:
            out.append(Presentation(i, PEOPLE[i % len(PEOPLE)], kind, person_seed))
    return out


def write_recording(presentation: Presentation, path: Path, frames: int) -> int:
    """Render a presentation and record it as an SR300 .bag with the SDK's writer."""
    from sdk.capture import write_bag
    from sdk.types import StreamIntrinsics

    scene = Scene(presentation.kind, presentation.person, presentation.seed)
    framesets = (scene.render(i) for i in range(frames))
    return write_bag(path, framesets, scene.device, StreamIntrinsics(INTRINSICS, INTRINSICS, INTRINSICS), 0.000125)


def renderer_digest() -> str:
    """SHA-256 of this package's code and data: what a recording is a pure function of, with its
    (kind, person, seed, frames). A change to any of them gives new cached recordings."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted([*package.glob("*.py"), *(package / "data").iterdir()]):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_folder(cache: str | Path) -> Path:
    """The folder of ``cache`` that holds this renderer's recordings (named by its digest)."""
    folder = Path(cache) / renderer_digest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cached_recording(presentation: Presentation, frames: int, folder: Path) -> Path:
    """The presentation's .bag in ``folder`` (a cache_folder; rendered once, written atomically),
    so every model is checked on the very same recordings."""
    bag = folder / f"{presentation.seed}_{presentation.person}_{presentation.kind}_{frames}f.bag"
    if not bag.is_file():
        # A killed run leaves at most a stray temporary file, never a half-written recording.
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".bag.part", delete=False) as handle:
            part = Path(handle.name)
        try:
            write_recording(presentation, part, frames)
            os.replace(part, bag)
        finally:
            part.unlink(missing_ok=True)
    return bag


def run(model: str | None = None, people: int = 3, frames: int = DEFAULT_FRAMES, kinds: tuple[str, ...] = KINDS,
        seed: int = 0, workdir: str | Path | None = None,
        progress: Callable[[Outcome], None] | None = None, cache: str | Path | None = None) -> Report:
    """Render, record and check every presentation at every operating point of the bundle.

    With ``cache`` the recordings are kept there and reused by later runs (same renderer, seeds
    and frame count); without it each is rendered into a temporary folder and deleted."""
    from sdk.engine import ModelBundle
    from sdk.session import LivenessSession, SessionConfig

    if frames < 1:
        raise InputValidationError(f"frames must be >= 1, got {frames}")
    bundle = ModelBundle.load(model)
    points = {name: float(spec["threshold"]) for name, spec in bundle.manifest["operating_points"]["points"].items()}
    presentations = plan(people, kinds, seed)
    report = Report(bundle.name, bundle.version, people, frames, sorted({p.seed for p in presentations}), points)
    # The digest reads the renderer's files: once per run, not once per recording.
    folder = cache_folder(cache) if cache is not None else None
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for presentation in presentations:
            if folder is not None:
                bag = cached_recording(presentation, frames, folder)
            else:
                bag = Path(tmp) / f"{presentation.person_index:03d}_{presentation.kind}.bag"
                write_recording(presentation, bag, frames)
            for point in points:
                config = SessionConfig(operating_point=point, max_frames=frames, timeout_s=600.0)
                with LivenessSession(source=str(bag), model=bundle, config=config) as session:
                    result = session.check()
                score = result.score if result.score == result.score else None
                outcome = Outcome(presentation, point, result.decision.value, score,
                                  tuple(r.value for r in result.reasons), result.frames_used, result.message)
                report.outcomes.append(outcome)
                if progress is not None:
                    progress(outcome)
            if cache is None:
                bag.unlink()
    return report
