"""Student vs ensemble vs best single member, measured side by side in one run.

For every evaluation list (in-distribution test, each held-out generator family):
TPR at FPR 1e-2 / 1e-3 (empirical and interpolated), and at each model's own threshold set on
one calibration list (APCER 1e-2 there): APCER per attack type and BPCER. Cost of each model:
parameters, FLOPs per crop (torch.utils.flop_counter: 2 x multiply-adds) and CPU latency of one
crop (batch 1, same thread count, the three models timed in interleaved rounds so that the load
of the machine falls on all of them alike), both in eager torch and in ONNX Runtime (the device's
CPU engine; each model exported once, the ensemble as one graph of its members).

The best single member is chosen on the calibration list (highest TPR@1e-3, then lowest EER),
never on a test list.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from calibration.metrics import evaluate
from calibration.threshold import threshold_for_apcer
from sdk.errors import InputValidationError
from training.data.casia import read_list
from training.ensemble.plan import member_dir
from training.ship import _metadata_scenarios
from training.ensemble.teacher import done_members
from training.train import load_trained_model

CALIBRATION_APCER = 1e-2
FPR_TARGETS = (1e-2, 1e-3)


_FLOPS: dict[str, int] = {}


def flops_per_crop(model: nn.Module) -> int:
    """FLOPs of one crop; counted once per architecture (name + options), counting is slow."""
    from torch.utils.flop_counter import FlopCounterMode

    inner = getattr(model, "module", model)
    key = json.dumps([getattr(inner.config, "name", type(inner).__name__), getattr(inner, "options", None)],
                     sort_keys=True, default=str)
    if key not in _FLOPS:
        x = [torch.rand(1, 3, 112, 112) * 255 for _ in range(3)]
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model.eval()(*x)
        _FLOPS[key] = int(counter.get_total_flops())
    return _FLOPS[key]


def parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _latency_summary(times: Mapping[str, Sequence[float]], rounds: int) -> dict[str, dict[str, float]]:
    return {name: {"median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)), "rounds": rounds}
            for name, t in times.items()}


def timed_rounds(runners: Mapping[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """ms of each runner's call, interleaved over ``rounds`` so drift of the machine hits all alike.

    Each timed call follows an untimed call of the same runner: a device runs one model, so its
    weights are in the cache, while in an interleaved round the model timed right after a large
    one (the 24-member ensemble) starts cold. Without that call the first student of a round read
    about twice the latency of the same graph timed second (2026-12-07: 5.3 against 2.1 ms).
    """
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            run()
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return times


def latencies_ms(models: Mapping[str, Sequence[nn.Module]], rounds: int = 15, threads: int = 1) -> dict[str, dict[str, float]]:
    """Median and p90 ms of one crop through each model group (a group: its networks in sequence)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    x = [torch.rand(1, 3, 112, 112) * 255 for _ in range(3)]

    def runner(nets: Sequence[nn.Module]) -> Callable[[], None]:
        def run() -> None:
            for net in nets:
                net(*x)
        return run

    try:
        with torch.no_grad():
            for nets in models.values():
                for net in nets:
                    net.eval()
            times = timed_rounds({name: runner(nets) for name, nets in models.items()}, rounds)
    finally:
        torch.set_num_threads(previous)
    return _latency_summary(times, rounds)


def onnxruntime_latencies_ms(models: Mapping[str, Sequence[nn.Module]], rounds: int = 15,
                             threads: int = 1) -> dict[str, dict[str, float]]:
    """As latencies_ms, with each model group exported to one ONNX graph and run by ONNX Runtime."""
    import tempfile

    from training.ensemble.teacher import EnsembleTeacher, OnnxEnsembleTeacher

    x = [torch.rand(1, 3, 112, 112) * 255 for _ in range(3)]
    with tempfile.TemporaryDirectory(prefix="compare_onnx_") as tmp:
        engines = {name: OnnxEnsembleTeacher.export(EnsembleTeacher(list(nets)), Path(tmp) / f"{name}.onnx", threads=threads)
                   for name, nets in models.items()}
        times = timed_rounds({name: (lambda engine=engine: engine.member_logits(*x)) for name, engine in engines.items()},
                             rounds)
    return _latency_summary(times, rounds)


def _load_inputs(root: Path, rows: Sequence[Any]) -> tuple[list[torch.Tensor], np.ndarray]:
    """The test-time crops of ``rows`` as three N x 3 x 112 x 112 tensors, and the labels."""
    from sdk.preprocess import MODALITIES
    from training.data.casia import CasiaDataset

    dataset = CasiaDataset(root, list(rows))
    items = [dataset[i] for i in range(len(dataset))]
    return [torch.stack([item[m] for item in items]) for m in MODALITIES], dataset.labels()


@torch.no_grad()
def _tta_scores(model: nn.Module, inputs: list[torch.Tensor], batch_size: int, flip: bool) -> np.ndarray:
    """Mean P(live) over the crop (and its horizontal flip) of every row, as predict_views computes it."""
    model.eval()
    live = getattr(model, "config").live_class
    out = []
    for start in range(0, int(inputs[0].shape[0]), batch_size):
        batch = [x[start:start + batch_size] for x in inputs]
        views = [torch.softmax(model(*batch).float(), dim=1)[:, live]]
        if flip:
            views.append(torch.softmax(model(*[torch.flip(x, dims=[-1]) for x in batch]).float(), dim=1)[:, live])
        out.append(torch.stack(views, dim=1).mean(dim=1))
    return torch.cat(out).numpy().astype(np.float64)


def _subset_rows(n: int, limit: int | None, labels: Sequence[int] | None = None) -> np.ndarray:
    """Indices of at most ``limit`` rows, a seeded draw in list order (the same in every run).

    With ``labels`` the draw is stratified: each label keeps its share (at least one row), so a
    small subset never loses the live or the attack class.
    """
    if limit is None or n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(0)
    if labels is None:
        return np.sort(rng.permutation(n)[:limit])
    labels = np.asarray(labels)
    picked = []
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        share = max(1, int(round(limit * rows.size / n)))
        picked.append(rng.permutation(rows)[:share])
    return np.sort(np.concatenate(picked))


def _metrics(scores: np.ndarray, labels: np.ndarray, types: np.ndarray | None, threshold: float) -> dict[str, Any]:
    keep = labels >= 0
    if len(set(labels[keep].tolist())) < 2:
        return {"error": "needs live and attack samples", "n_live": int((labels == 1).sum()),
                "n_attack": int((labels == 0).sum())}
    result = evaluate(scores[keep], labels[keep], min(threshold, 1.0), attack_types=types[keep] if types is not None else None,
                      fpr_targets=FPR_TARGETS)
    data = result.to_json_dict()
    return {
        "n_live": data["n_live"], "n_attack": data["n_attack"], "threshold": data["threshold"],
        "tpr_at_fpr": data["tpr_at_fpr"], "apcer": data["apcer"], "bpcer": data["bpcer"], "eer": data["eer"],
        "n_attack_accepted": data["n_attack_accepted"], "n_live_rejected": data["n_live_rejected"],
        "apcer_per_attack_type": data["apcer_per_attack_type"], "worst_attack_type": data["worst_attack_type"],
    }


def _check_pools(evaluations: Mapping[str, Any], pools: Mapping[str, Sequence[str]] | None) -> None:
    for pool_name, members_of_pool in (pools or {}).items():
        unknown = [name for name in members_of_pool if name not in evaluations]
        if unknown or not members_of_pool or pool_name in evaluations:
            raise InputValidationError(f"pool {pool_name!r}: needs a new name and known evaluation sets (unknown: {unknown})")


def _calibration_labels(labels: Mapping[str, np.ndarray]) -> np.ndarray:
    calib_labels = labels["calibration"]
    if len(set(calib_labels[calib_labels >= 0].tolist())) < 2:
        raise InputValidationError("the calibration list needs live and attack samples")
    return calib_labels


def score_sets(
    models: Mapping[str, nn.Module],
    sets: Mapping[str, Sequence[tuple[str | Path, str | Path]]],
    *,
    batch_size: int = 64,
    threads: int = 1,
    tta: bool = True,
    max_per_list: int | None = None,
    pools: Mapping[str, Sequence[str]] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(scores[set][model], labels[set], attack types[set]) for every set {name: [(root, list), ...]}.

    Each list's crops are decoded once and every model scores the same tensors; ``pools`` add
    sets made of already scored ones.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    scores: dict[str, dict[str, np.ndarray]] = {}
    labels: dict[str, np.ndarray] = {}
    types: dict[str, np.ndarray] = {}
    try:
        for set_name, parts in sets.items():
            per_model: dict[str, list[np.ndarray]] = {}
            set_labels, set_types = [], []
            for root, list_path in parts:
                root = Path(root)
                path = Path(list_path) if Path(list_path).is_absolute() else root / list_path
                started = time.perf_counter()
                rows = read_list(path)
                keep = _subset_rows(len(rows), max_per_list, [r.label for r in rows])
                rows = [rows[i] for i in keep]
                inputs, lab = _load_inputs(root, rows)
                for name, model in models.items():
                    per_model.setdefault(name, []).append(_tta_scores(model, inputs, batch_size, tta))
                set_labels.append(lab)
                scenarios = np.array(_metadata_scenarios(root, path), dtype=object)[keep]
                named = all(scenarios[lab == 0])  # every attack row named by a synth-dataset metadata.csv
                set_types.append(np.array([(sc if named else "attack") if v == 0 else "" for sc, v in zip(scenarios, lab)],
                                          dtype=object))
                log(f"scored {path} ({len(lab)} crops) with {len(models)} networks in {time.perf_counter() - started:.0f} s")
            scores[set_name] = {k: np.concatenate(v) for k, v in per_model.items()}
            labels[set_name] = np.concatenate(set_labels)
            types[set_name] = np.concatenate(set_types)
    finally:
        torch.set_num_threads(previous)
    for pool_name, members_of_pool in (pools or {}).items():
        scores[pool_name] = {key: np.concatenate([scores[name][key] for name in members_of_pool])
                             for key in scores[members_of_pool[0]]}
        labels[pool_name] = np.concatenate([labels[name] for name in members_of_pool])
        types[pool_name] = np.concatenate([types[name] for name in members_of_pool])
    return scores, labels, types


def compare_models(
    models: Mapping[str, str | Path],
    calibration: tuple[str | Path, str | Path],
    evaluations: Mapping[str, Sequence[tuple[str | Path, str | Path]]],
    *,
    pools: Mapping[str, Sequence[str]] | None = None,
    **scoring: Any,
) -> dict[str, Any]:
    """Trained models {label: model.pt} side by side: each at its own threshold for APCER 1e-2 on
    the calibration list, on every evaluation set (e.g. a training recipe with and without one
    change, on the held-out generator parts). ``scoring``: score_sets' options (batch_size,
    threads, tta, max_per_list, log)."""
    if not models:
        raise InputValidationError("compare_models needs at least one model")
    _check_pools(evaluations, pools)
    networks = {label: load_trained_model(path) for label, path in models.items()}
    sets = {"calibration": [calibration], **{k: list(v) for k, v in evaluations.items()}}
    scores, labels, types = score_sets(networks, sets, pools=pools, **scoring)
    tta, max_per_list = scoring.get("tta", True), scoring.get("max_per_list")
    calib_labels = _calibration_labels(labels)
    thresholds = {label: threshold_for_apcer(scores["calibration"][label], calib_labels, CALIBRATION_APCER,
                                             name=label).threshold for label in networks}
    results = {set_name: {label: _metrics(scores[set_name][label], labels[set_name], types[set_name], thresholds[label])
                          for label in networks} for set_name in scores}
    return {"models": {label: str(path) for label, path in models.items()},
            "calibration": {"root": str(calibration[0]), "list": str(calibration[1]),
                            "target_apcer": CALIBRATION_APCER, "thresholds": thresholds},
            "results": results, "tta": tta, "max_per_list": max_per_list,
            "pools": {name: list(parts) for name, parts in (pools or {}).items()}}


def results_tables(results: Mapping[str, Mapping[str, Any]], order: Sequence[str] | None = None) -> list[str]:
    """Markdown lines: per set, one row per model (``order``, else the report's), at its own threshold."""
    lines = []
    for set_name, by_model in results.items():
        labels = list(order or by_model)
        first = by_model[labels[0]]
        lines += [f"**{set_name}** ({first['n_live']} live, {first['n_attack']} attack crops)", "",
                  "| model | TPR@1e-2 | TPR@1e-3 | TPR@1e-3 interp. | threshold | BPCER | APCER per attack type |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for label in labels:
            m = by_model[label]
            if "error" in m:
                lines.append(f"| {label} | {m['error']} | | | | | |")
                continue
            per = ", ".join(f"{k} {v['n_accepted']}/{v['n_attack']}" for k, v in m["apcer_per_attack_type"].items())
            lines.append(f"| {label} | {m['tpr_at_fpr']['1e-2']['empirical']:.4f} | {m['tpr_at_fpr']['1e-3']['empirical']:.4f} | "
                         f"{m['tpr_at_fpr']['1e-3']['interpolated']:.4f} | {m['threshold']:.4f} | "
                         f"{m['bpcer']:.4f} ({m['n_live_rejected']}/{m['n_live']}) | {per} |")
        lines.append("")
    return lines


def render_models_markdown(report: Mapping[str, Any]) -> str:
    """One table per set of a compare_models report."""
    return "\n".join(results_tables(report["results"]))


def compare(
    ensemble_run: str | Path,
    student_model: str | Path,
    calibration: tuple[str | Path, str | Path],
    evaluations: Mapping[str, Sequence[tuple[str | Path, str | Path]]],
    *,
    batch_size: int = 64,
    threads: int = 1,
    latency_rounds: int = 15,
    require_all: bool = True,
    tta: bool = True,
    max_per_list: int | None = None,
    pools: Mapping[str, Sequence[str]] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Report for ``evaluations`` {name: [(root, list), ...]} after calibrating on (root, list).

    ``pools`` {name: [evaluation names]} adds sets made of already scored ones (no network runs
    again), e.g. every held-out family pooled: more attacks make TPR at FPR 1e-3 mean something.
    """
    _check_pools(evaluations, pools)
    ensemble_run = Path(ensemble_run)
    members = done_members(ensemble_run, require_all=require_all)
    member_models = {m.name: load_trained_model(member_dir(ensemble_run, m) / "model.pt") for m in members}
    student = load_trained_model(student_model)
    sets = {"calibration": [calibration], **{k: list(v) for k, v in evaluations.items()}}
    # scores[set][model] = TTA scores; one pass of every network over every list
    scores, labels, types = score_sets({"student": student, **member_models}, sets, batch_size=batch_size,
                                       threads=threads, tta=tta, max_per_list=max_per_list, pools=pools, log=log)
    for set_name in scores:
        scores[set_name]["ensemble"] = np.mean([scores[set_name][m] for m in member_models], axis=0)

    calib_labels = _calibration_labels(labels)
    ranking = []
    for name in member_models:
        m = evaluate(scores["calibration"][name], calib_labels, 0.5, fpr_targets=FPR_TARGETS)
        ranking.append((m.tpr_at_fpr["1e-3"].empirical, -m.eer, name))
    best = max(ranking)[2]
    compared = {"student": "student", "ensemble": "ensemble", "best_member": best}
    thresholds = {label: threshold_for_apcer(scores["calibration"][key], calib_labels, CALIBRATION_APCER,
                                             name=label).threshold for label, key in compared.items()}
    results: dict[str, Any] = {}
    for set_name in scores:
        results[set_name] = {label: _metrics(scores[set_name][key], labels[set_name], types[set_name], thresholds[label])
                             for label, key in compared.items()}
    cost = {
        "student": {"parameters": parameters(student), "flops_per_crop": flops_per_crop(student)},
        "best_member": {"parameters": parameters(member_models[best]), "flops_per_crop": flops_per_crop(member_models[best])},
        "ensemble": {"parameters": sum(parameters(m) for m in member_models.values()),
                     "flops_per_crop": sum(flops_per_crop(m) for m in member_models.values())},
    }
    groups = {"student": [student], "best_member": [member_models[best]], "ensemble": list(member_models.values())}
    latency = latencies_ms(groups, rounds=latency_rounds, threads=threads)
    ort_latency = onnxruntime_latencies_ms(groups, rounds=latency_rounds, threads=threads)
    for label in cost:
        cost[label]["cpu_latency"] = latency[label]
        cost[label]["onnxruntime_cpu_latency"] = ort_latency[label]
    cost["ratios"] = {
        "flops_ensemble_over_student": cost["ensemble"]["flops_per_crop"] / cost["student"]["flops_per_crop"],
        "latency_ensemble_over_student": latency["ensemble"]["median_ms"] / latency["student"]["median_ms"],
        "onnxruntime_latency_ensemble_over_student":
            ort_latency["ensemble"]["median_ms"] / ort_latency["student"]["median_ms"],
        "parameters_ensemble_over_student": cost["ensemble"]["parameters"] / cost["student"]["parameters"],
    }
    return {
        "ensemble_run": str(ensemble_run), "student_model": str(student_model), "n_members": len(member_models),
        "best_member": best, "calibration": {"root": str(calibration[0]), "list": str(calibration[1]),
                                             "target_apcer": CALIBRATION_APCER, "thresholds": thresholds},
        "results": results, "cost": cost, "threads": threads, "tta": tta, "max_per_list": max_per_list,
        "pools": {name: list(parts) for name, parts in (pools or {}).items()},
        "notes": ("scores = mean P(live) of the crop and its flip" if tta else "scores = P(live) of the centre crop (no flip TTA, for every model alike)")
                 + "; TPR empirical = largest TPR with FPR <= target "
                 "(reference rule), interpolated = ROC interpolation; APCER/BPCER at each model's threshold for "
                 f"APCER {CALIBRATION_APCER:g} on the calibration list; FLOPs = 2 x multiply-adds per crop (one view).",
    }


def render_markdown(report: Mapping[str, Any]) -> str:
    """Tables for docs/ensemble.md."""
    lines = []
    cost = report["cost"]
    lines += ["| model | parameters | MFLOPs per crop | CPU ms per crop, torch (median / p90) | "
              "CPU ms per crop, ONNX Runtime (median / p90) |", "| --- | --- | --- | --- | --- |"]
    for label in ("student", "best_member", "ensemble"):
        c = cost[label]
        name = f"best member (`{report['best_member']}`)" if label == "best_member" else label
        if label == "ensemble":
            name = f"ensemble ({report['n_members']} members)"
        ort = c.get("onnxruntime_cpu_latency")  # reports written before it was measured lack it
        ort_text = f"{ort['median_ms']:.1f} / {ort['p90_ms']:.1f}" if ort else "not measured"
        lines.append(f"| {name} | {c['parameters']:,} | {c['flops_per_crop'] / 1e6:,.1f} | "
                     f"{c['cpu_latency']['median_ms']:.1f} / {c['cpu_latency']['p90_ms']:.1f} | {ort_text} |")
    r = cost["ratios"]
    ort_ratio = r.get("onnxruntime_latency_ensemble_over_student")
    lines += ["", f"Ensemble / student: {r['flops_ensemble_over_student']:.0f}x FLOPs, "
              f"{r['latency_ensemble_over_student']:.0f}x measured CPU latency in torch, "
              + (f"{ort_ratio:.0f}x in ONNX Runtime, " if ort_ratio else "")
              + f"{r['parameters_ensemble_over_student']:.0f}x parameters.", ""]
    lines += results_tables(report["results"], ("student", "ensemble", "best_member"))
    return "\n".join(lines)


def write_report(path: str | Path, report: Mapping[str, Any]) -> None:
    from training.train import atomic_write_text

    atomic_write_text(Path(path), json.dumps(report, indent=2) + "\n")
