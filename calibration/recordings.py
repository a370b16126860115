"""Labelled recordings and their per-check scores, through exactly the device's decision path.

A recording is a .bag file with a label: the JSON sidecar that `synth-bag` and `record --label`
write beside it (PATH.json: "label" 1 live / 0 attack, "scenario" or "species", "attack_type",
"device": {"serial"}), or a row of a label file (``path label [species]``, paths relative to the
file). Each recording is replayed through ``LivenessSession.outcomes`` (the session's own
per-frame path: stuck-stream guard, detection, gates, crops, engine) and its check score is
``sdk.fusion.check_score`` of those outcomes: the highest threshold at which the session's
check would have ended LIVE on it.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from calibration.rejections import conditions_from_sidecar
from sdk.engine.bundle import sha256_file
from sdk.errors import InputValidationError


@dataclass(frozen=True)
class Recording:
    path: Path
    label: int  # 1 live (bona fide), 0 attack
    species: str  # attack species (PAI species) for attacks; "live" for live recordings
    serial: str  # camera serial ("" when unknown)
    sha256: str
    #: capture conditions the sidecar names (calibration.rejections.conditions_from_sidecar)
    conditions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["conditions"] = list(self.conditions)
        return data


def _species_from_sidecar(data: dict[str, Any], label: int) -> str:
    if label == 1:
        return "live"
    for key in ("species", "scenario", "attack_type"):
        if data.get(key) not in (None, ""):
            return str(data[key])
    return "attack"


def _label(value: Any, where: object) -> int:
    text = str(value).strip().lower()
    if text in ("1", "live", "bona_fide", "bonafide"):
        return 1
    if text in ("0", "attack", "spoof"):
        return 0
    raise InputValidationError(f"{where}: label {value!r} must be 1/live or 0/attack")


def read_label_file(path: str | os.PathLike[str]) -> dict[Path, tuple[int, str | None]]:
    """``path label [species]`` rows (whitespace or commas; # comments) -> {absolute path: (label, species)}."""
    file = Path(path)
    if not file.is_file():
        raise InputValidationError(f"{file}: label file not found")
    rows: dict[Path, tuple[int, str | None]] = {}
    try:
        text_lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise InputValidationError(f"{file}: label file is not UTF-8 text ({error.reason} at byte {error.start})") from None
    for number, line in enumerate(text_lines, 1):
        text = line.split("#", 1)[0].replace(",", " ").split()
        if not text:
            continue
        if len(text) not in (2, 3):
            raise InputValidationError(f"{file}:{number}: expected 'path label [species]', got {line!r}")
        bag = (file.parent / text[0]).resolve()
        rows[bag] = (_label(text[1], f"{file}:{number}"), text[2] if len(text) == 3 else None)
    return rows


def discover(paths: Sequence[str | os.PathLike[str]], labels_file: str | os.PathLike[str] | None = None) -> list[Recording]:
    """Every .bag under ``paths`` (folders are searched recursively), labelled, sorted by path."""
    overrides = read_label_file(labels_file) if labels_file else {}
    bags: list[Path] = []
    for entry in paths:
        p = Path(entry)
        if p.is_dir():
            bags += sorted(b for b in p.rglob("*.bag") if not b.name.startswith("."))
        elif p.is_file() and p.suffix.lower() == ".bag":
            bags.append(p)
        else:
            raise InputValidationError(f"{p}: not a folder or a .bag file")
    if not bags:
        raise InputValidationError(f"no .bag recordings found under {', '.join(map(str, paths))}")
    recordings = []
    for bag in sorted(set(b.resolve() for b in bags)):
        sidecar = bag.with_suffix(".json")
        data: dict[str, Any] = {}
        if sidecar.is_file():
            try:
                data = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:  # ValueError: bad JSON or not UTF-8
                raise InputValidationError(f"{sidecar}: unreadable sidecar ({error})") from None
            if not isinstance(data, dict):
                raise InputValidationError(f"{sidecar}: sidecar must be a JSON object, got {type(data).__name__}")
        if bag in overrides:
            label, species = overrides[bag]
            species = species or ("live" if label == 1 else _species_from_sidecar(data, label))
        elif "label" in data:
            label = _label(data["label"], sidecar)
            species = _species_from_sidecar(data, label)
        else:
            raise InputValidationError(
                f"{bag}: no label (write a sidecar with `sr300-liveness record --label ...` or list it in --labels)"
            )
        device = data.get("device")
        if device is not None and not isinstance(device, dict):
            raise InputValidationError(f"{sidecar}: 'device' must be a JSON object, got {type(device).__name__}")
        serial = str((device or {}).get("serial", ""))
        recordings.append(Recording(bag, label, species, serial, sha256_file(bag), conditions_from_sidecar(data)))
    return recordings


# -- scoring ----------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _open_session(bundle_path: str, config: Any) -> Any:
    from sdk.session import LivenessSession

    # A check score does not depend on the bundle's thresholds, so a bundle calibrated under
    # another decision rule (other gates, fusion, TTA) is scored as readily as an uncalibrated
    # one: recalibrating it under the new rule is what this is for.
    config = replace(config, allow_uncalibrated_rule=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*calibrated with the decision rule.*")
        # Engine and detector are opened once, on the first recording; use_source swaps recordings.
        return LivenessSession(None, bundle_path, config)


#: Replays of one recording when a pass ends short (ShortPlaybackError): under CPU starvation
#: librealsense's playback can lose the last frame of an intact file (about 1 in 200 replays at
#: load 15-20 on 2 cores, docs/reliability.md); a damaged file ends short every time.
SHORT_PLAYBACK_ATTEMPTS = 2


def score_one(session: Any, recording: Recording, max_frames: int | None = None) -> dict[str, Any]:
    """Replay one recording through ``session``; the row calibrate and the reports store.

    A replay that ends short is tried again (up to SHORT_PLAYBACK_ATTEMPTS in all); the row
    says how many replays it took (``replays``)."""
    for attempt in range(1, SHORT_PLAYBACK_ATTEMPTS + 1):
        row = _replay_once(session, recording, max_frames)
        row["replays"] = attempt
        if not row.pop("_short", False):
            break
    return row


def _replay_once(session: Any, recording: Recording, max_frames: int | None) -> dict[str, Any]:
    from sdk.errors import ShortPlaybackError
    from sdk.fusion import check_score

    row: dict[str, Any] = {"recording": recording.path.name, **recording.to_dict()}
    try:
        session.use_source(str(recording.path))
        session.open()
        if not row["serial"]:
            row["serial"] = str(session._source.device_info.serial)  # noqa: SLF001
        outcomes = session.outcomes(max_frames)
        config = session.config
        row["check_score"] = check_score(outcomes, config.fusion, spoof_cue_frames=config.spoof_cue_frames,
                                         missing_modality_frames=config.missing_modality_frames)
        row["frames"] = len(outcomes)
        row["scored_frames"] = sum(o.score is not None for o in outcomes)
        row["outcomes"] = [o.to_dict() for o in outcomes]
        row["error"] = None
    except Exception as error:  # a broken recording fails closed: never LIVE, reported
        row.update(check_score=0.0, frames=0, scored_frames=0, outcomes=[], error=f"{type(error).__name__}: {error}",
                   _short=isinstance(error, ShortPlaybackError))
    finally:
        session.release_source()
    return row


def _worker_init(bundle_path: str, config: Any) -> None:
    _WORKER["session"] = _open_session(bundle_path, config)


def _worker_score(job: tuple[Recording, int | None]) -> dict[str, Any]:
    return score_one(_WORKER["session"], *job)


def score_recordings(recordings: Iterable[Recording], bundle_path: str | os.PathLike[str], config: Any = None, *,
                     max_frames: int | None = None, workers: int = 1,
                     progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None) -> Iterator[dict[str, Any]]:
    """Rows of ``score_one`` in the order of ``recordings`` (several worker processes if asked)."""
    from sdk.session import SessionConfig

    config = config or SessionConfig()
    items = list(recordings)
    wrap = progress or (lambda it, n: it)
    if workers <= 1:
        session = _open_session(str(bundle_path), config)
        try:
            for recording in wrap(items, len(items)):
                yield score_one(session, recording, max_frames)
        finally:
            session.close()
        return
    with ProcessPoolExecutor(workers, initializer=_worker_init, initargs=(str(bundle_path), config)) as pool:
        yield from wrap(pool.map(_worker_score, [(r, max_frames) for r in items]), len(items))


def finished_rows(path: Path, fingerprint: str) -> Iterator[dict[str, Any]]:
    """Rows of an earlier (possibly killed) run in the JSON-lines file ``path`` that were scored
    with the same model and decision rule (``fingerprint``) and replayed without error."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if row.get("fingerprint") == fingerprint and not row.get("error"):
            yield row


def rule_fingerprint(model_sha256: str, decision_rule: dict[str, Any], max_frames: int | None) -> str:
    """What a stored check score depends on besides the recording: model, decision rule, budget."""
    text = json.dumps({"model": model_sha256, "rule": decision_rule, "max_frames": max_frames}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
