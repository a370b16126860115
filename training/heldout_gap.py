"""Students against their ensemble on the held-out parts: TPR at FPR 1e-3 and the paired gap.

The issue's goal for a distilled student is "within 0.3 points of the ensemble's TPR@FPR=1e-3
on the held-out parts". ``measure`` scores every list with the ensemble (mean P(live) of its
members, run by ONNX Runtime as a teacher is) and with each student, then reports per set and
per pool each model's TPR and its gap to the ensemble with a paired bootstrap verdict
(calibration.paired). Scores are cached per network and list (keyed by the weights' SHA-256
and the list's content), so judging one more student later scores only that student.

The issue also asks for the best single member beside them: with ``best_member_on`` (a
calibration list, never a test list) the member with the highest TPR@FPR there (then the lowest
EER) is chosen, as training.compare does, and reported like a student from the members' cached
scores.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from calibration.paired import VERDICT_MET, paired_tpr_gap, tpr_at_fpr_rows
from sdk.errors import InputValidationError
from training.data.casia import read_list
from training.ensemble.plan import member_dir, sha256_file
from training.ensemble.teacher import done_members

ENSEMBLE_LABEL = "ensemble"
BEST_MEMBER_LABEL = "best_member"
#: crops -> P(live): shape (n,) for one network, (n, members) for the ensemble
Scorer = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], np.ndarray]


def _list_key(root: Path, list_path: Path) -> str:
    digest = hashlib.sha256(str(root.resolve()).encode("utf-8") + b"\0" + list_path.read_bytes())
    return digest.hexdigest()[:16]


def _crop_batches(root: Path, rows: Sequence[Any], batch_size: int):
    """(rgb, ir, depth) tensors of ``rows``' test-time crops, ``batch_size`` rows at a time."""
    from sdk.preprocess import MODALITIES
    from training.data.casia import CasiaDataset

    dataset = CasiaDataset(root, list(rows))
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        yield tuple(torch.stack([item[m] for item in items]) for m in MODALITIES)


def _with_flip(scorer: Scorer, tta: bool) -> Scorer:
    if not tta:
        return scorer
    return lambda r, i, d: (scorer(r, i, d) + scorer(*(torch.flip(x, dims=[-1]) for x in (r, i, d)))) / 2.0


def student_file(path: str | Path) -> tuple[Path, str, dict[str, Any]]:
    """(file whose SHA-256 keys the student's scores, kind, what else names it) of a student given
    as a training run's ``model.pt`` ("torch"), an ONNX graph ("onnx") or a model bundle folder
    ("bundle": its verified ONNX graph, so a shipped model is judged as the device runs it, without
    its checkpoint)."""
    from sdk.engine.bundle import MANIFEST_NAME, ModelBundle
    from sdk.errors import LivenessError

    path = Path(path)
    if path.is_dir():
        if not (path / MANIFEST_NAME).is_file():
            raise InputValidationError(f"{path}: a folder student must be a model bundle (no {MANIFEST_NAME})")
        try:
            bundle = ModelBundle.load(path)  # every file checked against the manifest's SHA-256
        except LivenessError as error:
            raise InputValidationError(f"{path}: not a usable model bundle: {error}") from error
        identity: dict[str, Any] = {"bundle_name": bundle.name, "bundle_version": bundle.version}
        rule = bundle.decision_rule
        if rule is not None and "tta" in rule:
            # the device's score is this rule's quantity: a report scored otherwise says so
            identity["decides_with_tta"] = bool(rule["tta"])
        return bundle.model_path, "bundle", identity
    if not path.is_file():
        raise InputValidationError(f"{path}: student model not found")
    return path, "onnx" if path.suffix == ".onnx" else "torch", {}


def onnx_scorer(path: str | Path, threads: int) -> Scorer:
    """P(live) of one ONNX graph run by the SDK's ONNX Runtime engine (the device's default)."""
    from sdk.engine.onnxruntime_engine import OnnxRuntimeEngine

    engine = OnnxRuntimeEngine(path, providers=["CPUExecutionProvider"], intra_op_threads=threads)

    def score(rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor) -> np.ndarray:
        inputs = {"rgb": rgb, "ir": ir, "depth": depth}
        return engine.predict({name: inputs[name].numpy().astype(np.float32) for name in inputs})

    return score


def model_scorer(path: str | Path) -> Scorer:
    """P(live) of one trained network (training.train's model file, loaded without pickle)."""
    from training.train import load_trained_model

    model = load_trained_model(path).eval()
    live = model.config.live_class

    @torch.no_grad()
    def score(rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor) -> np.ndarray:
        return torch.softmax(model(rgb, ir, depth).float(), dim=1)[:, live].numpy().astype(np.float64)

    return score


def ensemble_scorer(run: str | Path, onnx_path: Path, threads: int, *, require_all: bool = True) -> Scorer:
    """Every member's P(live), (n, members), from one ONNX graph of the run (as distillation runs it).

    The ensemble's score is their mean, as the teacher's mean_probabilities."""
    from training.ensemble.teacher import EnsembleTeacher, OnnxEnsembleTeacher

    if onnx_path.is_file():
        # named by its members' weight hashes, and named only after it matched torch (below)
        engine = OnnxEnsembleTeacher(onnx_path, threads=threads)
    else:
        # tracing 24 networks takes minutes on 2 cores: done once per ensemble, kept beside the scores
        unchecked = onnx_path.with_name(onnx_path.stem + ".unchecked.onnx")
        OnnxEnsembleTeacher.export(EnsembleTeacher.from_run(run, require_all=require_all), unchecked, threads=threads)
        unchecked.replace(onnx_path)
        engine = OnnxEnsembleTeacher(onnx_path, threads=threads)

    def score(rgb: torch.Tensor, ir: torch.Tensor, depth: torch.Tensor) -> np.ndarray:
        members = torch.softmax(engine.member_logits(rgb, ir, depth).float(), dim=2)[:, :, 1]
        return members.T.numpy().astype(np.float64)

    return score


def ensemble_key(run: str | Path, *, require_all: bool = True) -> tuple[str, list[dict[str, str]]]:
    """(cache key, member records) of a finished ensemble run: its members' weight hashes."""
    members = done_members(run, require_all=require_all)
    records = [{"name": m.name, "model_sha256": sha256_file(member_dir(Path(run), m) / "model.pt")} for m in members]
    key = hashlib.sha256(json.dumps(records, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    return key, records


def scored_list(key: str, make_scorer: Callable[[], Scorer], root: Path, list_name: str, cache: Path, *,
                tta: bool, batch_size: int, log: Callable[[str], None], need_members: bool = False) -> dict[str, np.ndarray]:
    """{"scores", "labels", "types"} of one list under one network, from the cache when it holds
    them; an ensemble's entry adds "members" (n, members), its mean being "scores". A cached entry
    without member scores (written before they were kept) is scored again when they are needed."""
    list_path = Path(list_name) if Path(list_name).is_absolute() else root / list_name
    if not list_path.is_file():
        raise InputValidationError(f"no list file {list_path}")
    cache_file = cache / f"{key}{'_tta' if tta else ''}__{_list_key(root, list_path)}.npz"
    if cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as stored:
            if not need_members or "members" in stored.files:
                return {name: stored[name] for name in stored.files}
    from training.ship import _metadata_scenarios

    started = time.perf_counter()
    rows = read_list(list_path)
    scorer = _with_flip(make_scorer(), tta)
    raw = np.concatenate([scorer(*batch) for batch in _crop_batches(root, rows, batch_size)])
    members = {"members": raw} if raw.ndim == 2 else {}
    scores = raw.mean(axis=1) if raw.ndim == 2 else raw
    labels = np.array([r.label for r in rows], np.int64)
    scenarios = _metadata_scenarios(root, list_path)
    types = np.array([sc if label == 0 else "" for sc, label in zip(scenarios, labels)], dtype=str)
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_name(cache_file.stem + ".partial.npz")
    np.savez(partial, scores=scores, labels=labels, types=types, **members)
    partial.replace(cache_file)  # a killed run never leaves a half-written cache entry
    log(f"scored {list_path} ({len(rows)} crops) in {time.perf_counter() - started:.0f} s")
    return {"scores": scores, "labels": labels, "types": types, **members}


def best_member(members: np.ndarray, labels: np.ndarray, names: Sequence[str], target_fpr: float) -> int:
    """Index of the member with the highest empirical TPR at ``target_fpr``, then the lowest EER."""
    from calibration.metrics import eer, tpr_at_fpr

    ranking = [(tpr_at_fpr(members[:, i], labels, target_fpr)["empirical"], -eer(members[:, i], labels), name, i)
               for i, name in enumerate(names)]
    return max(ranking)[3]


def _once(factory: Callable[[], Scorer]) -> Callable[[], Scorer]:
    """``factory`` called on first use only (loading 24 networks is slow, a cached run needs none)."""
    made: list[Scorer] = []

    def get() -> Scorer:
        if not made:
            made.append(factory())
        return made[0]

    return get


def _independent_sessions(root: Path, list_path: Path) -> bool | None:
    """True when no subject has two rows in the list (the bootstrap's assumption); None without metadata."""
    import csv

    meta = root / "metadata.csv"
    if not meta.is_file():
        return None
    listed = {line.split()[0] for line in list_path.read_text(encoding="utf-8").splitlines() if line.strip()}
    with open(meta, newline="", encoding="utf-8") as handle:
        subjects = [r["subject"] for r in csv.DictReader(handle) if r["color"] in listed]
    return len(subjects) == len(set(subjects))


def _best_member_record(on: Mapping[str, np.ndarray], names: Sequence[str], target_fpr: float,
                        chosen_on: tuple[Path, str]) -> dict[str, Any]:
    """The report's record of the best member on one scored calibration list."""
    index = best_member(on["members"], on["labels"], names, target_fpr)
    chosen = on["members"][:, index]
    return {"name": names[index], "index": index, "chosen_on": [str(chosen_on[0]), str(chosen_on[1])],
            "tpr_on_it": float(tpr_at_fpr_rows(chosen[on["labels"] == 1], chosen[on["labels"] == 0], target_fpr)[0])}


def _set_entry(by_label: Mapping[str, Mapping[str, np.ndarray]], compared: Sequence[str], target_fpr: float,
               tolerance: float, resamples: int, seed: int) -> dict[str, Any]:
    """One set of the report: its counts, and each compared model's TPR and gap to the ensemble."""
    ensemble = by_label[ENSEMBLE_LABEL]
    labels, types = ensemble["labels"], ensemble["types"]
    entry: dict[str, Any] = {"n_live": int((labels == 1).sum()), "n_attack": int((labels == 0).sum()),
                             "attack_types": {t: int((types == t).sum()) for t in sorted(set(types[labels == 0].tolist()))},
                             "gaps": {}}
    for label in compared:
        gap = paired_tpr_gap(by_label[label]["scores"], ensemble["scores"], labels, target_fpr,
                             tolerance=tolerance, resamples=resamples, seed=seed)
        entry["gaps"][label] = gap.to_json_dict()
    first = next(iter(entry["gaps"].values()))
    entry["tpr"] = {ENSEMBLE_LABEL: first["tpr_reference"], **{l: g["tpr_model"] for l, g in entry["gaps"].items()}}
    return entry


def _joined(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One set's entries from its lists' entries, in list order (member scores when every list has them)."""
    keys = [k for k in ("scores", "labels", "types", "members") if all(k in p for p in parts)]
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def measure(
    ensemble_run: str | Path,
    students: Mapping[str, str | Path],
    evaluations: Mapping[str, Sequence[tuple[str | Path, str]]],
    *,
    cache: str | Path,
    pools: Mapping[str, Sequence[str]] | None = None,
    target_fpr: float = 1e-3,
    tolerance_points: float = 0.3,
    resamples: int = 2000,
    seed: int = 0,
    tta: bool = True,
    threads: int = 1,
    batch_size: int = 64,
    require_all: bool = True,
    best_member_on: tuple[str | Path, str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The report: per set (and pool) each model's TPR at ``target_fpr`` and each student's gap.

    ``require_all=False`` takes the members finished so far (tests); the report lists which.
    """
    if not students:
        raise InputValidationError("measure needs at least one student model")
    for taken in (ENSEMBLE_LABEL, BEST_MEMBER_LABEL):
        if taken in students:
            raise InputValidationError(f"{taken!r} names a row of the report; give the student another label")
    for name, parts in (pools or {}).items():
        unknown = [p for p in parts if p not in evaluations]
        if unknown or not parts or name in evaluations:
            raise InputValidationError(f"pool {name!r}: needs a new name and known evaluation sets (unknown: {unknown})")
    cache = Path(cache)
    want_members = best_member_on is not None
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    key, member_records = ensemble_key(ensemble_run, require_all=require_all)
    # Networks are loaded (the ensemble exported) only when some list is not cached yet.
    networks: dict[str, tuple[str, Callable[[], Scorer]]] = {
        ENSEMBLE_LABEL: (f"ensemble_{key}", _once(lambda: ensemble_scorer(ensemble_run, cache / f"ensemble_{key}.onnx", threads,
                                                           require_all=require_all)))}
    student_records = {}
    for label, given in students.items():
        path, kind, identity = student_file(given)
        digest = sha256_file(path)
        student_records[label] = {"path": str(given), "kind": kind, "model_sha256": digest, **identity}
        if kind == "torch":
            networks[label] = (f"model_{digest[:16]}", _once(lambda path=path: model_scorer(path)))
        else:  # another engine's scores of the same network differ in the last bits: their own cache key
            networks[label] = (f"onnx_{digest[:16]}", _once(lambda path=path: onnx_scorer(path, threads)))
    scored: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    independent: dict[str, bool | None] = {}
    try:
        for set_name, parts in evaluations.items():
            per_network: dict[str, list[dict[str, np.ndarray]]] = {label: [] for label in networks}
            flags = []
            for root, list_name in parts:
                root = Path(root)
                list_path = Path(list_name) if Path(list_name).is_absolute() else root / list_name
                flags.append(_independent_sessions(root, list_path) if list_path.is_file() else None)
                for label, (net_key, make) in networks.items():
                    per_network[label].append(scored_list(net_key, make, root, list_name, cache, tta=tta, batch_size=batch_size,
                                                          log=log, need_members=want_members and label == ENSEMBLE_LABEL))
            scored[set_name] = {label: _joined(parts_scored) for label, parts_scored in per_network.items()}
            # several lists in one set could repeat a subject across lists: only a single list is checked
            independent[set_name] = flags[0] if len(flags) == 1 else None
        best = None
        if best_member_on is not None:
            root, list_name = Path(best_member_on[0]), best_member_on[1]
            net_key, make = networks[ENSEMBLE_LABEL]
            on = scored_list(net_key, make, root, list_name, cache, tta=tta, batch_size=batch_size, log=log, need_members=True)
            best = _best_member_record(on, [m["name"] for m in member_records], target_fpr, (root, list_name))
            index = best["index"]
            for by_label in scored.values():
                ensemble = by_label[ENSEMBLE_LABEL]
                by_label[BEST_MEMBER_LABEL] = {"scores": ensemble["members"][:, index], "labels": ensemble["labels"],
                                               "types": ensemble["types"]}
    finally:
        torch.set_num_threads(previous_threads)
    for name, parts in (pools or {}).items():
        scored[name] = {label: _joined([scored[p][label] for p in parts]) for label in scored[parts[0]]}
        flags = [independent[p] for p in parts]
        independent[name] = all(flags) if all(f is not None for f in flags) else None

    tolerance = tolerance_points / 100.0
    compared = list(students) + ([BEST_MEMBER_LABEL] if best is not None else [])
    sets: dict[str, Any] = {}
    for set_name, by_label in scored.items():
        labels = by_label[ENSEMBLE_LABEL]["labels"]
        for label, data in by_label.items():
            if not np.array_equal(data["labels"], labels):
                raise InputValidationError(f"{set_name}: {label} scored other rows than the ensemble (stale cache?)")
        sets[set_name] = _set_entry(by_label, compared, target_fpr, tolerance, resamples, seed)
        sets[set_name]["independent_sessions"] = independent.get(set_name)
    goal = {label: all(sets[s]["gaps"][label]["verdict"] == VERDICT_MET for s in sets) for label in students}
    return {
        "ensemble_run": str(ensemble_run), "ensemble_members": member_records, "students": student_records,
        "best_member": best,
        "target_fpr": target_fpr, "tolerance_points": tolerance_points, "resamples": resamples, "seed": seed,
        "tta": tta, "sets": sets, "pools": {k: list(v) for k, v in (pools or {}).items()},
        "goal_met": goal,
        "notes": ("TPR empirical = largest TPR with FPR <= target; gap = student - ensemble on the same crops; "
                  "bounds: 5th / 95th percentiles of a paired bootstrap (live and attack crops resampled within "
                  "their class); met: lower bound >= -tolerance; not met: upper bound < -tolerance; otherwise "
                  "unresolved. Scores: P(live) of the centre crop" + (" and its flip" if tta else "") + "."),
    }


def render_markdown(report: Mapping[str, Any]) -> str:
    """One table: per set, the ensemble's TPR and each student's TPR, gap, bounds and verdict
    (and the best member's, when the report chose one)."""
    students = list(report["students"])
    columns = students + ([BEST_MEMBER_LABEL] if report.get("best_member") else [])
    header = "| set | live / attack crops | ensemble | " + " | ".join(
        f"{s} | {s} - ensemble (95 % one-sided bounds) | verdict" for s in columns) + " |"
    lines = [f"TPR at FPR {report['target_fpr']:g}; goal: student >= ensemble - {report['tolerance_points']:g} points.", "",
             header, "| " + " | ".join(["---"] * (3 + 3 * len(columns))) + " |"]
    for name, entry in report["sets"].items():
        cells = [name, f"{entry['n_live']} / {entry['n_attack']}", f"{entry['tpr'][ENSEMBLE_LABEL]:.4f}"]
        for s in columns:
            g = entry["gaps"][s]
            cells += [f"{g['tpr_model']:.4f}", f"{100 * g['gap']:+.2f} points ({100 * g['lower_95']:+.2f}, {100 * g['upper_95']:+.2f})",
                      g["verdict"]]
        lines.append("| " + " | ".join(cells) + " |")
    if report.get("best_member"):
        best = report["best_member"]
        lines += ["", f"{BEST_MEMBER_LABEL}: `{best['name']}`, the member with the highest TPR at FPR "
                  f"{report['target_fpr']:g} on {best['chosen_on'][1]} ({best['tpr_on_it']:.4f}; never a test list)."]
    quantity = {True: "the mean of the crop and its flip", False: "the centre crop alone"}
    for s in students:
        decides = report["students"][s].get("decides_with_tta")
        if decides is not None and decides != bool(report.get("tta")):
            lines += ["", f"Note: {s} decides on {quantity[bool(decides)]} (its bundle's decision rule); this table "
                      f"scored {quantity[bool(report.get('tta'))]}, another quantity than the device decides on."]
    lines += ["", "Goal met on every set: " + ", ".join(f"{s} {'yes' if report['goal_met'][s] else 'no'}" for s in students) + "."]
    return "\n".join(lines)
