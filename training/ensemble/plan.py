"""The 24-member ensemble of the reference method: 4 initialisations x 3 attack folds x 2 seeds.

A run folder (RUN) holds everything a member needs, so that ``ensemble train`` can be re-run (or
run on another machine of a Ray cluster sharing the folder) with nothing but ``--out RUN``:

    RUN/plan.json                        {"members": [{"name", "init", "fold", "seed", "status"}, ...]}
    RUN/ensemble.json                    how the plan was made (preset, root, lists, init checkpoints)
    RUN/folds/attack3/fold<k>/*.txt      the attack-specific fold lists (training.data.folds)
    RUN/members/<name>/member.json       the member's full training config (+ init checkpoint hash)
    RUN/members/<name>/                  its training run (checkpoint.pt, metrics.csv, model.pt, ...)

``--config`` names an ensemble preset (training/presets/ensembles/<name>.json: a training
preset plus the model and init checkpoint of every slot), a training preset or a config file.
A training preset of the paper's family (mlfa_resnet34 / mlfa_ir50) gives the paper's slots:
ResNet-34 for the two ResNet initialisations and IR-50 for the two IR ones. Any other preset
keeps its model for every slot; without init checkpoints the slots then differ only in their
seeds (recorded as ``init_checkpoint: null``: the random-init ablation, not the paper's recipe).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from sdk.engine.bundle import sha256_file  # re-exported: members' checkpoint hashes
from sdk.errors import InputValidationError
from training.config import PRESETS_DIR, TrainConfig, config_from_dict, load_config
from training.data.casia import read_list, write_list
from training.data.folds import make_folds, fold_paths
from training.pretrain import INIT_SLOTS

#: The paper's four initialisations, in table order.
INIT_ORDER: tuple[str, ...] = ("resnet34-face", "resnet34-gender", "ir50-face", "ir50-face-asian")
FOLDS: tuple[int, ...] = (1, 2, 3)
SEEDS: tuple[int, ...] = (1, 2)
FOLD_SCHEME = "attack3"
PLAN_NAME = "plan.json"
META_NAME = "ensemble.json"
MEMBER_NAME = "member.json"
MEMBERS_DIR = "members"
ENSEMBLE_PRESETS_DIR = PRESETS_DIR / "ensembles"
#: Paper family: the architecture each init slot's face model has.
PAPER_SLOT_MODELS = {"resnet34-face": "mlfa_resnet34", "resnet34-gender": "mlfa_resnet34",
                     "ir50-face": "mlfa_ir50", "ir50-face-asian": "mlfa_ir50"}
STATUS_KEYS = ("name", "init", "fold", "seed", "status")


@dataclass(frozen=True)
class Member:
    name: str
    init: str
    fold: int
    seed: int
    config: TrainConfig
    init_checkpoint: str | None = None
    init_checkpoint_sha256: str | None = None

    def row(self, status: str) -> dict[str, Any]:
        return {"name": self.name, "init": self.init, "fold": self.fold, "seed": self.seed, "status": status}

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "init": self.init, "fold": self.fold, "seed": self.seed,
                "init_checkpoint": self.init_checkpoint, "init_checkpoint_sha256": self.init_checkpoint_sha256,
                "config": self.config.to_dict()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Member":
        return cls(data["name"], data["init"], int(data["fold"]), int(data["seed"]), config_from_dict(data["config"]),
                   data.get("init_checkpoint"), data.get("init_checkpoint_sha256"))


def member_name(init: str, fold: int, seed: int) -> str:
    return f"{init}_fold{fold}_seed{seed}"


def list_ensemble_presets() -> list[str]:
    return sorted(p.stem for p in ENSEMBLE_PRESETS_DIR.glob("*.json"))


def resolve_preset(name: str) -> tuple[TrainConfig, dict[str, dict[str, Any]], dict[str, Any]]:
    """(base config, per-slot {"model": {...} | None, "checkpoint": path | None}, preset JSON)."""
    preset_path = ENSEMBLE_PRESETS_DIR / f"{name}.json"
    if preset_path.is_file() or (Path(name).is_file() and _is_ensemble_file(Path(name))):
        path = preset_path if preset_path.is_file() else Path(name)
        data = json.loads(path.read_text(encoding="utf-8"))
        unknown = set(data) - {"name", "description", "base", "overrides", "slots"}
        if unknown:
            raise InputValidationError(f"{path}: unknown ensemble preset key(s) {sorted(unknown)}")
        base = load_config(data["base"])
        if data.get("overrides"):
            base = base.replace(**data["overrides"])
        slots = {slot: dict(data.get("slots", {}).get(slot) or {}) for slot in INIT_ORDER}
        for slot, spec in slots.items():
            if set(spec) - {"model", "checkpoint"}:
                raise InputValidationError(f"{path}: slot {slot}: only 'model' and 'checkpoint' may be set")
        return base, slots, data
    base = load_config(name)
    paper = base.model.name in set(PAPER_SLOT_MODELS.values())
    slots = {slot: {"model": {"name": PAPER_SLOT_MODELS[slot], "options": dict(base.model.options)} if paper else None}
             for slot in INIT_ORDER}
    return base, slots, {"base": name}


def _is_ensemble_file(path: Path) -> bool:
    try:
        return "base" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def _init_checkpoint(slot: str, spec: Mapping[str, Any], init_dir: Path | None) -> Path | None:
    if spec.get("checkpoint"):
        path = Path(spec["checkpoint"])
        if not path.is_file():
            raise InputValidationError(f"init checkpoint for {slot} not found: {path}")
        return path.resolve()
    if init_dir is not None:
        for suffix in (".safetensors", ".pt"):
            path = init_dir / f"{slot}{suffix}"
            if path.is_file():
                return path.resolve()
    return None


def make_plan(
    preset: str,
    root: str | Path,
    out: str | Path,
    *,
    train_list: str = "train_list.txt",
    extra_train: Sequence[str] = (),
    init_dir: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    fold_seed: int = 0,
    warm_start: str | Path | None = None,
) -> list[Member]:
    """Write RUN/plan.json, the fold lists and every member's config; returns the members.

    ``extra_train`` lists (relative to ``root``, labelled) go into every member's training split
    (attack families the attack folds do not split, e.g. screens or masks). ``warm_start`` names a
    trained ensemble run: every member then starts from the trained weights of its namesake there
    (``init.weights``: longer training without repeating the first run's epochs), which needs
    every namesake done. Re-planning an existing run is refused unless every member config comes
    out the same (then it is a no-op).
    """
    root_path = Path(root).resolve()
    run = Path(out).resolve()
    base, slots, preset_data = resolve_preset(preset)
    base = base.replace(**{"data.root": str(root_path), **dict(overrides or {})})
    samples = read_list(root_path / train_list if not Path(train_list).is_absolute() else Path(train_list),
                        base.data.live_label)
    extras = []
    for name in extra_train:
        extras += read_list(root_path / name if not Path(name).is_absolute() else Path(name), base.data.live_label)
    folds_dir = run / "folds"
    fold_lists = make_folds(samples, FOLD_SCHEME, seed=fold_seed)
    init_path = Path(init_dir).resolve() if init_dir else None
    warm_run = Path(warm_start).resolve() if warm_start else None
    if warm_run is not None and init_path is not None:
        raise InputValidationError("--warm-start and --init-dir are exclusive: a warm start already holds every weight")
    warm_weights = _warm_start_weights(warm_run) if warm_run is not None else {}
    members: list[Member] = []
    for slot_index, slot in enumerate(INIT_ORDER):
        spec = slots[slot]
        checkpoint = _init_checkpoint(slot, spec, init_path)
        for fold in FOLDS:
            for seed in SEEDS:
                changes: dict[str, Any] = {
                    "name": member_name(slot, fold, seed),
                    # Distinct data order and init for every member (slot, fold, seed).
                    "seed": 1000 * (slot_index + 1) + 10 * fold + seed,
                    "data.folds_dir": str(folds_dir), "data.fold_scheme": FOLD_SCHEME, "data.fold": fold,
                    "data.train_list": None, "data.val_list": None,
                    "init.slot": slot, "init.checkpoint": str(checkpoint) if checkpoint else None,
                }
                if spec.get("model"):
                    changes["model.name"] = spec["model"]["name"]
                    changes["model.options"] = dict(spec["model"].get("options") or {})
                if warm_run is not None:
                    if checkpoint is not None:
                        raise InputValidationError(f"slot {slot} names an init checkpoint and --warm-start gives "
                                                   "trained weights: choose one")
                    name = member_name(slot, fold, seed)
                    if name not in warm_weights:
                        raise InputValidationError(f"--warm-start {warm_run} has no member {name}")
                    changes["init.weights"] = str(warm_weights[name])
                config = base.replace(**changes)
                members.append(Member(member_name(slot, fold, seed), slot, fold, seed, config,
                                      str(checkpoint) if checkpoint else None,
                                      sha256_file(checkpoint) if checkpoint else None))
    existing = load_members(run) if (run / PLAN_NAME).is_file() else None
    if existing is not None:
        if [m.to_json() for m in existing] != [m.to_json() for m in members]:
            raise InputValidationError(f"{run} already holds another plan; choose another --out")
        return existing
    run.mkdir(parents=True, exist_ok=True)
    for k, (fold_train, fold_val) in enumerate(fold_lists, start=1):
        train_path, val_path = fold_paths(folds_dir, FOLD_SCHEME, k)
        write_list(train_path, list(fold_train) + extras, base.data.live_label)
        write_list(val_path, fold_val, base.data.live_label)
    from training.train import atomic_write_text

    for member in members:
        folder = run / MEMBERS_DIR / member.name
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / MEMBER_NAME, json.dumps(member.to_json(), indent=2) + "\n")
    meta = {"preset": preset, "preset_data": preset_data, "root": str(root_path), "train_list": train_list,
            "extra_train": list(extra_train), "fold_scheme": FOLD_SCHEME, "fold_seed": fold_seed,
            "init_dir": str(init_path) if init_path else None, "overrides": dict(overrides or {}),
            "warm_start": str(warm_run) if warm_run else None,
            "n_train": len(samples), "n_extra_train": len(extras)}
    atomic_write_text(run / META_NAME, json.dumps(meta, indent=2) + "\n")
    write_plan(run, members)
    return members


def _warm_start_weights(warm_run: Path) -> dict[str, Path]:
    """Member name -> trained model of that member in ``warm_run``; refused unless every one is done."""
    from training.ensemble.status import member_status
    from training.train import MODEL_NAME

    if not (warm_run / PLAN_NAME).is_file():
        raise InputValidationError(f"--warm-start {warm_run}: not an ensemble run (no {PLAN_NAME})")
    weights: dict[str, Path] = {}
    for member in load_members(warm_run):
        status = member_status(warm_run, member)["status"]
        path = member_dir(warm_run, member) / MODEL_NAME
        if status != "done" or not path.is_file():
            raise InputValidationError(f"--warm-start: member {member.name} of {warm_run} is {status}, not done")
        weights[member.name] = path.resolve()
    return weights


def load_members(run: str | Path) -> list[Member]:
    run = Path(run)
    if not (run / PLAN_NAME).is_file():
        raise InputValidationError(f"{run} has no {PLAN_NAME}: run `sr300-liveness ensemble plan` first")
    rows = json.loads((run / PLAN_NAME).read_text(encoding="utf-8"))["members"]
    members = []
    for row in rows:
        path = run / MEMBERS_DIR / row["name"] / MEMBER_NAME
        if not path.is_file():
            raise InputValidationError(f"{path} is missing: the run folder is incomplete")
        members.append(Member.from_json(json.loads(path.read_text(encoding="utf-8"))))
    return members


def member_dir(run: str | Path, member: Member | str) -> Path:
    return Path(run) / MEMBERS_DIR / (member if isinstance(member, str) else member.name)


def write_plan(run: str | Path, members: Sequence[Member]) -> dict[str, Any]:
    """plan.json with every member's current status (see training.ensemble.status)."""
    from training.ensemble.status import member_status
    from training.train import atomic_write_text

    table = {"members": [m.row(member_status(run, m)["status"]) for m in members]}
    atomic_write_text(Path(run) / PLAN_NAME, json.dumps(table, indent=2) + "\n")
    return table
