"""Score a labelled list with every trained member (flip TTA) and with the ensemble (their mean).

Writes RUN/scores/<list stem>/<member>.csv (crop0,crop0_hflip: the reference score format),
RUN/scores/<list stem>/ensemble.csv (the mean over members of each view) and a metrics report
RUN/scores/<list stem>/report.json. Metrics at threshold 0.5 (the challenge's) with APCER per
attack type where a synth-dataset metadata.csv names the scenario of each row.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sdk.errors import InputValidationError
from training.ensemble.plan import member_dir
from training.ensemble.teacher import done_members


def attack_types_for(root: Path, list_path: Path, labels: np.ndarray) -> np.ndarray | None:
    """Scenario per row from the dataset's metadata.csv; None unless every attack row is named."""
    from training.ship import _metadata_scenarios

    scenarios = _metadata_scenarios(root, list_path)
    types = np.array([s if lab == 0 else "" for s, lab in zip(scenarios, labels)], dtype=object)
    attack = labels == 0
    return types if attack.any() and all(types[attack]) else None


def summarise(scores: np.ndarray, labels: np.ndarray, attack_types: np.ndarray | None, threshold: float = 0.5) -> dict[str, Any]:
    from calibration.metrics import evaluate

    keep = labels >= 0
    types = attack_types[keep] if attack_types is not None else None
    return evaluate(scores[keep], labels[keep], threshold, attack_types=types).to_json_dict()


def score_ensemble(
    run: str | Path,
    labels_list: str | Path,
    root: str | Path,
    *,
    batch_size: int = 64,
    require_all: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    from training.train import load_trained_model, predict_views, write_scores

    run, root = Path(run), Path(root)
    list_path = Path(labels_list)
    if not list_path.is_file() and (root / list_path).is_file():
        list_path = root / list_path
    if not list_path.is_file():
        raise InputValidationError(f"list file {labels_list} not found")
    members = done_members(run, require_all=require_all)
    out = run / "scores" / list_path.stem
    out.mkdir(parents=True, exist_ok=True)
    all_views = []
    labels = None
    report: dict[str, Any] = {"list": str(list_path), "root": str(root), "threshold": 0.5, "members": {}}
    for member in members:
        model = load_trained_model(member_dir(run, member) / "model.pt")
        live_label = member.config.data.live_label
        views, member_labels = predict_views(model, list_path, root=root, live_label=live_label, batch_size=batch_size)
        if labels is None:
            labels = member_labels
            types = attack_types_for(root, list_path, labels)
        write_scores(out / f"{member.name}.csv", views)
        all_views.append(views)
        report["members"][member.name] = summarise(views.mean(axis=1), labels, types)
        log(f"{member.name}: TPR@1e-3 {report['members'][member.name]['tpr_at_fpr']['1e-3']['empirical']:.4f}")
    mean_views = np.mean(all_views, axis=0)
    write_scores(out / "ensemble.csv", mean_views)
    report["ensemble"] = summarise(mean_views.mean(axis=1), labels, types)
    report["n_members"] = len(members)
    report["n_samples"] = int(len(labels))
    best = max(report["members"], key=lambda n: (report["members"][n]["tpr_at_fpr"]["1e-3"]["empirical"],
                                                   -report["members"][n]["eer"]))
    report["best_member"] = best
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
