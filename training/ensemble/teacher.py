"""The trained members of an ensemble run as one torch module: the mean of their probabilities.

A single trained network can stand in for the ensemble (``ModelTeacher``): a teacher assistant
(Mirzadeh et al., AAAI 2020) between the 24 members and a student too small to follow them
directly, e.g. the shipped full-resolution student teaching a stride-2 one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn

from sdk.errors import InputValidationError
from training.config import TrainConfig, config_from_dict
from training.ensemble.plan import Member, load_members, member_dir, sha256_file
from training.ensemble.status import member_status


def done_members(run: str | Path, *, require_all: bool = True) -> list[Member]:
    """Members whose model.pt is complete; with ``require_all`` every planned member must be done."""
    members = load_members(run)
    done = [m for m in members if member_status(run, m)["status"] == "done"]
    if require_all and len(done) != len(members):
        missing = [m.name for m in members if m not in done]
        raise InputValidationError(f"{len(missing)} of {len(members)} members are not trained yet: "
                                   f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
    if not done:
        raise InputValidationError(f"no trained member in {run}")
    return done


def member_records(run: str | Path, members: Sequence[Member]) -> list[dict[str, Any]]:
    """Provenance of every member: name, slot, fold, seed, config, init and model hashes."""
    return [{"name": m.name, "init": m.init, "fold": m.fold, "seed": m.seed,
             "init_checkpoint_sha256": m.init_checkpoint_sha256,
             "model_sha256": sha256_file(member_dir(run, m) / "model.pt"), "config": m.config.to_dict()}
            for m in members]


@dataclass(frozen=True)
class ModelTeacher:
    """One trained model.pt used as the whole teacher; ``config`` is the config it was trained with
    (stored in the model file), so the composite check reads its augmentations like a member's."""

    name: str
    path: Path
    config: TrainConfig

    @classmethod
    def load(cls, path: str | Path) -> "ModelTeacher":
        from training.train import read_model_file

        path = Path(path).resolve()
        if not path.is_file():
            raise InputValidationError(f"teacher model {path} does not exist")
        meta, _ = read_model_file(path)
        if not isinstance(meta.get("config"), dict):
            raise InputValidationError(f"{path} carries no training config; only a model.pt of training.train can teach")
        return cls(name=path.parent.name or path.stem, path=path, config=config_from_dict(meta["config"]))

    def record(self) -> dict[str, Any]:
        """Provenance like a member's: name, path, weight hash and training config (with its own
        init weights and distillation teacher, so the chain back to the ensemble stays readable)."""
        return {"name": self.name, "path": str(self.path), "model_sha256": sha256_file(self.path),
                "config": self.config.to_dict()}


def mean_probabilities(member_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over members (dim 0) of softmax(logits / temperature)."""
    return torch.softmax(member_logits.float() / temperature, dim=2).mean(dim=0)


class EnsembleTeacher(nn.Module):
    """P(class) = mean over members of softmax(logits / temperature); live class 1 in every member."""

    def __init__(self, networks: Sequence[nn.Module]) -> None:
        super().__init__()
        if not networks:
            raise InputValidationError("an ensemble teacher needs at least one network")
        self.networks = nn.ModuleList(networks)
        classes = {getattr(n, "config").live_class for n in networks}
        if classes != {1}:
            raise InputValidationError(f"every member must have live class 1, got {sorted(classes)}")

    @classmethod
    def from_run(cls, run: str | Path, *, require_all: bool = True, device: str | torch.device = "cpu") -> "EnsembleTeacher":
        from training.train import load_trained_model

        members = done_members(run, require_all=require_all)
        teacher = cls([load_trained_model(member_dir(run, m) / "model.pt", map_location=device) for m in members])
        teacher.member_names = [m.name for m in members]
        return teacher.eval().to(device)

    @classmethod
    def from_model(cls, teacher: ModelTeacher, *, device: str | torch.device = "cpu") -> "EnsembleTeacher":
        """One trained network as the teacher (the mean of one member is that member)."""
        from training.train import load_trained_model

        module = cls([load_trained_model(teacher.path, map_location=device)])
        module.member_names = [teacher.name]
        return module.eval().to(device)

    def member_logits(self, rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Every member's logits, stacked: (members, batch, 2)."""
        return torch.stack([net(rgb, ir, depth).float() for net in self.networks])

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        return mean_probabilities(self.member_logits(rgb, ir, depth), temperature)

    def train(self, mode: bool = True) -> "EnsembleTeacher":
        # A teacher is always evaluated in eval mode (BatchNorm running statistics, no updates).
        return super().train(False)


class _MemberLogits(nn.Module):
    """The graph ONNX Runtime runs: three crops in, every member's logits out (temperature stays outside)."""

    def __init__(self, teacher: EnsembleTeacher) -> None:
        super().__init__()
        self.teacher = teacher

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.teacher.member_logits(rgb, ir, depth)


class OnnxEnsembleTeacher:
    """The same teacher run by ONNX Runtime: 2.3x the crops per second of torch on 2 CPU cores.

    Distillation spends most of its time in the teacher (24 small networks, many tiny kernels
    that torch's eager mode runs one by one), so on the CPU the members are exported once into
    one ONNX graph. The export is checked against torch on a random batch before it is used.
    """

    TOLERANCE = 1e-4

    def __init__(self, path: str | Path, *, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
        # A spinning ORT pool would keep the cores busy while torch trains the student between calls.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    @classmethod
    def export(cls, teacher: EnsembleTeacher, path: str | Path, *, threads: int = 0, opset: int = 17) -> "OnnxEnsembleTeacher":
        """Export ``teacher``'s members to ``path`` (atomically) and check the graph against torch."""
        import os

        from sdk.errors import ModelError

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        # three-channel crops of every modality, as the dataset and the device give them
        sample = [torch.rand(2, 3, 112, 112) * 255 for _ in range(3)]
        graph = _MemberLogits(teacher.cpu().eval())
        with torch.no_grad():
            torch.onnx.export(graph, tuple(sample), str(partial), input_names=["rgb", "ir", "depth"],
                              output_names=["member_logits"], opset_version=opset, dynamo=False,
                              dynamic_axes={name: {0: "batch"} for name in ("rgb", "ir", "depth", "member_logits")})
            expected = graph(*sample).numpy()
        os.replace(partial, path)
        engine = cls(path, threads=threads)
        got = engine.member_logits(*sample).numpy()
        worst = float(abs(got - expected).max())
        if got.shape != expected.shape or worst > cls.TOLERANCE * max(1.0, float(abs(expected).max())):
            raise ModelError(f"the ONNX teacher {path} disagrees with torch (largest logit difference {worst:.3g})")
        return engine

    def member_logits(self, rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        feed = {"rgb": rgb.detach().float().cpu().numpy(), "ir": ir.detach().float().cpu().numpy(),
                "depth": depth.detach().float().cpu().numpy()}
        return torch.from_numpy(self.session.run(["member_logits"], feed)[0])

    def __call__(self, rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        return mean_probabilities(self.member_logits(rgb, ir, depth), temperature).to(rgb.device)

    def eval(self) -> "OnnxEnsembleTeacher":
        return self


def teacher_engine_name(requested: str, device: torch.device) -> str:
    """The engine of a distillation teacher: "auto" is ONNX Runtime on the CPU when installed, else torch."""
    from training.config import TEACHER_ENGINES

    if requested not in TEACHER_ENGINES:
        raise InputValidationError(f"runtime.teacher_engine must be one of {TEACHER_ENGINES}, got {requested!r}")
    if requested != "auto":
        return requested
    if device.type != "cpu":
        return "torch"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnxruntime"
