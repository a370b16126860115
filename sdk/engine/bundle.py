"""Model bundles: a folder with model.onnx and manifest.json whose SHA-256 hashes are verified.

A bundle is the unit the SDK ships and loads. Loading refuses a bundle whose files do not match
the hashes in its manifest, whose manifest is malformed, or whose preprocessing version differs
from the one this SDK computes (crops made differently would silently shift every score).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from sdk.errors import ModelIntegrityError
from sdk.preprocess import PREPROCESS_VERSION
from sdk.validate import read_json_in_folder

BUNDLE_FORMAT = "sr300-liveness-bundle/1"
MANIFEST_NAME = "manifest.json"
MODEL_NAME = "model.onnx"
#: Where the shipped bundles live inside the installed package.
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "bundles"
DEFAULT_BUNDLE = "mlfa_student_sim"

_REQUIRED_KEYS = ("format", "name", "version", "inputs", "output", "preprocess_version", "operating_points", "files")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class OperatingPointSpec:
    """A named threshold on P(live) and the error rates it had on its calibration set."""

    name: str
    threshold: float
    target_apcer: float | None = None
    apcer: float | None = None
    bpcer: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> "OperatingPointSpec":
        threshold = data.get("threshold")
        if not isinstance(threshold, (int, float)) or not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
            raise ModelIntegrityError(f"operating point {name!r}: threshold must be a number in [0, 1], got {threshold!r}")
        known = {"name", "threshold", "target_apcer", "apcer", "bpcer"}
        return cls(
            name=name,
            threshold=float(threshold),
            target_apcer=data.get("target_apcer"),
            apcer=data.get("apcer"),
            bpcer=data.get("bpcer"),
            extra={k: v for k, v in data.items() if k not in known},
        )


@dataclass(frozen=True)
class ModelBundle:
    """A verified bundle on disk."""

    path: Path
    manifest: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def model_sha256(self) -> str:
        """The manifest's SHA-256 of the weights (verified at load)."""
        return str(self.manifest["files"][self.model_path.name]["sha256"])

    @property
    def provenance(self) -> Mapping[str, Any]:
        return self.manifest.get("provenance", {}) or {}

    @property
    def decision_rule(self) -> Mapping[str, Any] | None:
        """The decision rule (fusion, gates) the operating points were calibrated with, if the
        bundle was made by `sr300-liveness calibrate`; None for points set on crops."""
        calibration = self.provenance.get("calibration")
        rule = calibration.get("decision_rule") if isinstance(calibration, Mapping) else None
        return rule if isinstance(rule, Mapping) else None

    @property
    def model_path(self) -> Path:
        return self.path / str(self.manifest.get("model_file", MODEL_NAME))

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec["name"] for spec in self.manifest["inputs"])

    @property
    def default_operating_point(self) -> str:
        return str(self.manifest["operating_points"]["default"])

    def operating_point(self, name: str | None = None) -> OperatingPointSpec:
        points = self.manifest["operating_points"]["points"]
        chosen = name or self.default_operating_point
        if chosen not in points:
            raise ModelIntegrityError(
                f"{self.path}: no operating point {chosen!r}; the bundle has {sorted(points)}"
            )
        return OperatingPointSpec.from_dict(chosen, points[chosen])

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, *, verify: bool = True) -> "ModelBundle":
        """Load and verify a bundle folder (None: the shipped default)."""
        folder = Path(path) if path is not None else SHIPPED_DIR / DEFAULT_BUNDLE
        manifest_path = folder / MANIFEST_NAME
        manifest = read_json_in_folder(folder, MANIFEST_NAME, ModelIntegrityError, "model bundle")
        check_manifest_safety(folder, manifest)
        _check_manifest(manifest_path, manifest)
        bundle = cls(folder, manifest)
        if verify:
            bundle.verify()
        return bundle

    def verify(self) -> None:
        """Check every file against its SHA-256 and size in the manifest."""
        for name, entry in self.manifest["files"].items():
            file_path = self.path / name
            if not file_path.is_file():
                raise ModelIntegrityError(f"{self.path}: file {name} listed in the manifest is missing")
            size = file_path.stat().st_size
            if "bytes" in entry and size != entry["bytes"]:
                raise ModelIntegrityError(
                    f"{file_path}: size {size} B does not match the manifest's {entry['bytes']} B"
                )
            actual = sha256_file(file_path)
            if actual != entry.get("sha256"):
                raise ModelIntegrityError(
                    f"{file_path}: SHA-256 {actual} does not match the manifest's {entry.get('sha256')}; "
                    "the file is corrupt or was replaced"
                )
        if self.model_path.name not in self.manifest["files"]:
            raise ModelIntegrityError(f"{self.path}: the model file {self.model_path.name} has no hash in the manifest")


def parse_version(version: str) -> tuple[int, int, int]:
    """"MAJOR.MINOR.PATCH" -> integers (model versions are plain semantic versions)."""
    parts = str(version).split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise ModelIntegrityError(f"model version {version!r} is not MAJOR.MINOR.PATCH")
    return int(parts[0]), int(parts[1]), int(parts[2])


def next_minor_version(version: str) -> str:
    """1.1.0 -> 1.2.0: new operating points on the same weights bump the minor version."""
    major, minor, _ = parse_version(version)
    return f"{major}.{minor + 1}.0"


def _check_manifest(where: Path, manifest: Any) -> None:
    """What a well-formed manifest must also agree with (this SDK's crops, ...); its structure, types
    and format were checked by check_manifest_safety, which always runs first."""
    if manifest["preprocess_version"] != PREPROCESS_VERSION:
        raise ModelIntegrityError(
            f"{where}: the model was trained on crops {manifest['preprocess_version']!r} but this SDK makes "
            f"{PREPROCESS_VERSION!r}; re-export the model or install the matching SDK"
        )
    files = manifest["files"]
    if not isinstance(files, dict) or not files or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in files.values()
    ):
        raise ModelIntegrityError(f"{where}: 'files' must map file names to {{'sha256': ...}}")
    points = manifest["operating_points"]
    if not isinstance(points, dict) or "default" not in points or not isinstance(points.get("points"), dict):
        raise ModelIntegrityError(f"{where}: 'operating_points' must hold 'default' and 'points'")
    if points["default"] not in points["points"]:
        raise ModelIntegrityError(f"{where}: default operating point {points['default']!r} is not defined")
    for name, data in points["points"].items():
        OperatingPointSpec.from_dict(name, data)


def write_bundle(
    out_dir: str | os.PathLike[str],
    model_file: str | os.PathLike[str],
    *,
    name: str,
    version: str,
    operating_points: Mapping[str, Mapping[str, Any]],
    default_operating_point: str,
    metrics: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, str | os.PathLike[str]] | None = None,
    crop_size: int = 112,
) -> ModelBundle:
    """Write a bundle folder atomically (a temp folder renamed into place) and return it loaded."""
    out = Path(out_dir)
    check_operating_points(out / MANIFEST_NAME, operating_points, default_operating_point)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a shipped bundle must be readable by every user
    try:
        sources = {MODEL_NAME: Path(model_file), **{k: Path(v) for k, v in (extra_files or {}).items()}}
        files: dict[str, dict[str, Any]] = {}
        for file_name, source in sources.items():
            target = staging / file_name
            target.write_bytes(source.read_bytes())
            files[file_name] = {"sha256": sha256_file(target), "bytes": target.stat().st_size}
        manifest = {
            "format": BUNDLE_FORMAT,
            "name": name,
            "version": version,
            "model_file": MODEL_NAME,
            "inputs": [
                {"name": modality, "shape": ["batch", 3, crop_size, crop_size], "dtype": "float32",
                 "range": [0, 255], "layout": "NCHW", "channels": "RGB" if modality == "rgb" else "grey x3"}
                for modality in ("rgb", "ir", "depth")
            ],
            "output": {"name": "p_live", "shape": ["batch"], "meaning": "P(live), softmax of class 1"},
            "normalisation": "inside the graph (inputs are raw 0-255 pixel values)",
            "preprocess_version": PREPROCESS_VERSION,
            "operating_points": {"default": default_operating_point, "points": {k: dict(v) for k, v in operating_points.items()}},
            "metrics": dict(metrics or {}),
            "provenance": dict(provenance or {}),
            "files": files,
        }
        # Validate everything load() will check (thresholds strictly inside (0, 1), file names,
        # hashes) while the bundle is still in staging: a bundle that would not load must never
        # appear at ``out`` (nor replace a good one there).
        try:
            check_manifest_safety(staging, manifest)
            _check_manifest(out / MANIFEST_NAME, manifest)
            (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
            ModelBundle.load(staging)
        except ModelIntegrityError as error:
            raise ModelIntegrityError(str(error).replace(str(staging), str(out))) from None
        if out.exists():
            backup = out.with_name(out.name + ".old")
            if backup.exists():
                _rmtree(backup)
            out.rename(backup)
            staging.rename(out)
            _rmtree(backup)
        else:
            staging.rename(out)
    except BaseException:
        if staging.exists():
            _rmtree(staging)
        raise
    return ModelBundle.load(out)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# -- load-time hardening (issue 14): nothing in a manifest may reach outside its bundle ------
_SHA256_HEX = frozenset("0123456789abcdef")


def _safe_member(folder: Path, name: Any, what: str) -> Path:
    """The path of bundle member ``name``, refusing anything that could leave ``folder``:
    absolute paths, '..', backslashes, NUL, and symlinks that resolve outside it."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        raise ModelIntegrityError(f"{folder}: {what} {name!r} is not a plain file name inside the bundle")
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or any(part in ("..", "") for part in parts) or os.path.isabs(name):
        raise ModelIntegrityError(f"{folder}: {what} {name!r} leaves the bundle folder")
    root = folder.resolve()
    target = (folder / name).resolve()
    if target != root and root not in target.parents:
        raise ModelIntegrityError(f"{folder}: {what} {name!r} resolves to {target}, outside the bundle folder")
    return target


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_manifest_safety(folder: Path, manifest: Any) -> None:
    """Refuse, with ModelIntegrityError, a manifest whose structure or values could make loading
    do something else than load this bundle's own, hashed model: wrong types anywhere the loader
    looks, file names that leave the folder (also through symlinks), a model file without a
    hash, thresholds that are not a probability strictly between 0 and 1 (at 0 every face is
    LIVE; at 1 no face ever is, so the point is a mistake), an unknown format version."""
    where = folder / MANIFEST_NAME
    if not isinstance(manifest, dict):
        raise ModelIntegrityError(f"{where}: manifest must be a JSON object")
    missing = [key for key in _REQUIRED_KEYS if key not in manifest]
    if missing:
        raise ModelIntegrityError(f"{where}: manifest lacks {missing}")
    if manifest["format"] != BUNDLE_FORMAT:
        raise ModelIntegrityError(f"{where}: bundle format {manifest['format']!r} is not {BUNDLE_FORMAT!r}")
    for key in ("name", "version", "preprocess_version"):
        if not isinstance(manifest[key], str):
            raise ModelIntegrityError(f"{where}: {key!r} must be a string")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ModelIntegrityError(f"{where}: 'files' must map file names to {{'sha256': ...}}")
    for name, entry in files.items():
        _safe_member(folder, name, "file")
        if not isinstance(entry, dict):
            raise ModelIntegrityError(f"{where}: the entry of file {name!r} must be an object")
        digest = entry.get("sha256")
        if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= _SHA256_HEX:
            raise ModelIntegrityError(f"{where}: file {name!r} needs a 64-digit lower-case hex 'sha256'")
        if "bytes" in entry and not (isinstance(entry["bytes"], int) and not isinstance(entry["bytes"], bool)
                                     and entry["bytes"] >= 0):
            raise ModelIntegrityError(f"{where}: 'bytes' of file {name!r} must be a non-negative integer")
    model_file = manifest.get("model_file", MODEL_NAME)
    _safe_member(folder, model_file, "model_file")
    if model_file not in files:
        raise ModelIntegrityError(f"{where}: the model file {model_file!r} has no hash in 'files'")
    inputs = manifest.get("inputs")
    if not (isinstance(inputs, list) and inputs and all(
            isinstance(spec, dict) and isinstance(spec.get("name"), str) for spec in inputs)):
        raise ModelIntegrityError(f"{where}: 'inputs' must be a list of objects with a 'name'")
    if not isinstance(manifest["output"], dict):
        raise ModelIntegrityError(f"{where}: 'output' must be an object")
    _check_operating_points(where, manifest.get("operating_points"))


def check_operating_points(where: object, points: Mapping[str, Mapping[str, Any]], default: str) -> None:
    """Refuse (ModelIntegrityError) operating points a bundle could not be loaded with, before
    anything is exported or written (``points`` as write_bundle takes them)."""
    plain = {name: dict(data) if isinstance(data, Mapping) else data for name, data in points.items()}
    _check_operating_points(where, {"default": default, "points": plain})
    if default not in plain:
        raise ModelIntegrityError(f"{where}: default operating point {default!r} is not defined")
    for name, data in plain.items():
        OperatingPointSpec.from_dict(name, data)


def _check_operating_points(where: object, points: Any) -> None:
    if not isinstance(points, dict) or not isinstance(points.get("default"), str) or not isinstance(
            points.get("points"), dict) or not points["points"]:
        raise ModelIntegrityError(f"{where}: 'operating_points' must hold a 'default' name and 'points'")
    for name, data in points["points"].items():
        if not isinstance(data, dict):
            raise ModelIntegrityError(f"{where}: operating point {name!r} must be an object")
        threshold = data.get("threshold")
        if not _is_number(threshold) or not math.isfinite(threshold) or not 0.0 < threshold < 1.0:
            raise ModelIntegrityError(
                f"{where}: operating point {name!r}: threshold must be a number strictly between 0 and 1, "
                f"got {threshold!r}"
            )
