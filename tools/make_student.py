"""The CI-sized real run: render data, train the 24-member ensemble on Ray, distil, compare, ship.

    python tools/make_student.py --work /work/runs/student [--version X.Y.Z] [--out BUNDLE]

1. Renders simulator datasets (sdk.sim.dataset.write_dataset) with disjoint subject seeds,
   every held-out generator family excluded from all of them:
     members   (seed 11)  the ensemble's data: Training (CASIA types 4-6 + live) is split into
                          the attack folds; its Val / Test / TestExtra (types 1-3, screens,
                          prints) go into every member's training split
     unlabeled (seed 12)  extra renders for distillation (labels ignored: KD loss only)
     eval      (seed 10)  Val = calibration, Test + TestExtra = in-distribution test
     holdout/<family>     one test set per held-out family (synth-dataset --holdout NAME)
2. Plans and trains the ensemble (`ensemble plan/train`, preset --ensemble-preset) on a local
   Ray cluster, 3. distils the student (`distill`, preset --student-preset), 4. compares student,
   ensemble and best member side by side (training.compare), 5. packages the student as a bundle
   (training.ship.package_model: operating points on eval Val, test figures, ONNX checked
   against torch) with provenance listing all 24 members and the distillation run, 6. writes
   docs/shipped_model.md from the reports.

Every step skips what is already done: kill it at any point and run the same command again.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: Dataset seeds (each shifts every subject seed by seed x 10,000,000: disjoint subjects).
DATASETS = {"members": 11, "eval": 10, "unlabeled": 12}
EVERY_LIST = ("train_list.txt", "val_list.txt", "test_list.txt", "test_extra_list.txt")


def rooted_lines(work: Path, folder: str, list_name: str) -> list[str]:
    """Lines of a list with its image paths made relative to `work`."""
    path = work / folder / list_name
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts:
            rows.append(" ".join([f"{folder}/{p}" for p in parts[:3]] + parts[3:]))
    return rows


def write_lines(path: Path, lines: list[str]) -> str:
    from training.train import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return str(path.relative_to(path.parents[1]))


def next_minor_version(manifest_path: Path, changelog_path: Path | None = None) -> str:
    """The next minor version (x.y.z -> x.(y+1).0) above the shipped bundle's and, with
    ``changelog_path``, above every version docs/model_changelog.md records (built, shipped or
    not), so that a new bundle never reuses a version that named other weights."""
    import re

    from sdk.engine.bundle import parse_version
    from sdk.errors import InputValidationError

    version = str(json.loads(manifest_path.read_text(encoding="utf-8"))["version"])
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise InputValidationError(f"{manifest_path}: version {version!r} is not major.minor.patch; pass --version")
    if changelog_path is not None:
        recorded = re.findall(r"^\|\s*(\d+\.\d+\.\d+)\s*\|", changelog_path.read_text(encoding="utf-8"), re.M)
        version = max([version, *recorded], key=parse_version)
        parts = version.split(".")
    return f"{parts[0]}.{int(parts[1]) + 1}.0"


#: Stages that belong to one student; rendering and the ensemble are shared by every student of a
#: work folder. A second student in the same folder must not add to the first one's times.
STUDENT_STAGES = ("distill_s", "compare_s", "package_s")


def record_stage(work: Path, student_name: str, key: str, seconds: float) -> dict:
    """Add seconds to one stage and return this student's times (shared stages + its own).

    Shared stages are kept in WORK/timings.json, a student's in WORK/STUDENT/timings.json; each
    file is re-read first, as two invocations may share a work folder.
    """
    from training.train import atomic_write_text

    def read(path: Path) -> dict:
        return json.loads(path.read_text()) if path.is_file() else {}

    shared, own = work / "timings.json", work / student_name / "timings.json"
    path = own if key in STUDENT_STAGES else shared
    current = read(path)
    current[key] = round(current.get(key, 0.0) + seconds, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(current, indent=2) + "\n")
    return {**{k: v for k, v in read(shared).items() if k not in STUDENT_STAGES},
            **{k: v for k, v in read(own).items() if k in STUDENT_STAGES}}


def check_extra_data(folder: Path, data: dict) -> dict:
    """An extra student dataset, refused when it could hold what the student is evaluated on."""
    from sdk.errors import InputValidationError

    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise InputValidationError(f"{folder} is not a rendered dataset (no manifest.json)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    missing = sorted(set(data["holdouts"]) - set(manifest.get("excluded_holdouts") or ()))
    if manifest.get("holdout") or missing:
        raise InputValidationError(f"{folder} does not exclude the held-out families {missing or manifest['holdout']}")
    if manifest.get("seed") in (DATASETS["eval"], None):
        raise InputValidationError(f"{folder} has dataset seed {manifest.get('seed')}: eval's subjects (seed "
                                   f"{DATASETS['eval']}) must stay out of training")
    return {"path": str(folder), "seed": manifest["seed"],
            "splits": {k: {"triplets": v.get("triplets"), "live": v.get("live"), "attack": v.get("attack")}
                       for k, v in manifest.get("splits", {}).items()}}


def render(work: Path, args: argparse.Namespace) -> dict:
    """Render the datasets that are missing (each is written whole, lists last); returns their manifests."""
    from sdk.sim.dataset import write_dataset

    wanted = set(args.render.split(",")) if args.render else None
    supports_holdout = "holdout" in inspect.signature(write_dataset).parameters
    sizes = {"members": (args.live, args.per_attack), "unlabeled": (max(3, args.live // 2), max(3, args.per_attack // 2)),
             "eval": (max(3, args.eval_live), max(3, args.eval_per_attack))}
    manifests = {}
    for name, seed in DATASETS.items():
        folder = work / name
        if wanted is not None and name not in wanted:
            continue
        if not (folder / "manifest.json").is_file():
            live, per_attack = sizes[name]
            write_dataset(folder, live=live, per_attack=per_attack, frames_per_subject=args.frames_per_subject,
                          seed=seed, workers=args.workers)
        manifests[name] = json.loads((folder / "manifest.json").read_text())
    holdouts = {}
    if supports_holdout and (wanted is None or "holdout" in wanted):
        from sdk.sim.holdout import HOLDOUT_FAMILIES

        for family in HOLDOUT_FAMILIES:
            folder = work / "holdout" / family
            if not (folder / "manifest.json").is_file():
                write_dataset(folder, live=args.holdout_live, per_attack=args.holdout_per_attack,
                              frames_per_subject=args.holdout_frames, seed=DATASETS["eval"], workers=args.workers,
                              holdout=family)
            holdouts[family] = json.loads((folder / "manifest.json").read_text())
    return {"datasets": manifests, "holdouts": holdouts, "holdout_supported": supports_holdout}


def run_document_path(doc: str | None, shipped: bool) -> Path:
    """The run's document: the one asked for, else the shipped model's page only when the shipped
    bundle was replaced, else docs/student_run.md."""
    if doc:
        return Path(doc)
    return REPO / "docs" / ("shipped_model.md" if shipped else "student_run.md")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/work/runs/student", help="working folder (data, runs, reports)")
    parser.add_argument("--live", type=int, default=60, help="live subjects of the members' dataset")
    parser.add_argument("--per-attack", type=int, default=24, help="subjects per attack type of the members' dataset")
    parser.add_argument("--eval-live", type=int, default=36, help="live subjects of the eval dataset (Val/Test get a third)")
    parser.add_argument("--eval-per-attack", type=int, default=12)
    parser.add_argument("--frames-per-subject", type=int, default=3)
    parser.add_argument("--holdout-live", type=int, default=8)
    parser.add_argument("--holdout-per-attack", type=int, default=2)
    parser.add_argument("--holdout-frames", type=int, default=2, help="frames per subject of the held-out sets")
    parser.add_argument("--render", default=None,
                        help="render only these datasets now (comma list of members,eval,unlabeled,holdout)")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes")
    parser.add_argument("--ensemble-preset", default="ci_small")
    parser.add_argument("--run-name", default="ensemble", help="ensemble run folder inside --work")
    parser.add_argument("--member-set", action="append", default=[], metavar="KEY=VALUE",
                        help="training config override for every member (repeatable)")
    parser.add_argument("--ensemble-warm-start", metavar="RUN", default=None,
                        help="trained ensemble run whose members start this run's members (longer training)")
    parser.add_argument("--student-preset", default="student_kd")
    parser.add_argument("--student-name", default="student", help="distillation run folder inside --work")
    parser.add_argument("--student-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--student-extra-data", action="append", default=[], metavar="DIR",
                        help="another rendered dataset (a synth-dataset folder, e.g. an earlier run's) whose every "
                             "list joins the student's labelled training data; it must exclude every held-out "
                             "family and use another dataset seed than eval")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of distillation and comparison")
    parser.add_argument("--no-tta", action="store_true",
                        help="compare on the centre crop only (half the scoring time; every model alike)")
    parser.add_argument("--max-per-list", type=int, default=None,
                        help="compare on at most N crops per list (a seeded draw; scoring 24 members is slow on a CPU)")
    parser.add_argument("--stop-after", choices=("render", "ensemble", "distill", "compare"), default=None)
    parser.add_argument("--out", default=None, help="bundle folder (default: the shipped sdk/bundles/mlfa_student_sim)")
    parser.add_argument("--version", default=None,
                        help="bundle version (default: the shipped bundle's next minor version, so a new "
                             "bundle never carries an older number than the one it may replace)")
    parser.add_argument("--doc", default=None,
                        help="where the run's document goes (default: docs/shipped_model.md when the shipped "
                             "bundle was replaced, else docs/student_run.md); a candidate's run keeps others'")
    parser.add_argument("--machine-note", default="the 2-core x86_64 VM, CPU only",
                        help="where and under what load it ran, for the report (times depend on it)")
    args = parser.parse_args()

    from sdk.engine.bundle import DEFAULT_BUNDLE, SHIPPED_DIR
    from training.config import load_config, parse_override
    from training.train import atomic_write_text

    if args.version is None:
        args.version = next_minor_version(SHIPPED_DIR / DEFAULT_BUNDLE / "manifest.json",
                                          REPO / "docs" / "model_changelog.md")
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    timings: dict = {}

    def record(key: str, seconds: float) -> None:
        timings.clear()
        timings.update(record_stage(work, args.student_name, key, seconds))

    # 1. data (only what is missing; rendering time adds up over reruns)
    started = time.perf_counter()
    data = render(work, args)
    record("render_s", time.perf_counter() - started)
    if not args.render:
        atomic_write_text(work / "data.json", json.dumps(data, indent=2) + "\n")
    lists = work / "lists"
    members_train = write_lines(lists / "members_folds.txt", rooted_lines(work, "members", "train_list.txt"))
    members_extra = write_lines(lists / "members_extra.txt", [line for n in EVERY_LIST[1:]
                                                             for line in rooted_lines(work, "members", n)])
    # eval's Training split has subjects disjoint from eval's Val and Test: labelled student data.
    student_lines = [line for n in EVERY_LIST for line in rooted_lines(work, "members", n)] \
        + rooted_lines(work, "eval", "train_list.txt")
    student_train = write_lines(lists / "student_train.txt", student_lines)
    extra_data = [check_extra_data(Path(d).resolve(), data) for d in args.student_extra_data]
    if extra_data:
        # its own list, so the plain student_train.txt of earlier runs stays what it was
        student_train = write_lines(lists / f"{args.student_name}_train.txt",
                                    student_lines + [line for d in extra_data for n in EVERY_LIST
                                                     for line in rooted_lines(work, os.path.relpath(d["path"], work), n)])
    unlabeled = write_lines(lists / "unlabeled.txt", [line for n in EVERY_LIST for line in rooted_lines(work, "unlabeled", n)])
    student_val = write_lines(lists / "student_val.txt", rooted_lines(work, "eval", "val_list.txt"))
    print(f"data: {json.dumps({k: v['splits'] for k, v in data['datasets'].items()})[:400]} ...")
    if args.stop_after == "render":
        return 0

    # 2. ensemble
    from training.ensemble.plan import load_members, make_plan
    from training.ensemble.runner import shutdown_ray, train_ensemble
    from training.ensemble.status import ensemble_status

    run = work / args.run_name
    member_overrides = dict(parse_override(t) for t in args.member_set)
    make_plan(args.ensemble_preset, work, run, train_list=members_train, extra_train=[members_extra],
              overrides=member_overrides, warm_start=args.ensemble_warm_start)
    if ensemble_status(run)["counts"].get("done", 0) < 24:
        started = time.perf_counter()
        try:
            summary = train_ensemble(run, num_cpus=args.num_cpus, cpus_per_member=1)
        finally:
            shutdown_ray()
        # One key per ensemble run: two runs in one work folder must not add up.
        record("ensemble_train_s" if args.run_name == "ensemble" else f"ensemble_{args.run_name}_train_s",
               time.perf_counter() - started)
        if summary["failed"]:
            print(f"members failed: {summary['failed']}", file=sys.stderr)
            return 1
    if args.stop_after == "ensemble":
        return 0

    # 3. distillation
    from training.distill import distill

    student_dir = work / args.student_name
    student_config = load_config(args.student_preset).replace(**{
        "data.root": str(work), "data.train_list": student_train, "data.val_list": student_val,
        "distill.unlabeled_lists": [unlabeled], "runtime.threads": args.threads, "runtime.progress": False,
        **dict(parse_override(t) for t in args.student_set)})
    if not (student_dir / "model.pt").is_file():
        started = time.perf_counter()
        distill(run, student_config, student_dir, resume=(student_dir / "checkpoint.pt").is_file())
        record("distill_s", time.perf_counter() - started)
    if args.stop_after == "distill":
        return 0

    # 4. comparison (one run: scores, cost, latency)
    from training.compare import compare, render_markdown, write_report

    report_path = work / f"compare_{args.student_name}.json"
    if not report_path.is_file():
        started = time.perf_counter()
        evaluations = {"in_distribution": [(work / "eval", "test_list.txt"), (work / "eval", "test_extra_list.txt")]}
        for family in data["holdouts"]:
            evaluations[f"holdout:{family}"] = [(work / "holdout" / family, "test_list.txt")]
        holdout_sets = [name for name in evaluations if name.startswith("holdout:")]
        pools = {"holdout:pooled": holdout_sets} if len(holdout_sets) > 1 else None
        report = compare(run, student_dir / "model.pt", (work / "eval", "val_list.txt"), evaluations, threads=args.threads,
                         tta=not args.no_tta, max_per_list=args.max_per_list, pools=pools)
        record("compare_s", time.perf_counter() - started)
        report["timings"] = dict(timings)
        write_report(report_path, report)
    report = json.loads(report_path.read_text())
    print(render_markdown(report))
    if args.stop_after == "compare":
        return 0

    # 5. the bundle
    from training.ensemble.teacher import done_members, member_records
    from training.ship import package_model, write_report as write_ship_report

    members = done_members(run)
    provenance = {
        "made_by": "tools/make_student.py",
        "machine": args.machine_note,
        "command": " ".join(["python", *sys.argv]),
        "data": {"generator": "sdk.sim (synth-dataset)", "seeds": DATASETS,
                 "datasets": {k: {"seed": v.get("seed"), "splits": v["splits"]} for k, v in data["datasets"].items()},
                 "holdout_families_excluded_from_training": sorted(data["holdouts"]),
                 "members_train_lists": [members_train, members_extra], "student_train_list": student_train,
                 "student_extra_data": extra_data,
                 "unlabeled_list": unlabeled},
        "ensemble": {"run": str(run), "preset": args.ensemble_preset, "overrides": member_overrides,
                     "n_members": len(members), "members": member_records(run, members)},
        "distillation": {"run": str(student_dir), "preset": args.student_preset,
                         "config": json.loads((student_dir / "config.json").read_text()),
                         "init": (json.loads((student_dir / "init_report.json").read_text())
                                  if (student_dir / "init_report.json").is_file() else None)},
        "members": [{"name": m.name, "init": m.init, "fold": m.fold, "seed": m.seed, "model": m.config.model.name,
                     "options": dict(m.config.model.options)} for m in members],
        "comparison": {k: report["results"][k] for k in report["results"] if k != "calibration"},
        "cost": report["cost"],
    }
    started = time.perf_counter()
    out = Path(args.out) if args.out else SHIPPED_DIR / DEFAULT_BUNDLE
    bundle, ship_report = package_model(student_dir / "model.pt", out, data_root=work / "eval",
                                        calibration_list="val_list.txt",
                                        test_lists=["test_list.txt", "test_extra_list.txt"],
                                        name="mlfa_student_sim", version=args.version, provenance=provenance)
    record("package_s", time.perf_counter() - started)
    write_ship_report(work / "shipped_report.json", {**ship_report, "timings": timings})
    shipped = out.resolve() == (SHIPPED_DIR / DEFAULT_BUNDLE).resolve()
    doc = run_document_path(args.doc, shipped)
    doc.write_text(render_doc(report, ship_report, timings, provenance, shipped=shipped, bundle=str(out)), encoding="utf-8")
    print(json.dumps({"bundle": str(bundle.path), "timings": timings, "doc": str(doc)}, indent=2))
    return 0


def render_doc(report: dict, ship: dict, timings: dict, provenance: dict, *, shipped: bool = True, bundle: str = "") -> str:
    from training.compare import render_markdown

    members = provenance["members"]
    student = provenance["distillation"]["config"]
    title = ("# The shipped model: `sdk/bundles/mlfa_student_sim` (distilled student)" if shipped else
             f"# A distilled student (bundle `{bundle}`, not the shipped default)")
    lines = [
        title,
        "",
        "A student distilled from the CI-sized 24-member ensemble ([ensemble.md](ensemble.md)), made by",
        f"`tools/make_student.py` on {provenance.get('machine', 'the 2-core x86_64 VM, CPU only')}. Remake it with:",
        "",
        f"    {provenance['command']}",
        "",
        "Time per stage (seconds): " + ", ".join(f"{k} {v}" for k, v in timings.items()) + ".",
        "",
        "## Data (simulator, disjoint subject seeds, held-out generator families never rendered for training)",
        "",
        "| dataset | split | triplets | live | attack |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, info in provenance["data"]["datasets"].items():
        for split, s in info["splits"].items():
            lines.append(f"| {name} (seed {info['seed']}) | {split} | {s['triplets']} | {s['live']} | {s['attack']} |")
    lines += [
        "",
        "Members train on `members` (Training split into the attack folds; Val, Test and TestExtra in every fold's",
        "training part); the student on all of `members` plus `eval`'s Training split, with `unlabeled` as",
        "KD-only renders; operating points are set on `eval` Val; the tests are `eval` Test + TestExtra and one",
        "set per held-out family (" + ", ".join(provenance["data"]["holdout_families_excluded_from_training"]) + ").",
    ]
    extra = provenance["data"].get("student_extra_data") or []
    if extra:
        lines += [
            "",
            "The student also learns from " + ", ".join(
                f"`{d['path']}` (seed {d['seed']}, {sum((v.get('triplets') or 0) for v in d['splits'].values())} triplets)"
                for d in extra) + ": every split, each rendered with every held-out family excluded and a dataset "
            "seed other than eval's, so its subjects are disjoint from every test set. The members never saw them.",
        ]
    lines += [
        "",
        "## Networks",
        "",
        f"Ensemble: {len(members)} members, preset `{provenance['ensemble']['preset']}`: "
        + ", ".join(sorted({f"`{m['model']}` {m['options']}" for m in members}))
        + "; init slots without face checkpoints (random init, recorded per member). Every member's name, "
          "config and SHA-256 is in the bundle's provenance.",
        f"Student: `{student['model']['name']}` {student['model']['options']}, preset `{provenance['distillation']['preset']}` "
        f"({student['optim']['epochs']} epochs, T = {student['distill']['temperature']}, "
        f"{student['distill']['kd_weight']} KD + {student['distill']['ce_weight']} CE, mixup alpha {student['distill']['mixup_alpha']})"
        + (f", warm started from `{student['init']['weights']}` (a trained model of the same network; its SHA-256 is "
           "in the run's init_report.json)." if (student.get("init") or {}).get("weights") else "."),
        "",
        "## Student vs ensemble vs best member (one run)",
        "",
        render_markdown(report),
        "## Shipped operating points (set on eval Val)",
        "",
        "| name | threshold | APCER | BPCER | attacks / live |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, p in ship["operating_points"].items():
        lines.append(f"| {name} | {p['threshold']:.6f} | {p['apcer']:.4f} | {p['bpcer']:.4f} | {p['n_attack']} / {p['n_live']} |")
    test = ship["metrics"].get("test")
    if test:
        lines += ["", f"At the shipped threshold on eval Test + TestExtra ({test['n_live']} live, {test['n_attack']} attack "
                  f"crops): APCER {test['apcer']:.4f} ({test['n_attack_accepted']}/{test['n_attack']}), BPCER "
                  f"{test['bpcer']:.4f} ({test['n_live_rejected']}/{test['n_live']}).",
                  "", "These are simulator figures on small test sets: a zero count of n attacks bounds the true "
                  "rate only below about 3/n (rule of three)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
