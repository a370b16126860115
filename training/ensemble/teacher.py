"""The trained members of an ensemble run as one torch module: the mean of their probabilities."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn

from sdk.errors import InputValidationError
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

    def forward(self, rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        probs = [torch.softmax(net(rgb, ir, depth).float() / temperature, dim=1) for net in self.networks]
        return torch.stack(probs).mean(dim=0)

    def train(self, mode: bool = True) -> "EnsembleTeacher":
        # A teacher is always evaluated in eval mode (BatchNorm running statistics, no updates).
        return super().train(False)
