"""Train one MLFA network from a config; resumable; writes checkpoints, metrics and score files.

    sr300-liveness train --config cpu_tiny --set data.root=DIR --out runs/tiny [--resume]

Recipe (design.md section 2): Adam over EVERY parameter (the reference optimiser skipped the
classifier head; not reproduced), cosine LR over all iterations, 2-class cross-entropy with
label 1 = live. Checkpoints are written atomically (temporary file, fsync, rename, directory
fsync) after every epoch and, with ``runtime.checkpoint_every_steps`` = N, every N optimiser
steps inside an epoch, with model, optimiser, scheduler, RNG state and the epoch's running
totals. The shuffling order is a function of (seed, epoch) and the augmentation of every sample
of (seed, epoch, index), so a run killed at any point (kill -9 included) and resumed from its
last checkpoint skips the batches it already trained on and ends with the same weights as an
uninterrupted run. The loss is pluggable (``step_loss``): distillation reuses this loop.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from sdk.errors import InputValidationError
from sdk.preprocess import MODALITIES
from training.config import TrainConfig
from training.data.augment import PairedAugment
from training.data.casia import CasiaDataset, Sample, read_list
from training.data.folds import fold_paths
from training.models import create_model
from training.models.mlfa import with_option_defaults
from training.runlock import run_folder_lock

CHECKPOINT_NAME = "checkpoint.pt"
#: Written beside every checkpoint: where the run is, readable without loading the checkpoint.
PROGRESS_NAME = "progress.json"
MODEL_NAME = "model.pt"
METRICS_NAME = "metrics.csv"
SCORE_HEADER = ("crop0", "crop0_hflip")


# --- data -----------------------------------------------------------------------------------
def _subset(samples: list[Sample], limit: int | None, seed: int) -> list[Sample]:
    if limit is None or limit >= len(samples):
        return samples
    order = np.random.default_rng(seed).permutation(len(samples))[:limit]
    return [samples[i] for i in sorted(order)]


def resolve_lists(config: TrainConfig) -> tuple[list[Sample], list[Sample]]:
    """(train, val) samples from the config's lists or fold."""
    data = config.data
    root = Path(data.root)
    train_list, val_list = data.train_list, data.val_list
    if data.fold is not None:
        if not data.folds_dir:
            raise InputValidationError("data.fold needs data.folds_dir")
        folds_dir = Path(data.folds_dir)
        if not folds_dir.is_absolute() and not folds_dir.is_dir():
            folds_dir = root / folds_dir
        train_path, val_path = fold_paths(folds_dir, data.fold_scheme, data.fold)
        train_list, val_list = str(train_path), str(val_path)
    if not train_list:
        raise InputValidationError("config has no training list (data.train_list or data.fold)")
    resolve = lambda p: Path(p) if Path(p).is_absolute() or Path(p).is_file() else root / p  # noqa: E731
    train = _subset(read_list(resolve(train_list), data.live_label), data.max_train_samples, config.seed)
    val = _subset(read_list(resolve(val_list), data.live_label), data.max_val_samples, config.seed) if val_list else []
    if not train:
        raise InputValidationError("the training list is empty")
    labels = {s.label for s in train}
    if labels - {0, 1}:
        raise InputValidationError("the training list has unlabelled lines")
    return train, val


#: Beside config.json: which samples the run trained and validated on (counts and SHA-256).
DATA_RECORD_NAME = "data.json"


def samples_record(samples: list[Sample]) -> dict[str, Any]:
    """Count and SHA-256 of a sample list (paths and labels, in order): a list file rewritten
    under the same name (a dataset rendered again) gives another hash."""
    digest = hashlib.sha256()
    for sample in samples:
        digest.update(f"{sample.rgb}\t{sample.depth}\t{sample.ir}\t{sample.label}\n".encode("utf-8"))
    return {"count": len(samples), "sha256": digest.hexdigest()}


def data_record(config: TrainConfig, train: list[Sample], val: list[Sample], extra: list[Sample]) -> dict[str, Any]:
    """What data.json holds: the lists as configured and what was read from them."""
    return {"root": str(config.data.root), "train_list": config.data.train_list, "val_list": config.data.val_list,
            "fold": config.data.fold, "train": samples_record(train), "val": samples_record(val),
            "extra": samples_record(extra)}


def check_pinned_samples(config: TrainConfig, record: dict[str, Any]) -> None:
    """Refuse to train when data.train_sha256 is set and the training samples hash to something else."""
    pinned = config.data.train_sha256
    if pinned is None:
        return
    if isinstance(pinned, int) and not isinstance(pinned, bool):
        pinned = str(pinned)  # --set parses an all-digit prefix as JSON: its digits are exact
    if not isinstance(pinned, str):  # e.g. "12345e678901" parsed as a float: the digits are gone
        raise InputValidationError(f"data.train_sha256 must be a string of hex digits, got {pinned!r} "
                                   "(quote it in JSON: --set 'data.train_sha256=\"...\"')")
    pinned = pinned.strip().lower()
    if len(pinned) < 12 or any(c not in "0123456789abcdef" for c in pinned):
        raise InputValidationError(f"data.train_sha256 must be 12 to 64 hex digits, got {config.data.train_sha256!r}")
    found = record["train"]["sha256"]
    if not found.startswith(pinned):
        raise InputValidationError(
            f"the training samples ({record['train']['count']} crops from {config.data.train_list}) hash to "
            f"{found[:16]}..., not the pinned data.train_sha256 {pinned[:16]}...: the list was rewritten or another was named")


def make_augment(config: TrainConfig) -> PairedAugment | None:
    a = config.augment
    if not a.enabled:
        return None
    return PairedAugment(
        rotation_deg=a.rotation_deg, scale=tuple(a.scale), ratio=tuple(a.ratio), hflip=a.hflip,
        brightness=a.brightness, contrast=a.contrast, saturation=a.saturation,
        ir_gain=a.ir_gain, ir_gamma=a.ir_gamma, depth_noise=a.depth_noise, depth_dropout=a.depth_dropout,
        background_fill=a.background_fill, outline_cut=a.outline_cut,
        aligned_holes=a.aligned_holes, aligned_hole_max=a.aligned_hole_max,
        colour_refocus=a.colour_refocus, colour_sharpen_max=a.colour_sharpen_max,
    )


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled sample order of one epoch: a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=generator).tolist()


def _loader(dataset: Any, batch_size: int, order: Sequence[int] | None, workers: int, drop_last: bool) -> DataLoader:
    return DataLoader(
        dataset, batch_size=batch_size, sampler=list(order) if order is not None else None, shuffle=False,
        num_workers=workers, drop_last=drop_last, pin_memory=torch.cuda.is_available(),
    )


# --- model, optimiser -----------------------------------------------------------------------
def build_model(config: TrainConfig, *, log: Callable[[str], None] = print) -> tuple[nn.Module, dict | None]:
    """The configured network, initialised from the face checkpoint when one is configured."""
    torch.manual_seed(config.seed)
    model = create_model(config.model.name, **dict(config.model.options))
    report = None
    if config.init.checkpoint:
        from training.pretrain import init_from_face_checkpoint

        result = init_from_face_checkpoint(model, config.init.checkpoint, slot=config.init.slot)
        log(result.summary())
        report = result.to_dict()
    elif config.init.weights:
        report = warm_start(model, config)
        log(f"warm start from {report['weights']} (sha256 {report['sha256'][:12]})")
    return model, report


def warm_start(model: nn.Module, config: TrainConfig) -> dict:
    """Load a trained model of the same network into ``model`` in place; returns what was loaded.

    Refused unless the file names the same model and options: a partial load would leave layers
    random without saying so, which is what init.checkpoint's report exists for.
    """
    from training.ensemble.plan import sha256_file

    path = Path(config.init.weights)
    if not path.is_file():
        raise InputValidationError(f"init.weights: {path} does not exist")
    meta, state = read_model_file(path)
    inner = getattr(model, "module", model)
    found_options = with_option_defaults(dict(meta.get("model_options") or {}))
    adapted = set(config.init.adapt_options)
    # Every option resolved, defaults included; the adapted ones (shape-neutral) may differ.
    wanted = (inner.config.name, {k: v for k, v in inner.options.items() if k not in adapted})
    found = (meta.get("model_name"), {k: v for k, v in found_options.items() if k not in adapted})
    if found != wanted:
        raise InputValidationError(f"init.weights: {path} holds {found[0]} {found_options}, this run trains "
                                   f"{inner.config.name} {dict(inner.options)}")
    inner.load_state_dict(state)
    return {"weights": str(path), "sha256": sha256_file(path), "model_name": found[0], "model_options": found_options,
            "adapted_options": {k: {"from": found_options.get(k), "to": inner.options.get(k)} for k in sorted(adapted)}}


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # Every parameter, classifier head included (the reference code left the head out).
    return torch.optim.Adam(
        model.parameters(), lr=config.optim.lr, betas=tuple(config.optim.betas), weight_decay=config.optim.weight_decay
    )


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int) -> Any:
    total = max(1, config.optim.epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=config.optim.min_lr)


def resolve_device(config: TrainConfig) -> torch.device:
    name = config.runtime.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    mode = config.runtime.amp
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "fp16":
        return torch.float16
    if mode == "bf16" or (device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


# --- checkpoints ----------------------------------------------------------------------------
def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": json.dumps(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fsync_dir(folder: Path) -> None:
    """fsync a directory so that a rename inside it survives a power cut (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write_bytes(path: Path, write: Callable[[Any], None]) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, rename over the target, fsync the folder."""
    _atomic_write_bytes(Path(path), lambda handle: torch.save(obj, handle))


def atomic_write_text(path: Path, text: str) -> None:
    """Text file written the same way as checkpoints (a reader never sees half a file)."""
    data = text.encode("utf-8")
    _atomic_write_bytes(Path(path), lambda handle: handle.write(data))


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


def model_payload(model: nn.Module, config: TrainConfig | None = None, **extra: Any) -> dict[str, Any]:
    """What model.pt holds: weights + how to rebuild the network (JSON strings: weights_only-safe)."""
    inner = _unwrap(model)
    meta = {"model_name": inner.config.name, "model_options": inner.options, **extra}
    if config is not None:
        meta["config"] = config.to_dict()
    return {"state_dict": inner.state_dict(), "meta": json.dumps(meta)}


def read_model_file(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict, dict]:
    """(meta, state dict) of a model.pt or checkpoint.pt written by this module (weights_only)."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    meta_text, state = (payload.get("meta"), payload.get("state_dict")) if "meta" in payload else \
        (payload.get("model_meta"), payload.get("model"))  # a training checkpoint
    if meta_text is None or state is None:
        raise InputValidationError(f"{path} is not a model.pt or checkpoint.pt of training.train")
    return json.loads(meta_text), state


def load_trained_model(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a trained network from model.pt or checkpoint.pt (eval mode)."""
    meta, state = read_model_file(path, map_location)
    model = create_model(meta["model_name"], **meta["model_options"])
    model.load_state_dict(state)
    return model.eval()


# --- metrics --------------------------------------------------------------------------------
def val_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """APCER/BPCER/ACER at ``threshold`` and TPR at FPR 1e-2/1e-3/1e-4 from calibration.metrics.

    ``val_tpr@t`` is the empirical (non-interpolated, the reference's) value, ``val_tpr_interp@t``
    the interpolated one. Unlabelled samples (-1) are ignored; with one class only there is
    nothing to measure and the result is empty.
    """
    from calibration import metrics as cm

    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    keep = labels >= 0
    scores, labels = scores[keep], labels[keep]
    if scores.size == 0 or len(set(labels.tolist())) < 2:
        return {}
    out = {
        "val_apcer": cm.apcer(scores, labels, threshold),
        "val_bpcer": cm.bpcer(scores, labels, threshold),
        "val_acer": cm.acer(scores, labels, threshold),
    }
    for target in cm.DEFAULT_FPR_TARGETS:
        point = cm.tpr_at_fpr(scores, labels, target)
        out[f"val_tpr@{target:g}"] = point["empirical"]
        out[f"val_tpr_interp@{target:g}"] = point["interpolated"]
    return out


# --- prediction -----------------------------------------------------------------------------
@torch.no_grad()
def predict_views(
    model: nn.Module,
    data: CasiaDataset | str | Path | Sequence[Sample],
    *,
    root: str | Path = ".",
    live_label: int = 1,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    workers: int = 0,
    amp: torch.dtype | None = None,
    flip: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(N x 2 P(live) for the centre crop and its horizontal flip, labels) for a list or dataset.

    ``flip=False`` scores the centre crop only (N x 1): half the cost, for large comparisons.
    """
    dataset = data if isinstance(data, CasiaDataset) else CasiaDataset(root, data, live_label=live_label)
    if dataset.augment is not None:
        raise InputValidationError("predict needs a dataset without training augmentation")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    views, labels = [], []
    try:
        for batch in _loader(dataset, batch_size, None, workers, False):
            inputs = [batch[m].to(device, non_blocking=True) for m in MODALITIES]
            pair = []
            for flipped in ((False, True) if flip else (False,)):
                x = [torch.flip(t, dims=[-1]) for t in inputs] if flipped else inputs
                with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                    logits = model(*x)
                pair.append(torch.softmax(logits.float(), dim=1)[:, _unwrap(model).config.live_class])
            views.append(torch.stack(pair, dim=1).cpu().numpy())
            labels.append(batch["label"].numpy())
    finally:
        model.train(was_training)
    return np.concatenate(views).astype(np.float64), np.concatenate(labels)


def predict(model: nn.Module, data: CasiaDataset | str | Path | Sequence[Sample], **kwargs: Any) -> np.ndarray:
    """Test scores with TTA: mean P(live) over the centre crop 112 and its horizontal flip."""
    views, _ = predict_views(model, data, **kwargs)
    return views.mean(axis=1)


def write_scores(path: str | Path, views: np.ndarray) -> Path:
    """Score file in the reference format: header crop0,crop0_hflip, one row per list line."""
    views = np.asarray(views)
    if views.ndim != 2 or views.shape[1] != 2:
        raise InputValidationError(f"score views must be N x 2, got {views.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    buffer.write(",".join(SCORE_HEADER) + "\n")
    for a, b in views:
        buffer.write(f"{float(a)!r},{float(b)!r}\n")
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def read_scores(path: str | Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


# --- training loop --------------------------------------------------------------------------
@dataclass
class TrainResult:
    out_dir: Path
    epochs_done: int
    history: list[dict[str, Any]] = field(default_factory=list)
    model: nn.Module | None = None

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME


def _write_metrics(path: Path, history: list[dict[str, Any]]) -> None:
    if not history:
        return
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


def _resume_key(config: dict[str, Any]) -> dict[str, Any]:
    """The parts of a config that must match to resume (not device, threads, workers, progress bar).

    The saved config goes through config_from_dict first, so a key added to the config since the
    checkpoint was written compares as its default.
    """
    from training.config import config_from_dict

    config = config_from_dict(config).to_dict()
    key = {k: v for k, v in config.items() if k != "runtime"}
    # A pin only adds a check (the samples themselves are compared below), so it may be added on resume.
    key["data"] = {k: v for k, v in key["data"].items() if k not in ("num_workers", "train_sha256")}
    return key


@dataclass
class StepOutput:
    """What one training step reports: the loss to minimise and accuracy counts for the log."""

    loss: torch.Tensor
    correct: int
    counted: int


#: (model, inputs [rgb, ir, depth], batch item, epoch, step) -> StepOutput. Must be a function of
#: its arguments only (random draws from (seed, epoch, step)), so that resumed runs match.
StepLoss = Callable[[nn.Module, list[torch.Tensor], dict[str, Any], int, int], StepOutput]


def cross_entropy_step(model: nn.Module, inputs: list[torch.Tensor], item: dict[str, Any], epoch: int, step: int) -> StepOutput:
    """The supervised recipe: 2-class cross-entropy, label 1 = live."""
    target = item["label"].to(inputs[0].device)
    logits = model(*inputs)
    loss = F.cross_entropy(logits.float(), target)
    return StepOutput(loss, int((logits.argmax(dim=1) == target).sum()), int(target.numel()))


class _StopRequested(Exception):
    """Raised inside the loop when ``stop_after_steps`` is reached (tests: a simulated kill)."""


def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    stop_after_epochs: int | None = None,
    stop_after_steps: int | None = None,
    log: Callable[[str], None] = print,
    step_loss: StepLoss | None = None,
    extra_samples: Sequence[Sample] = (),
    extra_meta: dict[str, Any] | None = None,
) -> TrainResult:
    """Run (or resume) training.

    ``stop_after_epochs`` / ``stop_after_steps`` end this call early, right after a checkpoint
    (tests: a simulated kill). ``step_loss`` replaces cross-entropy (distillation);
    ``extra_samples`` are appended to the training list (unlabelled renders: label -1, which only
    a ``step_loss`` that handles them may be given); ``extra_meta`` goes into model.pt's meta.
    """
    previous_threads = torch.get_num_threads()
    if config.runtime.threads > 0:
        torch.set_num_threads(config.runtime.threads)
    # Under DDP every rank runs this with the same folder and rank 0 alone writes: it alone holds it.
    rank, _ = distributed_rank_world()
    try:
        with run_folder_lock(out_dir) if rank == 0 else nullcontext():
            return _train(config, Path(out_dir), resume, stop_after_epochs, stop_after_steps, log,
                          step_loss or cross_entropy_step, list(extra_samples), extra_meta or {})
    finally:
        # The thread count is process-wide: give the caller back what it had.
        torch.set_num_threads(previous_threads)


def distributed_rank_world() -> tuple[int, int]:
    """(rank, world size) when torch.distributed is initialised (DDP, e.g. under Ray Train), else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def rank_order(order: Sequence[int], batch: int, rank: int, world: int) -> list[int]:
    """This rank's share of every global batch of ``order``: rank r takes items [r*b, (r+1)*b) of each."""
    if world == 1:
        return list(order)
    per_rank = batch // world
    out: list[int] = []
    for start in range(0, len(order) - batch + 1, batch):
        out += list(order[start + rank * per_rank : start + (rank + 1) * per_rank])
    return out


def _empty_partial() -> dict[str, float]:
    return {"loss_sum": 0.0, "correct": 0, "counted": 0, "seen": 0, "elapsed": 0.0}


def _train(
    config: TrainConfig,
    out: Path,
    resume: bool,
    stop_after_epochs: int | None,
    stop_after_steps: int | None,
    log: Callable[[str], None],
    step_loss: StepLoss,
    extra_samples: list[Sample],
    extra_meta: dict[str, Any],
) -> TrainResult:
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / CHECKPOINT_NAME
    if checkpoint_path.exists() and not resume:
        raise InputValidationError(f"{checkpoint_path} exists: pass --resume to continue it or choose another --out")

    random.seed(config.seed)
    np.random.seed(config.seed % (2**32))
    device = resolve_device(config)
    # Under DDP every rank trains, rank 0 alone writes (checkpoints, metrics, model) and validates.
    rank, world = distributed_rank_world()
    main_rank = rank == 0
    train_samples, val_samples = resolve_lists(config)
    if extra_samples and step_loss is cross_entropy_step and any(s.label < 0 for s in extra_samples):
        raise InputValidationError("unlabelled extra samples need a step loss that handles them (distillation)")
    data = data_record(config, train_samples, val_samples, extra_samples)
    check_pinned_samples(config, data)
    train_samples = train_samples + extra_samples
    train_set = CasiaDataset(config.data.root, train_samples, augment=make_augment(config), seed=config.seed,
                             modality_swap=config.augment.modality_swap,
                             relief_negative=config.augment.relief_negative,
                             colour_swap_live=config.augment.colour_swap_live)
    val_set = CasiaDataset(config.data.root, val_samples) if val_samples else None
    batch = min(config.optim.batch_size, len(train_set))
    # drop_last avoids a final batch of one (BatchNorm cannot train on it).
    drop_last = len(train_set) > batch
    steps_per_epoch = len(train_set) // batch if drop_last else 1
    if world > 1 and (batch % world or not drop_last):
        raise InputValidationError(f"DDP over {world} ranks needs a batch divisible by it and more samples than one batch")

    model, init_report = build_model(config, log=log)
    if init_report is not None and main_rank:
        atomic_write_text(out / "init_report.json", json.dumps(init_report, indent=2) + "\n")
    model.to(device)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch)
    dtype = amp_dtype(config, device)
    scaler = torch.amp.GradScaler(device.type, enabled=(dtype == torch.float16))
    history: list[dict[str, Any]] = []
    start_epoch, start_step, partial = 0, 0, _empty_partial()
    if resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        if _resume_key(json.loads(state["config"])) != _resume_key(config.to_dict()):
            raise InputValidationError(f"{checkpoint_path} was written with another config; cannot resume it")
        started_on = json.loads(state["data"]) if "data" in state else None  # older checkpoints: not recorded
        changed = [] if started_on is None else [part for part in ("train", "val", "extra")
                                                 if started_on.get(part) != data[part]]
        if changed:  # the samples themselves, not where the root now lies
            counts = ", ".join(f"{part} {started_on.get(part, {}).get('count')} -> {data[part]['count']}" for part in changed)
            raise InputValidationError(
                f"{checkpoint_path}: the samples changed since the run started ({counts} crops; a list file "
                "rewritten under the same name?): cannot resume it on other data")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        history = json.loads(state["history"])
        start_epoch = int(state["epoch"])
        start_step = int(state.get("step", 0))
        if start_step:
            partial = json.loads(state["partial"])
        where = f"step {start_step} of epoch {start_epoch + 1}" if start_step else f"epoch {start_epoch}"
        log(f"resumed {checkpoint_path} after {where}")
    if main_rank:
        atomic_write_text(out / "config.json", json.dumps(config.to_dict(), indent=2) + "\n")
        atomic_write_text(out / DATA_RECORD_NAME, json.dumps(data, indent=2) + "\n")
    parallel: nn.Module = model
    if world > 1:
        parallel = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    elif device.type == "cuda" and config.runtime.multi_gpu and torch.cuda.device_count() > 1:
        parallel = nn.DataParallel(model)
    if main_rank:
        _write_metrics(out / METRICS_NAME, history)

    def save_checkpoint(epochs_done: int, step: int, running: dict[str, float]) -> None:
        if not main_rank:
            return
        atomic_save(
            {
                "epoch": epochs_done,
                # optimiser steps done inside epoch `epochs_done` (0: at an epoch boundary)
                "step": step,
                "steps_per_epoch": steps_per_epoch,
                "partial": json.dumps(running),
                "model": model.state_dict(),
                "model_meta": json.dumps({"model_name": model.config.name, "model_options": model.options}),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": _rng_state(),
                "history": json.dumps(history),
                "config": json.dumps(config.to_dict()),
                "data": json.dumps(data),
            },
            checkpoint_path,
        )
        atomic_write_text(out / PROGRESS_NAME, json.dumps({
            "epoch": epochs_done, "step": step, "steps_per_epoch": steps_per_epoch, "epochs": config.optim.epochs,
        }) + "\n")

    every = max(0, int(config.runtime.checkpoint_every_steps))
    steps_run = 0

    def after_step(epoch: int, step: int, running: dict[str, float]) -> None:
        nonlocal steps_run
        steps_run += 1
        if every and step % every == 0 and step < steps_per_epoch:
            save_checkpoint(epoch, step, running)
            if stop_after_steps is not None and steps_run >= stop_after_steps:
                raise _StopRequested

    epochs_run = 0
    for epoch in range(start_epoch, config.optim.epochs):
        if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
            break
        first_step = start_step if epoch == start_epoch else 0
        try:
            row = _train_epoch(parallel, optimizer, scheduler, scaler, train_set, config, epoch, device, dtype, batch,
                               drop_last, step_loss, first_step, partial if first_step else _empty_partial(),
                               after_step, rank, world)
        except _StopRequested:
            return TrainResult(out, len(history), history, model)
        if val_set is not None and main_rank:
            # the plain module: a DDP forward on one rank alone would wait for the others
            views, labels = predict_views(model if world > 1 else parallel, val_set, batch_size=batch, device=device,
                                          workers=config.data.num_workers, amp=dtype)
            scores = views.mean(axis=1)
            known = labels >= 0
            if known.any():
                p = np.clip(views[known, 0], 1e-7, 1 - 1e-7)
                y = labels[known]
                row["val_loss"] = float(-np.mean(np.where(y == 1, np.log(p), np.log(1 - p))))
            row.update(val_metrics(scores, labels))
            write_scores(out / "val_scores.csv", views)
        history.append(row)
        if main_rank:
            _write_metrics(out / METRICS_NAME, history)
        save_checkpoint(epoch + 1, 0, _empty_partial())
        log(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}))
        epochs_run += 1
    done = len(history)
    if done >= config.optim.epochs and main_rank:
        atomic_save(model_payload(model, config, epochs=done, init=config.init.slot, **extra_meta), out / MODEL_NAME)
    return TrainResult(out, done, history, model)


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    dataset: CasiaDataset,
    config: TrainConfig,
    epoch: int,
    device: torch.device,
    dtype: torch.dtype | None,
    batch: int,
    drop_last: bool,
    step_loss: StepLoss,
    first_step: int,
    running: dict[str, float],
    after_step: Callable[[int, int, dict[str, float]], None],
    rank: int = 0,
    world: int = 1,
) -> dict[str, Any]:
    from tqdm import tqdm

    model.train()
    dataset.set_epoch(epoch)
    # A resumed epoch skips the batches it already trained on: same order, same draws.
    order = epoch_order(len(dataset), config.seed, epoch)[first_step * batch:]
    if world > 1:
        order = rank_order(order, batch, rank, world)
    loader = _loader(dataset, batch // world, order, config.data.num_workers, drop_last)
    running = dict(running)
    lr = optimizer.param_groups[0]["lr"] if first_step == 0 else running.get("lr", optimizer.param_groups[0]["lr"])
    running["lr"] = lr
    start = time.perf_counter() - running["elapsed"]
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.optim.epochs}", disable=not config.runtime.progress,
               file=sys.stderr, leave=False, dynamic_ncols=True, initial=first_step, position=rank,
               total=first_step + len(loader))
    step = first_step
    for item in bar:
        inputs = [item[m].to(device, non_blocking=True) for m in MODALITIES]
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            result = step_loss(model, inputs, item, epoch, step)
        loss = result.loss.float()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        n = int(inputs[0].shape[0])
        running["loss_sum"] += float(loss.detach()) * n
        running["correct"] += result.correct
        running["counted"] += result.counted
        running["seen"] += n
        running["elapsed"] = time.perf_counter() - start
        step += 1
        bar.set_postfix(loss=f"{running['loss_sum'] / running['seen']:.4f}",
                        samples_s=f"{running['seen'] / max(running['elapsed'], 1e-9):.1f}")
        after_step(epoch, step, running)
    bar.close()
    if running["seen"] == 0:
        raise InputValidationError("an epoch saw no batches (dataset smaller than one batch?)")
    elapsed = running["elapsed"]
    return {
        "epoch": epoch + 1,
        "lr": lr,
        "train_loss": running["loss_sum"] / running["seen"],
        "train_acc": running["correct"] / max(1, running["counted"]),
        "samples_per_s": running["seen"] / max(elapsed, 1e-9),
        "epoch_time_s": elapsed,
    }
