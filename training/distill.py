"""Distil a trained ensemble into one small student (design.md section 7).

    sr300-liveness distill --ensemble RUN --config student_kd --root DIR --out RUN2
    sr300-liveness distill --teacher-model RUN1/model.pt --config CFG --root DIR --out RUN2

* Teacher assistant (``--teacher-model``): one trained network, itself distilled from the
  ensemble, teaches in the ensemble's place: a student too small to follow 24 members directly
  can follow one network a size closer to its own (Mirzadeh et al., AAAI 2020). teacher.json
  then records that model (path, hash, its training config) instead of the members.

* Teacher: the mean of the members' probabilities at temperature T (EnsembleTeacher), run
  LIVE on the very crops the student sees in that step (after augmentation and mixup):
  precomputed teacher outputs would pin the student to one augmentation draw per image.
  On the CPU the members run in ONNX Runtime (one exported graph, RUN2/teacher.onnx, checked
  against torch; runtime.teacher_engine), 2.3x the teacher's crops per second of torch.
* Loss: kd_weight * T^2 * KL(teacher_T || student_T) + ce_weight * CE(student, label); the CE
  term only on labelled rows (unlabelled renders from ``distill.unlabeled_lists`` get KD only;
  on mixed batches, CE on rows whose two sources are both labelled, weighted by lambda).
* Mixup (optional): lambda ~ Beta(alpha, alpha), partner permutation and whether the batch is
  mixed are drawn from (seed, epoch, step), so a killed distillation resumes to the same weights.
* Everything else is the ordinary training loop (training.train): checkpoints inside epochs,
  cosine LR, validation metrics, model.pt. RUN2/teacher.json lists every member with its hash.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from sdk.errors import InputValidationError
from training.config import TrainConfig
from training.data.casia import Sample, read_list
from training.ensemble.plan import Member, sha256_file
from training.ensemble.teacher import (EnsembleTeacher, ModelTeacher, OnnxEnsembleTeacher, done_members,
                                       member_records, teacher_engine_name)
from training.runlock import run_folder_lock
from training.train import StepOutput, TrainResult, _subset, atomic_write_text, resolve_device, train

TEACHER_NAME = "teacher.json"
TEACHER_ONNX_NAME = "teacher.onnx"


def distillation_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(teacher || student) at temperature T, averaged over the batch (Hinton et al.)."""
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    return F.kl_div(log_student, teacher_probs.float(), reduction="batchmean") * (temperature ** 2)


def live_floor_at(probability: float, temperature: float) -> float:
    """A two-class probability at T = 1 moved to temperature T: sigmoid(logit(p) / T)."""
    return 1.0 / (1.0 + ((1.0 - probability) / probability) ** (1.0 / temperature))


def raise_live_targets(teacher_probs: torch.Tensor, labels: torch.Tensor, floor: float) -> torch.Tensor:
    """Labelled live rows (label 1) get at least `floor` as their "live" target (column 1); the
    teacher's ranking of confident live rows and of every other row is kept."""
    doubted = (labels.to(teacher_probs.device) == 1) & (teacher_probs[:, 1] < floor)
    if not bool(doubted.any()):
        return teacher_probs
    raised = teacher_probs.clone()  # the other rows stay bit for bit the teacher's
    raised[doubted, 1] = floor
    raised[doubted, 0] = 1.0 - floor
    return raised


class DistillStep:
    """The step loss of distillation (a training.train.StepLoss)."""

    def __init__(self, teacher: nn.Module | OnnxEnsembleTeacher, config: TrainConfig,
                 label_only: tuple[str, ...] = ()) -> None:
        self.teacher = teacher.eval()
        self.spec = config.distill
        self.seed = config.seed
        #: relabelling augmentations whose composites are taught by their label, not by the teacher
        self.label_only = tuple(label_only)
        #: distill.live_rows "label": labelled live rows are taught by their label too
        self.live_by_label = config.distill.live_rows == "label"
        #: distill.live_floor, moved to temperature T: a live target below it is raised to it
        self.live_floor_at_t = None if self.spec.live_floor is None else live_floor_at(self.spec.live_floor, self.spec.temperature)

    def _mixup(self, n: int, epoch: int, step: int) -> tuple[float, torch.Tensor] | None:
        spec = self.spec
        if spec.mixup_alpha <= 0 or n < 2:
            return None
        rng = np.random.default_rng([self.seed, epoch, step, 0x6D1C])
        if rng.random() >= spec.mixup_prob:
            return None
        lam = float(rng.beta(spec.mixup_alpha, spec.mixup_alpha))
        return lam, torch.from_numpy(rng.permutation(n))

    def __call__(self, model: nn.Module, inputs: list[torch.Tensor], item: dict[str, Any], epoch: int, step: int) -> StepOutput:
        spec = self.spec
        labels = item["label"].to(inputs[0].device)
        mix = self._mixup(int(labels.numel()), epoch, step)
        if mix is not None:
            lam, perm = mix
            perm = perm.to(inputs[0].device)
            inputs = [lam * x + (1.0 - lam) * x[perm] for x in inputs]
        with torch.no_grad():
            teacher_probs = self.teacher(*inputs, temperature=spec.temperature)
        # The teacher is the expensive part: one pass, its hard decision taken at temperature T.
        teacher_class = teacher_probs.argmax(dim=1)
        if self.live_floor_at_t is not None and mix is None:
            teacher_probs = raise_live_targets(teacher_probs, labels, self.live_floor_at_t)
        logits = model(*inputs)
        taught_by_label = self._label_only_rows(item, labels) if mix is None else None
        if taught_by_label is None:
            loss = spec.kd_weight * distillation_loss(logits, teacher_probs, spec.temperature)
        else:
            # Composites the teacher never saw (and, with live_rows "label", live rows): their KD
            # share is cross-entropy on their label.
            log_student = F.log_softmax(logits.float() / spec.temperature, dim=1)
            kd_rows = F.kl_div(log_student, teacher_probs.float(), reduction="none").sum(dim=1) * spec.temperature ** 2
            ce_rows = F.cross_entropy(logits.float(), labels.clamp(min=0), reduction="none")
            n = int(labels.numel())
            loss = spec.kd_weight * (torch.where(taught_by_label, ce_rows, kd_rows).sum() / n)
        if spec.ce_weight > 0:
            if mix is None:
                known = labels >= 0
                if known.any():
                    loss = loss + spec.ce_weight * F.cross_entropy(logits[known].float(), labels[known])
            else:
                lam, perm = mix
                other = labels[perm.to(labels.device)]
                known = (labels >= 0) & (other >= 0)
                if known.any():
                    ce = lam * F.cross_entropy(logits[known].float(), labels[known]) + \
                        (1 - lam) * F.cross_entropy(logits[known].float(), other[known])
                    loss = loss + spec.ce_weight * ce
        # Accuracy logged against the teacher's hard decision (defined for unlabelled rows too).
        agree = int((logits.argmax(dim=1) == teacher_class).sum())
        return StepOutput(loss, agree, int(labels.numel()))

    def _label_only_rows(self, item: dict[str, Any], labels: torch.Tensor) -> torch.Tensor | None:
        """Rows taught by their label alone: made by a label-only composite (item["swapped"] tags),
        and labelled live rows when live_rows is "label"; None when there is none."""
        rows = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
        tags = item.get("swapped")
        if self.label_only and tags is not None:
            rows = torch.tensor([composite_of(tag) in self.label_only for tag in tags], device=labels.device)
            if bool((labels[rows] < 0).any()):
                raise InputValidationError("a label-only composite row has no label")
        if self.live_by_label:
            rows = rows | (labels == 1)  # unlabelled renders (-1) stay distilled
        return rows if bool(rows.any()) else None


#: Augmentations that relabel a crop (a live crop made an attack): a teacher judges such a
#: composite soundly only when it was trained on the same kind of composite.
RELABELLING_AUGMENTATIONS = ("relief_negative", "modality_swap", "colour_swap_live")


def composite_of(tag: str) -> str | None:
    """The relabelling augmentation that made a crop, from its dataset tag (item["swapped"]):
    "relief" (relief_negative), "rgb_live" (colour_swap_live), modality names joined by "+"
    (modality_swap), "" for none."""
    if not tag:
        return None
    return {"relief": "relief_negative", "rgb_live": "colour_swap_live"}.get(tag, "modality_swap")


def _never_trained_with(name: str, members: list[Member] | list[ModelTeacher]) -> list[str]:
    return [m.name for m in members if getattr(m.config.augment, name) <= 0 or not m.config.augment.enabled]


def composites_unseen_by(config: TrainConfig, members: list[Member] | list[ModelTeacher]) -> tuple[str, ...]:
    """The relabelling augmentations the student uses that some teacher member never trained with."""
    if not config.augment.enabled:
        return ()
    return tuple(name for name in RELABELLING_AUGMENTATIONS
                 if getattr(config.augment, name) > 0 and _never_trained_with(name, members))


def check_teacher_saw_composites(config: TrainConfig, members: list[Member] | list[ModelTeacher]) -> None:
    """Refuse a student augmentation that relabels crops unless every teacher member trained with it
    (a teacher model counts as one member, judged by the config it was trained with), or unless
    ``distill.unseen_composites`` is "label" (such composites are then taught by their label alone).

    A member that never saw a flattened live face (relief negative) or live depth under an
    attack's colour (modality swap) would give such a composite a confident soft target the
    student's label contradicts; members trained on them judge the very composites the student sees.
    """
    if not config.augment.enabled or config.distill.unseen_composites == "label":
        return
    unseen_composites = composites_unseen_by(config, members)
    if unseen_composites:
        name = unseen_composites[0]
        unseen = _never_trained_with(name, members)
        raise InputValidationError(
            f"augment.{name} makes composites that {len(unseen)} of the {len(members)} teacher members never "
            f"trained on ({', '.join(unseen[:3])}{' ...' if len(unseen) > 3 else ''}): train the ensemble "
            f"with augment.{name} > 0 (ensemble plan --set), distil without it, or teach them by their "
            f"label alone (distill.unseen_composites=label)")


def unlabeled_samples(config: TrainConfig) -> list[Sample]:
    root = Path(config.data.root)
    samples: list[Sample] = []
    for name in config.distill.unlabeled_lists:
        path = Path(name) if Path(name).is_absolute() else root / name
        samples += [Sample(s.rgb, s.depth, s.ir, -1) for s in read_list(path, config.data.live_label)]
    return _subset(samples, config.distill.max_unlabeled_samples, config.seed + 17)


def distill(
    ensemble_run: str | Path | None,
    config: TrainConfig,
    out: str | Path,
    *,
    teacher_model: str | Path | None = None,
    resume: bool = False,
    require_all: bool = True,
    stop_after_steps: int | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train the student of ``config`` on the ensemble of ``ensemble_run``, or on the one trained
    network ``teacher_model`` (a model.pt) in its place; returns the train result."""
    if (ensemble_run is None) == (teacher_model is None):
        raise InputValidationError("distil from an ensemble run or from a teacher model: give exactly one")
    if teacher_model is not None:
        source = ModelTeacher.load(teacher_model)
        teachers: list[Any] = [source]
        records = [source.record()]
        origin, record = source.path, {"teacher_model": str(source.path)}
    else:
        origin = Path(ensemble_run).resolve()
        teachers = done_members(origin, require_all=require_all)
        records = member_records(origin, teachers)
        record = {"ensemble_run": str(origin)}
    config = config.replace(**{"distill.teacher": str(origin)})
    out = Path(out)
    check_teacher_saw_composites(config, teachers)  # before any network is loaded
    label_only = composites_unseen_by(config, teachers) if config.distill.unseen_composites == "label" else ()
    if label_only:
        record["label_only_composites"] = list(label_only)
    live_by_label = config.distill.live_rows == "label"
    if live_by_label:
        record["live_rows"] = "label"
    if config.distill.live_floor is not None:
        record["live_floor"] = config.distill.live_floor
    # One writer: teacher.onnx and teacher.json are written here, before train takes the lock again.
    with run_folder_lock(out):  # creates the folder
        teacher_file = out / TEACHER_NAME
        if teacher_file.is_file():
            previous = json.loads(teacher_file.read_text(encoding="utf-8"))
            if [r["model_sha256"] for r in previous["members"]] != [r["model_sha256"] for r in records]:
                raise InputValidationError(f"{out} was distilled from other teacher weights; choose another --out")
        device = resolve_device(config)
        torch_teacher = (EnsembleTeacher.from_model(source, device=device) if teacher_model is not None
                         else EnsembleTeacher.from_run(origin, require_all=require_all, device=device))
        engine = teacher_engine_name(config.runtime.teacher_engine, device)
        teacher: EnsembleTeacher | OnnxEnsembleTeacher = torch_teacher
        record.update(n_members=len(records), engine=engine)
        if engine == "onnxruntime":
            if device.type != "cpu":
                raise InputValidationError("runtime.teacher_engine onnxruntime runs the teacher on the CPU: use device cpu")
            # Exported afresh on every start (a minute at most) rather than trusting a teacher.onnx left in --out.
            teacher = OnnxEnsembleTeacher.export(torch_teacher, out / TEACHER_ONNX_NAME, threads=config.runtime.threads)
            record["onnx_sha256"] = sha256_file(out / TEACHER_ONNX_NAME)
        atomic_write_text(teacher_file, json.dumps({**record, "members": records}, indent=2) + "\n")
        if config.data.live_label not in (0, 1):
            raise InputValidationError("data.live_label must be 0 or 1")
        extra = unlabeled_samples(config)
        log(f"teacher: {len(records)} {'member' if len(records) == 1 else 'members'} from {origin} ({engine}); "
            f"{len(extra)} unlabelled renders"
            + (f"; taught by label alone (the teacher never saw them): {', '.join(label_only)}" if label_only else "")
            + ("; live rows taught by their label" if live_by_label else ""))
        return train(config, out, resume=resume, stop_after_steps=stop_after_steps, log=log,
                     step_loss=DistillStep(teacher, config, label_only), extra_samples=extra,
                     extra_meta={"distilled_from": str(origin), "n_teacher_members": len(records),
                                 **({"teacher_model": str(origin)} if teacher_model is not None else {})})
