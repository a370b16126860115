"""Ablation study of the MLFA training recipe on simulator data (Parkin & Grinchuk 2019, tables 1-3).

    nice -n 10 python tools/run_ablations.py --work /tmp/ablations --seeds 1 \
        --doc docs/ablations.md > /tmp/ablations.log 2>&1

Steps (each one is skipped when its output already exists, so a killed run resumes):
1. a simulator dataset in CASIA format (`sdk.sim.dataset.write_dataset`: Training = live + attack
   types 4-6, Val/Test = live + types 1-3 on subjects never trained on), reused when its lists exist;
2. attack-specific (attack3) and subject (subject5) folds of the training list;
3. a face-identity backbone pretrained on simulator identities (`training.pretrain`);
4. one training run per (cell, seed) under <work>/runs/, evaluated on the Test list; the result is
   <work>/results/<cell>_s<seed>.json. An interrupted run resumes from its per-epoch checkpoint.
Finally the Markdown table goes to <work>/table.md and, with --doc, between the markers
``<!-- ABLATION TABLE START -->`` / ``<!-- ABLATION TABLE END -->`` of that file.

Every cell uses the same preset, width, epochs, training-set size (``--train-samples``, a seeded
subset) and seed; only the cell's own overrides differ.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TABLE_START = "<!-- ABLATION TABLE START -->"
TABLE_END = "<!-- ABLATION TABLE END -->"


def markers(name: str = "") -> tuple[str, str]:
    """The doc markers of the table called ``name`` ("" = the plain markers above)."""
    if not name:
        return TABLE_START, TABLE_END
    return f"<!-- ABLATION TABLE START {name} -->", f"<!-- ABLATION TABLE END {name} -->"
FPR_KEYS = ("1e-2", "1e-3", "1e-4")


@dataclass(frozen=True)
class Cell:
    """One configuration of the study; ``overrides`` are TrainConfig dotted keys."""

    name: str
    group: str
    label: str
    options: dict[str, Any] = field(default_factory=dict)  # model options on top of the shared ones
    fold: tuple[str, int] | None = None  # (scheme, fold) or None = the whole training list
    pretrained: bool = False


#: The study. "base" (all modalities, aggregation on, whole training list, random init) is the
#: reference row of tables 1, 2 and 4; the fold rows train on one fold's training list.
CELLS: tuple[Cell, ...] = (
    Cell("base", "modality / aggregation / init", "all three modalities, MLFA on, random init (reference)"),
    Cell("rgb", "modality", "RGB only", {"modality": "rgb"}),
    Cell("ir", "modality", "IR only", {"modality": "ir"}),
    Cell("depth", "modality", "depth only", {"modality": "depth"}),
    Cell("noagg", "aggregation", "all three, without aggregation blocks", {"aggregation": False}),
    Cell("pretrained", "init", "all three, MLFA on, face-identity init", pretrained=True),
    Cell("attack3_f1", "folds", "attack-specific fold 1 (train types 5, 6; live groups 2, 3)", fold=("attack3", 1)),
    Cell("subject5_f1", "folds", "subject fold 1 (4/5 of the subjects, types 4, 5, 6)", fold=("subject5", 1)),
)
CELL_BY_NAME = {c.name: c for c in CELLS}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def atomic_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def count_list(path: Path) -> dict[str, int]:
    labels = [line.split()[-1] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {"triplets": len(labels), "live": labels.count("1"), "attack": labels.count("0")}


# --- steps 1-3 ------------------------------------------------------------------------------
def ensure_dataset(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the simulator tree unless its lists exist; returns what the table needs about it."""
    data = Path(args.data)
    train_list, test_list = data / args.train_list, data / args.test_list
    seconds = None
    if not (train_list.is_file() and test_list.is_file()):
        from sdk.sim.dataset import write_dataset

        log(f"generating the simulator dataset in {data} (live {args.live}, per attack {args.per_attack}, "
            f"{args.frames} frames per subject)")
        start = time.perf_counter()
        write_dataset(data, live=args.live, per_attack=args.per_attack, frames_per_subject=args.frames,
                      seed=args.data_seed, workers=1, progress=False)
        seconds = time.perf_counter() - start
        atomic_json(data / "ablation_generation.json", {"seconds": seconds})
    elif (data / "ablation_generation.json").is_file():
        seconds = json.loads((data / "ablation_generation.json").read_text())["seconds"]
    info: dict[str, Any] = {"root": str(data), "generation_s": seconds, "splits": {}}
    for name in (args.train_list, args.val_list, args.test_list):
        if name and (data / name).is_file():
            info["splits"][name] = count_list(data / name)
    manifest = data / "manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text(encoding="utf-8"))
        info["manifest"] = {"seed": m.get("seed"), "frames_per_subject": m.get("frames_per_subject"),
                            "subjects": {k: v.get("subjects") for k, v in m.get("splits", {}).items()}}
    return info


def ensure_folds(args: argparse.Namespace) -> Path:
    from training.data.folds import fold_paths, write_folds

    folds = Path(args.work) / "folds"
    for scheme in ("attack3", "subject5"):
        if not fold_paths(folds, scheme, 1)[0].is_file():
            write_folds(Path(args.data) / args.train_list, folds, scheme)
    return folds


def ensure_pretrained(args: argparse.Namespace) -> dict[str, Any]:
    """Face-identity backbone on simulator identities (seeds disjoint from the dataset's subjects)."""
    from training.pretrain import pretrain, write_sim_face_dataset

    base = Path(args.pretrain_dir)
    out = base / "face_resnet18.safetensors"
    record = base / "pretrain.json"
    if out.is_file() and record.is_file():
        return json.loads(record.read_text(encoding="utf-8"))
    faces = base / "simfaces"
    start = time.perf_counter()
    marker = faces / ".complete"
    if not marker.is_file():
        write_sim_face_dataset(faces, args.pretrain_identities, args.pretrain_per_identity,
                               first_seed=args.pretrain_first_seed)
        marker.write_text("ok\n")
    render_s = time.perf_counter() - start
    start = time.perf_counter()
    result = pretrain("face", "resnet18", faces, out, epochs=args.pretrain_epochs, batch_size=32, lr=1e-3,
                      width=args.width, margin=args.pretrain_margin, seed=0, device="cpu", progress=False, log=log)
    info = {
        "checkpoint": str(out), "identities": args.pretrain_identities, "per_identity": args.pretrain_per_identity,
        "first_seed": args.pretrain_first_seed, "epochs": args.pretrain_epochs, "margin": args.pretrain_margin,
        "final_loss": result.final_loss, "final_acc": result.final_acc, "render_s": render_s,
        "train_s": time.perf_counter() - start,
    }
    atomic_json(record, info)
    return info


# --- step 4 ---------------------------------------------------------------------------------
def cell_config(cell: Cell, seed: int, args: argparse.Namespace, folds: Path | None, init: str | None):
    from training.config import load_config

    options = {"width": args.width, **cell.options}
    overrides: dict[str, Any] = {
        "name": f"ablation_{cell.name}", "seed": seed,
        "model.options": options,
        "data.root": str(Path(args.data).resolve()), "data.train_list": args.train_list,
        "data.val_list": args.val_list, "data.max_train_samples": args.train_samples,
        "data.max_val_samples": None, "data.num_workers": 0,
        "optim.epochs": args.epochs,
        "runtime.threads": args.threads, "runtime.device": "cpu", "runtime.progress": False,
    }
    if cell.fold is not None:
        scheme, k = cell.fold
        overrides.update({"data.folds_dir": str(folds), "data.fold_scheme": scheme, "data.fold": k})
    if cell.pretrained:
        overrides["init.checkpoint"] = init
    return load_config(args.preset).replace(**overrides)


def test_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """calibration.metrics.evaluate + finer-grained measures for when the TPRs saturate."""
    from calibration.metrics import evaluate

    ev = evaluate(scores, labels, threshold=0.5)
    live, attack = scores[labels == 1], scores[labels == 0]
    p = np.clip(scores, 1e-7, 1 - 1e-7)
    nll = float(-np.mean(np.where(labels == 1, np.log(p), np.log(1 - p))))
    return {
        "n_live": ev.n_live, "n_attack": ev.n_attack,
        "tpr": {k: ev.tpr_at_fpr[k].empirical for k in FPR_KEYS if k in ev.tpr_at_fpr},
        "apcer": ev.apcer, "bpcer": ev.bpcer, "acer": ev.acer, "eer": ev.eer, "auc": ev.auc,
        "nll": nll,
        "mean_live": float(live.mean()), "mean_attack": float(attack.mean()),
        "margin": float(live.mean() - attack.mean()),
        "gap": float(live.min() - attack.max()),  # > 0: a threshold separates the classes perfectly
    }


def run_cell(cell: Cell, seed: int, args: argparse.Namespace, folds: Path | None, init: str | None) -> dict[str, Any]:
    import torch

    from training.train import MODEL_NAME, load_trained_model, predict_views, train

    work = Path(args.work)
    result_path = work / "results" / f"{cell.name}_s{seed}.json"
    if result_path.is_file():
        log(f"{cell.name} seed {seed}: done before, reusing {result_path}")
        return json.loads(result_path.read_text(encoding="utf-8"))
    config = cell_config(cell, seed, args, folds, init)
    out = work / "runs" / f"{cell.name}_s{seed}"
    start = time.perf_counter()
    if (out / MODEL_NAME).is_file():
        model = load_trained_model(out / MODEL_NAME)
        import csv

        with open(out / "metrics.csv", encoding="utf-8") as handle:
            history = [{k: float(v) if v not in ("", None) else None for k, v in row.items()}
                       for row in csv.DictReader(handle)]
    else:
        resume = (out / "checkpoint.pt").is_file()
        log(f"{cell.name} seed {seed}: {'resuming' if resume else 'training'} -> {out}")
        result = train(config, out, resume=resume, log=lambda m: log(f"  {cell.name}: {m}"))
        model, history = result.model, result.history
    wall_s = time.perf_counter() - start
    torch.set_num_threads(args.threads)
    views, labels = predict_views(model, Path(args.data) / args.test_list, root=args.data, batch_size=32)
    scores = views.mean(axis=1)
    last = history[-1]
    record = {
        "cell": cell.name, "group": cell.group, "label": cell.label, "seed": seed,
        "config": config.to_dict(), "epochs": len(history),
        "train_s": float(sum(float(h["epoch_time_s"]) for h in history)),  # sums over resumed parts
        "call_wall_s": wall_s,
        "train_loss_last": float(last["train_loss"]),
        "val": {k: last.get(k) for k in ("val_loss", "val_acer", "val_tpr@0.01", "val_tpr@0.001", "val_tpr@0.0001")},
        "test": test_metrics(scores, labels.astype(int)),
        "cell_wall_s": time.perf_counter() - start,  # training + validation passes + test prediction
    }
    atomic_json(result_path, record)
    t = record["test"]
    log(f"{cell.name} seed {seed}: test TPR@1e-2/3/4 {t['tpr']}, ACER {t['acer']:.4f}, EER {t['eer']:.4f}, "
        f"NLL {t['nll']:.4f}, margin {t['margin']:.4f}; {record['train_s']:.0f} s training")
    return record


# --- table ----------------------------------------------------------------------------------
def _fmt(values: Sequence[float], digits: int = 3) -> str:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return "-"
    mean = float(np.mean(values))
    text = f"{mean:.{digits}f}"
    if len(values) > 1:
        text += f" ± {float(np.std(values)):.{digits}f}"
    return text


def make_table(records: list[dict[str, Any]], cells: Sequence[Cell]) -> str:
    lines = [
        "| group | cell | seeds | TPR@1e-2 | TPR@1e-3 | TPR@1e-4 | ACER@0.5 | EER | test NLL | P(live) margin | "
        "score gap | val ACER | train s | cell wall s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for cell in cells:
        rows = [r for r in records if r["cell"] == cell.name]
        if not rows:
            continue
        t = [r["test"] for r in rows]
        lines.append("| " + " | ".join([
            cell.group, f"`{cell.name}`: {cell.label}", ",".join(str(r["seed"]) for r in rows),
            *(_fmt([x["tpr"][k] for x in t]) for k in FPR_KEYS),
            _fmt([x["acer"] for x in t], 4), _fmt([x["eer"] for x in t], 4), _fmt([x["nll"] for x in t], 4),
            _fmt([x["margin"] for x in t]), _fmt([x["gap"] for x in t]),
            _fmt([r["val"].get("val_acer") for r in rows], 4), _fmt([r["train_s"] for r in rows], 0),
            _fmt([r.get("cell_wall_s", r["call_wall_s"]) for r in rows], 0),
        ]) + " |")
    return "\n".join(lines)


def make_report(records: list[dict[str, Any]], cells: Sequence[Cell], args: argparse.Namespace,
                dataset: dict[str, Any], pretrained: dict[str, Any] | None, wall_s: float) -> str:
    splits = ", ".join(f"{name}: {c['triplets']} ({c['live']} live / {c['attack']} attack)"
                       for name, c in dataset["splits"].items())
    n = records[0]["test"] if records else {}
    parts = [
        make_table(records, cells),
        "",
        f"- Dataset: `{dataset['root']}`; triplets per list: {splits}."
        + (f" Subjects per split: {dataset['manifest']['subjects']}." if "manifest" in dataset else ""),
        f"- Preset `{args.preset}`, `mlfa_resnet18` width {args.width}, {args.epochs} epochs, "
        f"{args.train_samples} training triplets per cell (seeded subset), batch from the preset, "
        f"seeds {','.join(map(str, args.seeds))}, torch threads {args.threads}, no loader workers.",
        f"- Test list: {n.get('n_live', '?')} live / {n.get('n_attack', '?')} attacks. TPR@FPR is the empirical "
        "(non-interpolated) value; with fewer than 1,000 attacks FPR 1e-3 and 1e-4 both mean "
        "\"no attack accepted\".",
    ]
    if pretrained:
        parts.append(
            f"- Face-identity init: `resnet18` width {args.width}, {pretrained['identities']} simulator identities x "
            f"{pretrained['per_identity']} images (seeds {pretrained['first_seed']}+), {pretrained['margin']} margin, "
            f"{pretrained['epochs']} epochs, final loss {pretrained['final_loss']:.3f}, train acc "
            f"{pretrained['final_acc']:.3f}, {pretrained['render_s'] + pretrained['train_s']:.0f} s.")
    cells_s = sum(r.get("cell_wall_s", r["call_wall_s"]) for r in records)
    parts.append(f"- Machine: {args.machine}; sum of the cells' wall times {cells_s / 60:.1f} min; this invocation "
                 f"{wall_s / 60:.1f} min (it reuses cells and the pretrained backbone finished by earlier ones). "
                 "Values are mean ± population SD over the seeds.")
    return "\n".join(parts) + "\n"


def write_doc(path: Path, report: str, name: str = "") -> None:
    start, end = markers(name)
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Ablations\n"
    if start not in text or end not in text:
        text += f"\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{report}{end}{tail}", encoding="utf-8")


# --- CLI ------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="/tmp/ablations", help="runs, results, folds, pretraining")
    p.add_argument("--data", default=None, help="CASIA tree (default <work>/data); generated if its lists are missing")
    p.add_argument("--live", type=int, default=45, help="live training subjects (Val/Test get a third)")
    p.add_argument("--per-attack", type=int, default=30, help="training subjects per attack type")
    p.add_argument("--frames", type=int, default=8, help="frames per subject")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--train-list", default="train_list.txt")
    p.add_argument("--val-list", default="val_list.txt", help="'none': no validation pass during training")
    p.add_argument("--test-list", default="test_list.txt")
    p.add_argument("--preset", default="cpu_tiny")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-samples", type=int, default=600)
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cells", nargs="+", default=[c.name for c in CELLS], choices=[c.name for c in CELLS])
    p.add_argument("--pretrain-identities", type=int, default=40)
    p.add_argument("--pretrain-per-identity", type=int, default=10)
    p.add_argument("--pretrain-first-seed", type=int, default=1000)
    p.add_argument("--pretrain-epochs", type=int, default=6)
    p.add_argument("--pretrain-margin", choices=("arcface", "cosface"), default="cosface")
    p.add_argument("--machine", default="2-core x86_64 VM, CPU only, shared with other jobs")
    p.add_argument("--doc", default=None, help="Markdown file whose table section is (re)written")
    p.add_argument("--table-name", default="", help="which marked table of --doc to rewrite")
    p.add_argument("--pretrain-dir", default=None, help="face-pretraining outputs (default <work>/pretrain)")
    args = p.parse_args(argv)
    args.data = args.data or str(Path(args.work) / "data")
    args.pretrain_dir = args.pretrain_dir or str(Path(args.work) / "pretrain")
    if args.val_list.lower() == "none":
        args.val_list = None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    cells = [CELL_BY_NAME[name] for name in args.cells]
    dataset = ensure_dataset(args)
    log(f"dataset: {dataset['splits']}")
    folds = ensure_folds(args) if any(c.fold for c in cells) else None
    pretrained = ensure_pretrained(args) if any(c.pretrained for c in cells) else None
    if pretrained:
        log(f"pretrained backbone: {pretrained}")
    records = []
    for seed in args.seeds:
        for cell in cells:
            records.append(run_cell(cell, seed, args, folds, pretrained["checkpoint"] if pretrained else None))
            report = make_report(records, cells, args, dataset, pretrained, time.perf_counter() - start)
            (Path(args.work) / "table.md").write_text(report, encoding="utf-8")
            if args.doc:
                write_doc(Path(args.doc), report, args.table_name)
    log(f"finished in {(time.perf_counter() - start) / 60:.1f} min ({platform.machine()})")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
