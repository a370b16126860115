"""Weight-space interpolation of two trainings of one network (WiSE-FT: Wortsman et al., "Robust
fine-tuning of zero-shot models", CVPR 2022).

A student trained on from a base (here the shipped student distilled again from the 24 members)
gains what the new teacher knows and can lose what the base did well elsewhere (live faces of
another renderer). Both start from the same weights, so the straight line between them often
keeps much of both. The mixing weight is fixed by whoever writes the candidate's rule, before any
evaluation, never searched on a test set.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Mapping

import torch

from sdk.errors import InputValidationError
from training.ensemble.plan import sha256_file
from training.train import MODEL_NAME, atomic_save, atomic_write_text, read_model_file

#: What an interpolated run folder records next to model.pt (package_fine_tune copies it).
INTERPOLATION_NAME = "interpolation.json"
#: Files of the tuned run that describe how its weights were made; copied so the new folder
#: packages like the tuned run (config, warm start, teacher).
RUN_RECORDS = ("config.json", "init_report.json", "teacher.json")


def interpolate_state(base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor],
                      alpha: float) -> dict[str, torch.Tensor]:
    """(1 - alpha) * base + alpha * tuned for every floating tensor (BatchNorm statistics too);
    integer buffers (BatchNorm's batch counters) are the tuned network's."""
    if not 0.0 <= alpha <= 1.0:
        raise InputValidationError(f"alpha must be in [0, 1], got {alpha}")
    if set(base) != set(tuned):
        only = sorted(set(base) ^ set(tuned))[:5]
        raise InputValidationError(f"the two weight sets are not one network (keys differ: {only} ...)")
    mixed: dict[str, torch.Tensor] = {}
    for key, tuned_value in tuned.items():
        base_value = base[key]
        if base_value.shape != tuned_value.shape or base_value.dtype != tuned_value.dtype:
            raise InputValidationError(f"{key}: {tuple(base_value.shape)} {base_value.dtype} against "
                                       f"{tuple(tuned_value.shape)} {tuned_value.dtype}: not one network")
        if tuned_value.is_floating_point():
            mixed[key] = torch.lerp(base_value, tuned_value, alpha)
        else:
            mixed[key] = tuned_value.clone()
    return mixed


def interpolate_runs(base_model: str | Path, tuned_model: str | Path, alpha: float, out: str | Path) -> dict[str, Any]:
    """Write ``out``/model.pt, the interpolation of two model.pt files of one architecture, with
    the tuned run's records (config, warm start, teacher) and interpolation.json; returns the record."""
    base_path, tuned_path, out = Path(base_model).resolve(), Path(tuned_model).resolve(), Path(out)
    base_meta, base_state = read_model_file(base_path)
    tuned_meta, tuned_state = read_model_file(tuned_path)
    for key in ("model_name", "model_options"):
        if base_meta.get(key) != tuned_meta.get(key):
            raise InputValidationError(f"{key} differs ({base_meta.get(key)} against {tuned_meta.get(key)}): "
                                       "only two trainings of one network can be interpolated")
    mixed = interpolate_state(base_state, tuned_state, alpha)
    if (out / MODEL_NAME).exists():
        raise InputValidationError(f"{out / MODEL_NAME} exists: choose another --out")
    record = {"method": "linear interpolation of weights (WiSE-FT)", "alpha": alpha,
              "base": {"path": str(base_path), "sha256": sha256_file(base_path)},
              "tuned": {"path": str(tuned_path), "sha256": sha256_file(tuned_path)}}
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_RECORDS:
        if (tuned_path.parent / name).is_file():
            shutil.copyfile(tuned_path.parent / name, out / name)
    atomic_write_text(out / INTERPOLATION_NAME, json.dumps(record, indent=2) + "\n")
    meta = {**tuned_meta, "interpolation": record}
    atomic_save({"state_dict": mixed, "meta": json.dumps(meta)}, out / MODEL_NAME)
    return record
