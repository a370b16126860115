"""Training configuration: one JSON file (or a named preset in training/presets/) per run.

Every setting of a run lives here so that a run is reproducible from its config alone; the
trainer copies the resolved config into its output folder. Unknown keys are errors (a typo must
not silently fall back to a default).

Example (training/presets/cpu_tiny.json):

    {
      "name": "cpu_tiny",
      "seed": 1,
      "model": {"name": "mlfa_resnet18", "options": {"width": 0.25}},
      "data": {"root": "data/casia", "train_list": "train_list.txt", "val_list": "val_list.txt",
               "live_label": 1, "max_train_samples": 300, "num_workers": 0},
      "optim": {"epochs": 2, "batch_size": 16, "lr": 0.001, "weight_decay": 0.0, "min_lr": 0.0},
      "augment": {"rotation_deg": 10, "scale": [0.8, 1.0], "hflip": 0.5},
      "init": {"checkpoint": null, "slot": null},
      "runtime": {"amp": "auto", "device": "auto", "multi_gpu": true}
    }
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from sdk.errors import InputValidationError
from training.data.augment import PairedAugment

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


@dataclass(frozen=True)
class ModelSpec:
    name: str = "mlfa_resnet34"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSpec:
    #: Folder the list entries are relative to.
    root: str = "."
    train_list: str | None = None
    val_list: str | None = None
    #: Label value that means "live" in the list files (1 in the 2019 lists; 0 in later ones).
    live_label: int = 1
    #: With folds_dir + fold_scheme + fold, the lists are <folds_dir>/<scheme>/fold<k>/*.txt.
    folds_dir: str | None = None
    fold_scheme: str = "attack3"
    fold: int | None = None
    #: Keep only the first N samples of a list (after a seeded shuffle): small CPU runs.
    max_train_samples: int | None = None
    max_val_samples: int | None = None
    num_workers: int = 0
    #: The SHA-256 (or its first 12+ hex digits) the training samples must hash to, as a run's data.json
    #: records it: a recipe that names a list by path alone trains on whatever was written there last.
    train_sha256: str | None = None


@dataclass(frozen=True)
class OptimSpec:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-4
    weight_decay: float = 0.0
    #: Cosine schedule from lr down to min_lr over all iterations of the run.
    min_lr: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True)
class AugmentSpec:
    # Defaults are PairedAugment's own, so the config and the augmentation cannot drift apart.
    enabled: bool = True
    rotation_deg: float = PairedAugment.rotation_deg
    scale: tuple[float, float] = PairedAugment.scale
    ratio: tuple[float, float] = PairedAugment.ratio
    hflip: float = PairedAugment.hflip
    brightness: float = PairedAugment.brightness
    contrast: float = PairedAugment.contrast
    saturation: float = PairedAugment.saturation
    # Physics-friendly augmentation (training.data.augment): off by default.
    ir_gain: float = PairedAugment.ir_gain
    ir_gamma: float = PairedAugment.ir_gamma
    depth_noise: float = PairedAugment.depth_noise
    depth_dropout: float = PairedAugment.depth_dropout
    background_fill: float = PairedAugment.background_fill
    outline_cut: float = PairedAugment.outline_cut
    aligned_holes: float = PairedAugment.aligned_holes
    aligned_hole_max: float = PairedAugment.aligned_hole_max
    colour_refocus: float = PairedAugment.colour_refocus
    colour_sharpen_max: float = PairedAugment.colour_sharpen_max
    #: Share of live training samples turned into cross-modal negatives labelled attack (live
    #: depth with an attack's colour and NIR, or the reverse; training.data.casia.SWAPS). In a
    #: distillation only when every teacher member trained with it
    #: (training.distill.check_teacher_saw_composites). 0: off.
    modality_swap: float = 0.0
    #: Share of live training samples whose depth becomes a relief-free sheet (flat or bent; holes
    #: and outline kept; sdk.relief), labelled attack. Distillation: as for modality_swap. 0: off.
    relief_negative: float = 0.0
    #: Share of live training samples (neither swapped nor flattened) that take their colour crop
    #: from a random attack sample and stay labelled live: live depth and NIR decide, colour
    #: texture alone never makes a spoof (docs/decisions.md, candidate N). Distillation: as for
    #: modality_swap (a teacher would call the composite an attack). 0: off.
    colour_swap_live: float = 0.0


@dataclass(frozen=True)
class InitSpec:
    #: A face-model state dict (.pt via weights_only, or .safetensors) mapped by training.pretrain.
    checkpoint: str | None = None
    #: resnet34-face | resnet34-gender | ir50-face | ir50-face-asian (informational + arch check).
    slot: str | None = None
    #: A warm start: a trained model.pt of this very network (same model name and options), loaded
    #: whole (weights_only) and recorded with its SHA-256. Exclusive with ``checkpoint``.
    weights: str | None = None
    #: Model options the warm start may differ in: only options that leave every parameter's shape
    #: alone (SHAPE_NEUTRAL_OPTIONS), e.g. a stride-1 model continued as a stride-2 student.
    adapt_options: tuple[str, ...] = ()


#: Model options that change no parameter's shape, so weights trained under one value load under another.
SHAPE_NEUTRAL_OPTIONS = ("stem_stride",)


#: Engines a distillation teacher can run on (RuntimeSpec.teacher_engine).
TEACHER_ENGINES = ("auto", "torch", "onnxruntime")


@dataclass(frozen=True)
class RuntimeSpec:
    #: "auto" (autocast on CUDA only), "bf16", "fp16" or "off".
    amp: str = "auto"
    #: "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    device: str = "auto"
    #: Use every visible GPU (DataParallel) when there are several.
    multi_gpu: bool = True
    #: CPU threads for torch (0 = leave torch's default).
    threads: int = 0
    progress: bool = True
    #: Also checkpoint every N optimiser steps inside an epoch (0: at epoch ends only). Not part
    #: of what must match to resume, so a run may be resumed with another frequency.
    checkpoint_every_steps: int = 0
    #: DDP workers per run through Ray Train's TorchTrainer (ensemble members; 1 = a plain task).
    ddp_workers: int = 1
    #: Engine of a distillation teacher: "auto" (ONNX Runtime on the CPU when installed, else
    #: torch), "torch" or "onnxruntime". Same probabilities either way, hence not part of resuming.
    teacher_engine: str = "auto"


@dataclass(frozen=True)
class DistillSpec:
    """Knowledge distillation from an ensemble run (used by `sr300-liveness distill` only).

    Loss = kd_weight * T^2 * KL(teacher_T || student_T) + ce_weight * CE(student, label), the
    teacher being the mean of the members' softmax(logits / T), run live on the same augmented
    (and mixed) crops as the student. Unlabelled lists add renders with KD loss only.
    """

    #: The ensemble run folder (set by the distill command; part of what must match to resume).
    teacher: str | None = None
    temperature: float = 4.0
    kd_weight: float = 0.9
    ce_weight: float = 0.1
    #: Mixup of the three inputs with lambda ~ Beta(alpha, alpha) on a share of the batches (0: off).
    mixup_alpha: float = 0.0
    mixup_prob: float = 0.5
    #: Extra renders (lists relative to data.root) whose labels are ignored: KD loss only.
    unlabeled_lists: tuple[str, ...] = ()
    max_unlabeled_samples: int | None = None
    #: A relabelling composite (augment.relief_negative, modality_swap, colour_swap_live) that some
    #: teacher member never trained on: "refuse" it, or teach it by its "label" alone (that row's KD
    #: share becomes cross-entropy on the composite's label; the teacher is not asked about it).
    unseen_composites: str = "refuse"
    #: Labelled live rows: distilled from the "teacher" (the default), or taught by their "label"
    #: alone (their KD share becomes cross-entropy on "live"), so the teacher's doubts about this
    #: renderer's live faces are not copied while its ranking of attacks still is.
    live_rows: str = "teacher"
    #: A floor on the teacher's "live" probability for labelled live rows, as a probability at T = 1
    #: (None: off). A live row the teacher doubts more than this is taught as if the teacher gave it
    #: the floor; every row keeps the KD loss at temperature T, so the live side pulls as hard as the
    #: attack side (live_rows "label" swaps in cross-entropy at T = 1, which stops pulling once a row
    #: is confident: candidate AC).
    live_floor: float | None = None


@dataclass(frozen=True)
class TrainConfig:
    name: str = "run"
    seed: int = 0
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    optim: OptimSpec = field(default_factory=OptimSpec)
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    init: InitSpec = field(default_factory=InitSpec)
    runtime: RuntimeSpec = field(default_factory=RuntimeSpec)
    distill: DistillSpec = field(default_factory=DistillSpec)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def replace(self, **overrides: Any) -> "TrainConfig":
        """Dotted overrides: cfg.replace(**{"optim.epochs": 1, "data.root": "x"})."""
        data = self.to_dict()
        for dotted, value in overrides.items():
            node = data
            keys = dotted.split(".")
            for key in keys[:-1]:
                if key not in node or not isinstance(node[key], dict):
                    raise InputValidationError(f"unknown config key {dotted!r}")
                node = node[key]
            if keys[-1] not in node and keys[0] != "model":
                raise InputValidationError(f"unknown config key {dotted!r}")
            node[keys[-1]] = value
        return config_from_dict(data)


_SECTIONS = {
    "model": ModelSpec, "data": DataSpec, "optim": OptimSpec, "augment": AugmentSpec,
    "init": InitSpec, "runtime": RuntimeSpec, "distill": DistillSpec,
}


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    if not isinstance(values, Mapping):
        raise InputValidationError(f"config section {where!r} must be an object")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(names)
    if unknown:
        raise InputValidationError(f"unknown key(s) in config section {where!r}: {sorted(unknown)}")
    kwargs = {}
    for key, value in values.items():
        if isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    top = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(data) - top
    if unknown:
        raise InputValidationError(f"unknown top-level config key(s): {sorted(unknown)}")
    kwargs: dict[str, Any] = {k: v for k, v in data.items() if k not in _SECTIONS}
    for section, cls in _SECTIONS.items():
        if section in data:
            values = dict(data[section])
            if section == "model":
                values["options"] = dict(values.get("options") or {})
            kwargs[section] = _build(cls, values, section)
    config = TrainConfig(**kwargs)
    validate_config(config)
    return config


def validate_config(config: TrainConfig) -> None:
    from training.models import list_models

    if config.model.name not in list_models():
        raise InputValidationError(f"unknown model {config.model.name!r}; known: {list_models()}")
    if config.optim.epochs < 1 or config.optim.batch_size < 1 or config.optim.lr <= 0:
        raise InputValidationError("optim.epochs and optim.batch_size must be >= 1 and optim.lr > 0")
    if config.data.live_label not in (0, 1):
        raise InputValidationError("data.live_label must be 0 or 1")
    d = config.distill
    if d.temperature <= 0 or d.kd_weight < 0 or d.ce_weight < 0 or d.kd_weight + d.ce_weight <= 0:
        raise InputValidationError("distill: temperature must be > 0 and the loss weights >= 0, not both 0")
    if d.mixup_alpha < 0 or not 0 <= d.mixup_prob <= 1:
        raise InputValidationError("distill: mixup_alpha must be >= 0 and mixup_prob in [0, 1]")
    if d.unseen_composites not in ("refuse", "label"):
        raise InputValidationError(f"distill.unseen_composites must be 'refuse' or 'label', got {d.unseen_composites!r}")
    if d.unseen_composites == "label" and d.mixup_alpha > 0:
        # a mixed row blends a composite with another crop: neither its label nor the teacher fits it
        raise InputValidationError("distill.unseen_composites 'label' cannot be combined with mixup (mixup_alpha > 0)")
    if d.live_rows not in ("teacher", "label"):
        raise InputValidationError(f"distill.live_rows must be 'teacher' or 'label', got {d.live_rows!r}")
    if d.live_rows == "label" and d.mixup_alpha > 0:
        raise InputValidationError("distill.live_rows 'label' cannot be combined with mixup (mixup_alpha > 0)")
    if d.live_floor is not None:
        if isinstance(d.live_floor, bool) or not isinstance(d.live_floor, (int, float)) or not 0.5 < d.live_floor < 1:
            raise InputValidationError(f"distill.live_floor must be a probability in (0.5, 1), got {d.live_floor!r}")
        if d.mixup_alpha > 0:  # a mixed row is neither live nor an attack
            raise InputValidationError("distill.live_floor cannot be combined with mixup (mixup_alpha > 0)")
        if d.live_rows == "label":
            raise InputValidationError("distill.live_floor has no effect with live_rows 'label' (no live row asks the teacher)")
    if config.runtime.ddp_workers < 1:
        raise InputValidationError("runtime.ddp_workers must be >= 1")
    if config.runtime.checkpoint_every_steps < 0:
        raise InputValidationError("runtime.checkpoint_every_steps must be >= 0")
    if config.runtime.amp not in ("auto", "bf16", "fp16", "off"):
        raise InputValidationError("runtime.amp must be auto, bf16, fp16 or off")
    if not 0.0 <= config.augment.colour_refocus <= 1.0 or not config.augment.colour_sharpen_max >= 0.0:
        raise InputValidationError("augment.colour_refocus must be in [0, 1] and augment.colour_sharpen_max >= 0")
    if not 0.0 <= config.augment.relief_negative <= 1.0:
        raise InputValidationError("augment.relief_negative must be in [0, 1]")
    if not 0.0 <= config.augment.colour_swap_live <= 1.0:
        raise InputValidationError("augment.colour_swap_live must be in [0, 1]")
    if not 0.0 <= config.augment.modality_swap <= 1.0:
        raise InputValidationError("augment.modality_swap must be in [0, 1]")
    if config.init.weights and config.init.checkpoint:
        raise InputValidationError("init.weights (a trained model of this network) and init.checkpoint (a face "
                                   "model) are two ways to start: choose one")
    stray = sorted(set(config.init.adapt_options) - set(SHAPE_NEUTRAL_OPTIONS))
    if stray:
        raise InputValidationError(f"init.adapt_options may name only {SHAPE_NEUTRAL_OPTIONS}, not {stray}")
    if config.init.adapt_options and not config.init.weights:
        raise InputValidationError("init.adapt_options applies to a warm start: set init.weights too")
    if config.runtime.teacher_engine not in TEACHER_ENGINES:
        raise InputValidationError(f"runtime.teacher_engine must be one of {TEACHER_ENGINES}")


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.json"))


def load_config(path_or_preset: str | Path) -> TrainConfig:
    """A JSON config file, or the name of a preset in training/presets/."""
    path = Path(path_or_preset)
    if not path.is_file():
        preset = PRESETS_DIR / f"{path_or_preset}.json"
        if not preset.is_file():
            raise InputValidationError(
                f"{path_or_preset}: neither a config file nor a preset (presets: {', '.join(list_presets())})"
            )
        path = preset
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputValidationError(f"{path}: invalid JSON: {error}") from None
    return config_from_dict(data)


def parse_override(text: str) -> tuple[str, Any]:
    """'optim.epochs=3' -> ("optim.epochs", 3); values are JSON when they parse, else strings."""
    if "=" not in text:
        raise InputValidationError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def config_with_overrides(config: Any, sets: list[str], named: dict[str, Any], quiet: bool = False) -> Any:
    """A config with the command line applied: ``--set KEY=VALUE`` texts, then named options
    (``{"data.root": args.root, ...}``; None means not given), then ``--quiet`` (no progress bar)."""
    overrides = dict(parse_override(text) for text in sets)
    overrides.update({key: value for key, value in named.items() if value is not None})
    if quiet:
        overrides["runtime.progress"] = False
    return config.replace(**overrides) if overrides else config
