"""Face-model initialisation of MLFA networks, and the pretraining tasks that make such models.

Mapping (design.md section 2): every branch gets the face model's conv1 and stages 1-3; agg1,
agg2, agg3 get stages 2, 3, 4; the first conv of the main stage 4 gets the face model's stage-4
weight tiled 3x along its input channels (the main stage reads the concatenation of three
stage-3 outputs). For IR networks the first stage-4 unit's input-side tensors (its input BN,
first conv and shortcut conv) are tiled the same way. The aggregation 1x1 convs, optional SE
gates and the classifier stay random.

Checkpoints are plain state dicts: ``.safetensors`` or a torch file read with
``torch.load(weights_only=True)`` (never unpickled objects).

Pretraining (offline here, on simulator identities; the same code runs on real data):
  * face identity: CASIA-WebFace layout root/<identity>/<img>.jpg, ArcFace or CosFace margin
  * gender: AFAD layout root/<age>/<111 male | 112 female>/<img>.jpg, 2-class softmax
Init slots: resnet34-face, resnet34-gender, ir50-face, ir50-face-asian.
"""
from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from sdk.errors import InputValidationError

#: slot -> (face architecture, pretraining task)
INIT_SLOTS: dict[str, tuple[str, str]] = {
    "resnet34-face": ("resnet34", "face"),
    "resnet34-gender": ("resnet34", "gender"),
    "ir50-face": ("ir50", "face"),
    "ir50-face-asian": ("ir50", "face"),
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


# --- loading --------------------------------------------------------------------------------
def load_state_dict(source: str | Path | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A face-model state dict from a file (.safetensors or weights-only torch) or a mapping."""
    if isinstance(source, Mapping):
        state = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise InputValidationError(f"checkpoint {path} does not exist")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # weights_only refuses pickled objects: say so plainly
                raise InputValidationError(f"{path}: not a weights-only state dict ({error})") from None
        for wrapper in ("state_dict", "model"):
            if isinstance(state, Mapping) and wrapper in state and isinstance(state[wrapper], Mapping):
                state = dict(state[wrapper])
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def face_checkpoint_family(state: Mapping[str, torch.Tensor]) -> str:
    if "input_layer.0.weight" in state and any(k.startswith("body.") for k in state):
        return "ir"
    if "conv1.weight" in state and any(k.startswith("layer1.") for k in state):
        return "resnet_caffe"
    raise InputValidationError("not a caffe-ResNet (conv1/layerN) or IR (input_layer/body) face checkpoint")


# --- mapping --------------------------------------------------------------------------------
@dataclass
class InitReport:
    source: str
    family: str
    loaded: list[str] = field(default_factory=list)
    tiled: list[str] = field(default_factory=list)
    left_random: list[str] = field(default_factory=list)
    shape_mismatches: list[tuple[str, str, list[int], list[int]]] = field(default_factory=list)
    missing_in_source: list[tuple[str, str]] = field(default_factory=list)
    unused_source: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "family": self.family, "loaded": self.loaded, "tiled": self.tiled,
            "left_random": self.left_random,
            "shape_mismatches": [
                {"target": t, "source": s, "target_shape": ts, "source_shape": ss}
                for t, s, ts, ss in self.shape_mismatches
            ],
            "missing_in_source": [{"target": t, "source": s} for t, s in self.missing_in_source],
            "unused_source": self.unused_source,
        }

    def summary(self) -> str:
        lines = [
            f"init from {self.source} ({self.family}): {len(self.loaded)} tensors loaded "
            f"({len(self.tiled)} tiled 3x), {len(self.left_random)} left random, "
            f"{len(self.shape_mismatches)} shape mismatches, {len(self.missing_in_source)} missing in source, "
            f"{len(self.unused_source)} source tensors unused"
        ]
        # Group keys by module ("agg1.reduce", "fc") so the summary stays one line.
        random_roots = sorted({".".join(k.split(".")[:2]) if k.startswith(("agg", "se")) else k.split(".")[0]
                               for k in self.left_random})
        if random_roots:
            lines.append("  left random: " + ", ".join(random_roots))
        for t, s, ts, ss in self.shape_mismatches[:10]:
            lines.append(f"  shape mismatch {t} {ts} <- {s} {ss}")
        if len(self.shape_mismatches) > 10:
            lines.append(f"  ... {len(self.shape_mismatches) - 10} more mismatches")
        return "\n".join(lines)


def _stage_offsets(blocks: tuple[int, ...]) -> list[int]:
    return [sum(blocks[:i]) for i in range(len(blocks))]


def source_key(target: str, family: str, blocks: tuple[int, ...]) -> str | None:
    """Name in the face checkpoint of an MLFA tensor, or None if it stays random."""
    if target.startswith(("fc.", "se.")) or ".reduce." in target:
        return None
    if family == "resnet_caffe":
        m = re.match(r"branches\.\w+\.(.+)$", target)
        if m:
            return m.group(1)
        m = re.match(r"agg([123])\.stage\.(.+)$", target)
        if m:
            return f"layer{int(m.group(1)) + 1}.{m.group(2)}"
        if target.startswith("layer4."):
            return target
        return None
    offsets = _stage_offsets(blocks)
    m = re.match(r"branches\.\w+\.input_layer\.(.+)$", target)
    if m:
        return f"input_layer.{m.group(1)}"
    m = re.match(r"branches\.\w+\.layer([123])\.(\d+)\.(.+)$", target)
    if m:
        return f"body.{offsets[int(m.group(1)) - 1] + int(m.group(2))}.{m.group(3)}"
    m = re.match(r"agg([123])\.stage\.(\d+)\.(.+)$", target)
    if m:
        return f"body.{offsets[int(m.group(1))] + int(m.group(2))}.{m.group(3)}"
    m = re.match(r"layer4\.(\d+)\.(.+)$", target)
    if m:
        return f"body.{offsets[3] + int(m.group(1))}.{m.group(2)}"
    return None


def _tile_axis(target: str, family: str) -> int | None:
    """Axis along which the main stage-4 tensor reads the 3x concatenation (None: copy as is)."""
    if family == "resnet_caffe":
        return 1 if target == "layer4.0.weight" else None
    if target in ("layer4.0.res_layer.1.weight", "layer4.0.shortcut_layer.0.weight"):
        return 1
    if target.startswith("layer4.0.res_layer.0.") and not target.endswith("num_batches_tracked"):
        return 0  # the unit's input BatchNorm runs over the 768 concatenated channels
    return None


def init_from_face_checkpoint(
    model: nn.Module, source: str | Path | Mapping[str, torch.Tensor], *, slot: str | None = None, strict_family: bool = True
) -> InitReport:
    """Copy a face model's tensors into an MLFA network in place; returns what happened."""
    inner = getattr(model, "module", model)
    state = load_state_dict(source)
    family = face_checkpoint_family(state)
    if strict_family and family != inner.config.backbone:
        raise InputValidationError(
            f"checkpoint is a {family} face model but {inner.config.name} has a {inner.config.backbone} backbone"
        )
    if slot is not None and slot not in INIT_SLOTS:
        raise InputValidationError(f"unknown init slot {slot!r}; known: {sorted(INIT_SLOTS)}")
    report = InitReport(source=str(source) if not isinstance(source, Mapping) else "<state dict>", family=family)
    target_state = inner.state_dict()
    used: set[str] = set()
    new_state = {}
    for name, tensor in target_state.items():
        key = source_key(name, family, inner.config.blocks)
        if key is None:
            report.left_random.append(name)
            continue
        if key not in state:
            report.missing_in_source.append((name, key))
            report.left_random.append(name)
            continue
        value = state[key]
        axis = _tile_axis(name, family)
        if axis is not None and value.dim() > axis and value.shape[axis] * 3 == tensor.shape[axis]:
            value = torch.cat([value, value, value], dim=axis)
            report.tiled.append(name)
        if tuple(value.shape) != tuple(tensor.shape):
            report.shape_mismatches.append((name, key, list(tensor.shape), list(state[key].shape)))
            report.left_random.append(name)
            continue
        new_state[name] = value.to(dtype=tensor.dtype)
        report.loaded.append(name)
        used.add(key)
    inner.load_state_dict(new_state, strict=False)
    report.unused_source = sorted(set(state) - used)
    return report


# --- pretraining data -----------------------------------------------------------------------
def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def identity_folder_samples(root: str | Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """CASIA-WebFace layout root/<identity>/<img>: (path, class) pairs and the class names."""
    root = Path(root)
    identities = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    samples = [(img, c) for c, name in enumerate(identities) for img in _images_under(root / name)]
    if not samples:
        raise InputValidationError(f"{root}: no images in root/<identity>/<img> layout")
    return samples, identities


def afad_samples(root: str | Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """AFAD layout root/<age>/<111 male|112 female>/<img>: (path, 0 male / 1 female)."""
    root = Path(root)
    samples = []
    if root.is_dir():
        for age in sorted(p for p in root.iterdir() if p.is_dir()):
            for code, label in (("111", 0), ("112", 1)):
                if (age / code).is_dir():
                    samples += [(img, label) for img in _images_under(age / code)]
    if not samples:
        raise InputValidationError(f"{root}: no images in root/<age>/<111|112>/<img> layout")
    return samples, ["male", "female"]


class FaceImageDataset:
    """(3x112x112 float32 in [0,255], class) from face images via the shared preprocessing."""

    def __init__(self, samples: list[tuple[Path, int]], train: bool = True, seed: int = 0) -> None:
        from training.data.augment import PairedAugment

        self.samples = samples
        self.augment = PairedAugment(rotation_deg=5.0, scale=(0.85, 1.0)) if train else None
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from sdk.preprocess import center_crop, resize_square, to_chw3
        from sdk.types import REGION_SIZE
        from training.data.casia import load_modality

        path, label = self.samples[index]
        region = resize_square(load_modality(path, "rgb"), REGION_SIZE)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image = self.augment.apply(region, self.augment.sample(REGION_SIZE, rng), colour=True)
        else:
            image = center_crop(region)
        return torch.from_numpy(to_chw3(image)), label


# --- heads ----------------------------------------------------------------------------------
class MarginHead(nn.Module):
    """ArcFace (cos(theta + m)) or CosFace (cos(theta) - m) logits, scaled by s."""

    def __init__(self, embedding: int, classes: int, kind: str = "arcface", s: float = 64.0, m: float | None = None) -> None:
        super().__init__()
        if kind not in ("arcface", "cosface"):
            raise InputValidationError(f"margin must be arcface or cosface, got {kind!r}")
        self.kind = kind
        self.s = s
        self.m = m if m is not None else (0.5 if kind == "arcface" else 0.35)
        self.weight = nn.Parameter(torch.empty(classes, embedding))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cosine = F.linear(F.normalize(embedding.float()), F.normalize(self.weight.float())).clamp(-1 + 1e-7, 1 - 1e-7)
        one_hot = F.one_hot(target, cosine.shape[1]).to(cosine.dtype)
        if self.kind == "cosface":
            return self.s * (cosine - one_hot * self.m)
        theta = torch.acos(cosine)
        # Beyond pi - m the additive angle is not monotonic: fall back to CosFace-style there.
        target_logit = torch.where(theta + self.m < math.pi, torch.cos(theta + self.m), cosine - self.m * math.sin(self.m))
        return self.s * (cosine + one_hot * (target_logit - cosine))


class SoftmaxHead(nn.Module):
    def __init__(self, embedding: int, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(embedding, classes)

    def forward(self, embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fc(embedding)


# --- pretraining ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PretrainResult:
    checkpoint: Path
    arch: str
    task: str
    classes: int
    epochs: int
    final_loss: float
    final_acc: float
    samples_per_s: float


def pretrain(
    task: str,
    arch: str,
    data_root: str | Path,
    out_path: str | Path,
    *,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 1e-3,
    width: float = 1.0,
    margin: str = "arcface",
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> PretrainResult:
    """Train a face backbone on identities (task "face") or gender (task "gender"); save its state dict."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from training.models.face import create_face_model

    if task == "face":
        samples, classes = identity_folder_samples(data_root)
    elif task == "gender":
        samples, classes = afad_samples(data_root)
    else:
        raise InputValidationError(f"task must be face or gender, got {task!r}")
    torch.manual_seed(seed)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    model = create_face_model(arch, width=width).to(dev)
    head = (MarginHead(model.embedding_size, len(classes), margin) if task == "face"
            else SoftmaxHead(model.embedding_size, len(classes))).to(dev)
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    dataset = FaceImageDataset(samples, train=True, seed=seed)
    batch = min(batch_size, len(dataset))
    steps = max(1, len(dataset) // batch)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps)
    loss_value, acc, rate = float("nan"), 0.0, 0.0
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed * 7919 + epoch)).tolist()
        loader = DataLoader(dataset, batch_size=batch, sampler=order, drop_last=len(dataset) > batch)
        model.train()
        head.train()
        total, correct, seen, start = 0.0, 0, 0, time.perf_counter()
        for images, target in tqdm(loader, desc=f"pretrain {task} {epoch + 1}/{epochs}", disable=not progress, leave=False):
            images, target = images.to(dev), target.to(dev)
            logits = head(model(images), target)
            loss = F.cross_entropy(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(target)
            correct += int((logits.argmax(1) == target).sum())
            seen += len(target)
        loss_value, acc, rate = total / seen, correct / seen, seen / (time.perf_counter() - start)
        log(json.dumps({"epoch": epoch + 1, "loss": round(loss_value, 4), "acc": round(acc, 4),
                        "samples_per_s": round(rate, 1)}))
    out = save_face_checkpoint(model, out_path, meta={"arch": arch, "task": task, "classes": str(len(classes)),
                                                       "width": str(width), "margin": margin if task == "face" else ""})
    return PretrainResult(out, arch, task, len(classes), epochs, loss_value, acc, rate)


def save_face_checkpoint(model: nn.Module, path: str | Path, meta: Mapping[str, str] | None = None) -> Path:
    """Face-model state dict as .safetensors (or a weights-only torch file for other suffixes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(tmp), metadata=dict(meta or {}))
    else:
        torch.save(state, tmp)
    tmp.replace(path)
    return path


# --- simulator identities -------------------------------------------------------------------
def write_sim_face_dataset(
    root: str | Path, identities: int = 8, per_identity: int = 6, *, layout: str = "identity", first_seed: int = 1000
) -> Path:
    """Write simulator faces (identity = seed) as an identity-folder or AFAD-style dataset.

    AFAD labels come from the seed's parity (the simulator has no gender attribute): good for
    exercising the gender pipeline end to end, meaningless as a gender model.
    """
    try:
        from sdk.sim import Simulator  # type: ignore[attr-defined]
    except ImportError as error:
        from sdk.errors import DependencyMissingError

        raise DependencyMissingError(f"the simulator (sdk.sim) is not available: {error}") from None
    import cv2

    root = Path(root)
    for n in range(identities):
        seed = first_seed + n
        sim = Simulator("live", seed)
        if layout == "identity":
            folder = root / f"sim{seed:06d}"
        elif layout == "afad":
            folder = root / str(18 + seed % 40) / ("111" if seed % 2 == 0 else "112")
        else:
            raise InputValidationError(f"layout must be identity or afad, got {layout!r}")
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_identity):
            crops = sim.render_region_crops(i)
            if isinstance(crops, tuple):  # (FaceCrops, FrameTruth)
                crops = crops[0]
            cv2.imwrite(str(folder / f"{seed:06d}_{i:03d}.jpg"), cv2.cvtColor(np.asarray(crops.rgb), cv2.COLOR_RGB2BGR))
    return root
