"""Weight-space interpolation of two trainings of one network (WiSE-FT: Wortsman et al., "Robust
fine-tuning of zero-shot models", CVPR 2022).

A student trained on from a base (here the shipped student distilled again from the 24 members)
gains what the new teacher knows and can lose what the base did well elsewhere (live faces of
another renderer). Both start from the same weights, so the straight line between them often
keeps much of both. The mixing weight is fixed by whoever writes the candidate's rule, before any
evaluation, never searched on a test set.

Several tuned runs from the same base can be given: the tuned end is then their uniform average (a
"model soup": Wortsman et al., "Model soups", ICML 2022). Each run's direction away from the base
carries its own seed's noise (data order, augmentation draws) besides what the teacher taught;
averaging runs that share the start keeps what they agree on.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from sdk.errors import InputValidationError
from training.ensemble.plan import sha256_file
from training.train import MODEL_NAME, atomic_save, atomic_write_text, read_model_file

#: What an interpolated run folder records next to model.pt (package_fine_tune copies it).
INTERPOLATION_NAME = "interpolation.json"
#: Files of the tuned run that describe how its weights were made; copied so the new folder
#: packages like the tuned run (config, warm start, teacher).
RUN_RECORDS = ("config.json", "init_report.json", "teacher.json", "data.json")


def _check_one_network(first: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor]) -> None:
    """Refuse two weight sets that are not of one network (keys, shapes, dtypes)."""
    if set(first) != set(other):
        only = sorted(set(first) ^ set(other))[:5]
        raise InputValidationError(f"the two weight sets are not one network (keys differ: {only} ...)")
    for key, value in other.items():
        if first[key].shape != value.shape or first[key].dtype != value.dtype:
            raise InputValidationError(f"{key}: {tuple(first[key].shape)} {first[key].dtype} against "
                                       f"{tuple(value.shape)} {value.dtype}: not one network")


def interpolate_state(base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor],
                      alpha: float) -> dict[str, torch.Tensor]:
    """(1 - alpha) * base + alpha * tuned for every floating tensor (BatchNorm statistics too);
    integer buffers (BatchNorm's batch counters) are the tuned network's."""
    if not 0.0 <= alpha <= 1.0:
        raise InputValidationError(f"alpha must be in [0, 1], got {alpha}")
    _check_one_network(base, tuned)
    mixed: dict[str, torch.Tensor] = {}
    for key, tuned_value in tuned.items():
        base_value = base[key]
        if tuned_value.is_floating_point():
            mixed[key] = torch.lerp(base_value, tuned_value, alpha)
        else:
            mixed[key] = tuned_value.clone()
    return mixed


def soup_state(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform average of several weight sets of one network (floating tensors); integer
    buffers are the first set's."""
    if not states:
        raise InputValidationError("a soup needs at least one weight set")
    first = states[0]
    for other in states[1:]:
        _check_one_network(first, other)
    return {key: (torch.stack([state[key] for state in states]).mean(dim=0) if value.is_floating_point()
                  else value.clone()) for key, value in first.items()}


def _started_from(tuned_path: Path, base_sha256: str) -> None:
    """Refuse a tuned run whose recorded warm start is not the base: the line between them would
    not be the fine-tune's path."""
    report = tuned_path.parent / "init_report.json"
    if not report.is_file():
        return  # a run without a warm-start record (trained elsewhere): the caller vouches for it
    started = json.loads(report.read_text(encoding="utf-8")).get("sha256")
    if started is not None and started != base_sha256:
        raise InputValidationError(f"{tuned_path} started from weights {started[:12]}..., not the base "
                                   f"({base_sha256[:12]}...): it is not a training on from the base")


def _data_of(model_path: Path) -> dict[str, Any]:
    """{"data": the run's data.json} when it has one: the runs of a soup may have read other lists."""
    record = model_path.parent / "data.json"
    return {"data": json.loads(record.read_text(encoding="utf-8"))} if record.is_file() else {}


def interpolate_runs(base_model: str | Path, tuned_model: str | Path | Sequence[str | Path], alpha: float,
                     out: str | Path) -> dict[str, Any]:
    """Write ``out``/model.pt, the interpolation between the base and the tuned model.pt (several:
    their uniform soup), all of one architecture, with the first tuned run's records (config,
    warm start, teacher) and interpolation.json; returns the record."""
    tuned_models = [tuned_model] if isinstance(tuned_model, (str, Path)) else list(tuned_model)
    if not tuned_models:
        raise InputValidationError("no tuned model given")
    base_path, out = Path(base_model).resolve(), Path(out)
    tuned_paths = [Path(path).resolve() for path in tuned_models]
    if len(set(tuned_paths)) != len(tuned_paths):
        raise InputValidationError("a tuned model is given twice: a soup weights each run once")
    base_meta, base_state = read_model_file(base_path)
    base_sha256 = sha256_file(base_path)
    tuned_states = []
    for path in tuned_paths:
        meta, state = read_model_file(path)
        for key in ("model_name", "model_options"):
            if base_meta.get(key) != meta.get(key):
                raise InputValidationError(f"{key} differs ({base_meta.get(key)} against {meta.get(key)}): "
                                           "only trainings of one network can be interpolated")
        _started_from(path, base_sha256)
        if not tuned_states:
            tuned_meta = meta
        tuned_states.append(state)
    # the first run's meta and records describe the new folder (its teacher, recipe and warm start)
    tuned_path = tuned_paths[0]
    tuned_end = tuned_states[0] if len(tuned_states) == 1 else soup_state(tuned_states)
    mixed = interpolate_state(base_state, tuned_end, alpha)
    if (out / MODEL_NAME).exists():
        raise InputValidationError(f"{out / MODEL_NAME} exists: choose another --out")
    record: dict[str, Any] = {"method": "linear interpolation of weights (WiSE-FT)", "alpha": alpha,
                              "base": {"path": str(base_path), "sha256": base_sha256}}
    if len(tuned_paths) == 1:  # the record of 2.43.0 (AA), unchanged
        record["tuned"] = {"path": str(tuned_path), "sha256": sha256_file(tuned_path)}
    else:
        record["method"] = "linear interpolation of weights (WiSE-FT) toward a uniform soup of the tuned runs"
        record["soup"] = [{"path": str(path), "sha256": sha256_file(path), **_data_of(path)} for path in tuned_paths]
        record["records_from"] = str(tuned_path.parent)  # config, warm start and teacher copied from the first
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_RECORDS:
        if (tuned_path.parent / name).is_file():
            shutil.copyfile(tuned_path.parent / name, out / name)
    atomic_write_text(out / INTERPOLATION_NAME, json.dumps(record, indent=2) + "\n")
    meta = {**tuned_meta, "interpolation": record}
    atomic_save({"state_dict": mixed, "meta": json.dumps(meta)}, out / MODEL_NAME)
    return record
