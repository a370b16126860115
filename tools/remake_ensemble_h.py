"""Remake ensemble H, the 24 members every shipped student since 2.18.0 was distilled from.

    # 1. the members' dataset, as candidate F rendered it (docs/student_run_F.md)
    python tools/make_student.py --work /work/runs/s4 --live 240 --per-attack 90 --frames-per-subject 3 \\
        --eval-live 120 --eval-per-attack 45 --holdout-live 40 --holdout-per-attack 8 --holdout-frames 2 \\
        --workers 2 --render members --stop-after render
    # 2. every member through F, G and H, with the code H was trained under
    git worktree add /work/wt_h 9a3352b
    PYTHONPATH=/work/wt_h python tools/remake_ensemble_h.py --work /work/runs/s4 --code-root /work/wt_h
    # 3. every member's model.pt against the SHA-256 the shipped manifest records
    python tools/reproduce_evidence.py --parts ensemble --ensemble-run /work/runs/s4/ensembleH

H's members were trained in three runs (docs/decisions.md, candidates F, G and H): F (`ci_medium`,
2 epochs over <= 2,000 samples of the fold, E's four augmentations), G (each member continued
from its namesake for 3 epochs over the whole fold at lr 0.002) and H (3 more at lr 0.001). This
tool plans the three runs as `make_student.py` did, then trains every member through the three
stages as Ray tasks of one CPU each (as `ensemble train` runs them): a member's next stage starts
as soon as its last one is done, the member with the most work left first, so no core waits for a
slower member of another architecture, and finished members are checked while the rest train. A
member takes about 10 minutes (ResNet-34) or 20 (IR-50) on one core (docs/reproducibility.md).
Resumable: finished stages are skipped, and a killed one resumes from its checkpoint.

Bit for bit: training is deterministic on the CPU, and today's code gives H's weights exactly.
But `model.pt` stores the training config, and today's config has keys H's had not, so only the
code of commit 9a3352b writes the same file, and only in the same folder (the config holds its
paths). This tool therefore imports nothing the old code lacks.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent

#: The recipe of H (docs/decisions.md; docs/student_run_F.md, _G's command, student_run_H.md).
PRESET = "ci_medium"
F_OVERRIDES = {"augment.aligned_holes": 0.5, "augment.colour_refocus": 0.5, "augment.relief_negative": 0.25,
               "augment.modality_swap": 0.25}
STAGES = (("ensemble", None, {}),
          ("ensembleG", "ensemble", {"optim.epochs": 3, "optim.lr": 0.002, "data.max_train_samples": None}),
          ("ensembleH", "ensembleG", {"optim.epochs": 3, "optim.lr": 0.001, "data.max_train_samples": None}))


@contextmanager
def namesakes_planned_ahead() -> Iterator[None]:
    """`make_plan(warm_start=RUN)` refuses until every member of RUN is done. Here members go through
    the stages one pair at a time, so each stage is planned before its warm start is trained: with
    each member pointed at its own namesake's model.pt, the plan the command writes once all are done.
    """
    import training.ensemble.plan as plan_module

    original = plan_module._warm_start_weights

    def every_namesake(warm_run: Path) -> dict[str, Path]:
        return {m.name: (warm_run / "members" / m.name / "model.pt").resolve() for m in plan_module.load_members(warm_run)}

    plan_module._warm_start_weights = every_namesake
    try:
        yield
    finally:
        plan_module._warm_start_weights = original


def plan_stages(work: Path) -> dict[str, list]:
    """Plan F, G and H in ``work`` (lists from make_student.py's render); run name -> members."""
    from training.ensemble.plan import make_plan

    lists = work / "lists"
    plans = {}
    with namesakes_planned_ahead():
        for run_name, warm, overrides in STAGES:
            plans[run_name] = make_plan(PRESET, work, work / run_name, train_list=str(lists / "members_folds.txt"),
                                        extra_train=[str(lists / "members_extra.txt")],
                                        overrides={**F_OVERRIDES, **overrides},
                                        warm_start=str(work / warm) if warm else None)
    return plans


def work_left(name: str, stage: int) -> int:
    """Relative CPU time a member still needs from ``stage`` (0..3) on: an IR-50 stage is about
    twice a ResNet-34 stage (docs/reproducibility.md)."""
    return (len(STAGES) - stage) * (2 if name.startswith("ir50") else 1)


def next_member(stage_of: dict[str, int], busy: set[str], order: list[str]) -> str | None:
    """The member to start next: not running, not through every stage, with the most work left
    (longest first keeps the last minutes from running one slow member on one core); ties in
    ``order``."""
    free = [n for n in order if n not in busy and stage_of[n] < len(STAGES)]
    return max(free, key=lambda n: (work_left(n, stage_of[n]), -order.index(n)), default=None)


def member_order(names: list[str]) -> list[str]:
    """IR-50 and ResNet-34 members alternately, so both architectures are checked early."""
    ir = [n for n in names if n.startswith("ir50")]
    resnet = [n for n in names if not n.startswith("ir50")]
    order = [n for pair in zip(ir, resnet) for n in pair]
    return order + ir[len(resnet):] + resnet[len(ir):]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="make_student.py's work folder (data and lists)")
    parser.add_argument("--code-root", type=Path, default=None,
                        help="the checkout whose `training` must be the one imported (a worktree at 9a3352b)")
    parser.add_argument("--manifest", type=Path, default=REPO / "sdk" / "bundles" / "mlfa_student_sim" / "manifest.json")
    parser.add_argument("--member", action="append", default=None, help="only these members (repeatable)")
    parser.add_argument("--parallel", type=int, default=2, help="members trained at a time (one CPU each)")
    args = parser.parse_args(argv)

    import training

    if args.code_root and not Path(training.__file__).resolve().is_relative_to(args.code_root.resolve()):
        print(f"error: training is imported from {training.__file__}, not from {args.code_root} "
              f"(run with PYTHONPATH={args.code_root})", file=sys.stderr)
        return 3
    work = args.work.resolve()
    if not (work / "lists" / "members_folds.txt").is_file():
        print(f"error: {work} has no lists/members_folds.txt: render the members' dataset first (see --help)",
              file=sys.stderr)
        return 3
    recorded = {m["name"]: m for m in json.loads(args.manifest.read_text())["provenance"]["ensemble"]["members"]}
    root = next(iter(recorded.values()))["config"]["data"]["root"]
    if str(work) != root:
        print(f"warning: the recorded configs name {root}; in {work} the weights can match, the files cannot "
              "(model.pt stores its config's paths)", file=sys.stderr)

    plans = plan_stages(work)
    names = [m.name for m in plans["ensemble"]]
    unknown = sorted(set(args.member or []) - set(names))
    if unknown:
        print(f"error: no such members: {unknown}", file=sys.stderr)
        return 3
    order = [n for n in member_order(names) if not args.member or n in args.member]
    expected = {name: recorded[name]["model_sha256"] for name in order}
    failed = train_stages(work, order, args.parallel, expected, lambda line: print(line, flush=True))
    if failed:
        print(f"error: {failed}", file=sys.stderr)
        return 2
    matched = 0
    for name in order:
        found = sha256_of(work / "ensembleH" / "members" / name / "model.pt")
        matched += found == expected[name]
        print(f"{name}: {verdict(found, expected[name])}", flush=True)
    print(f"{matched} of {len(order)} members have the recorded SHA-256")
    return 0 if matched == len(order) else 1


def sha256_of(path: Path) -> str:
    from sdk.engine.bundle import sha256_file  # the project's one file hash (the old code has it too)

    return sha256_file(path)


def stage_reached(work: Path, name: str) -> int:
    """How many of the stages ``name`` has finished, in order (0..3)."""
    from training.ensemble.plan import load_members
    from training.ensemble.status import member_status

    for index, (run_name, _, _) in enumerate(STAGES):
        member = next(m for m in load_members(work / run_name) if m.name == name)
        if member_status(work / run_name, member)["status"] != "done":
            return index
    return len(STAGES)


def verdict(found: str, expected: str) -> str:
    return "the recorded SHA-256" if found == expected else f"DIFFERS ({found[:12]}…, recorded {expected[:12]}…)"


def train_stages(work: Path, order: list[str], parallel: int, expected: dict[str, str], log) -> dict[str, str]:
    """Every stage of every member in ``order`` not done yet, ``parallel`` Ray tasks of one CPU at a
    time (training.ensemble.runner.run_member, as `ensemble train` runs a member). Returns the
    failures, {"run/member": error}; the first one stops new starts."""
    import os

    from training.ensemble.plan import load_members, write_plan
    from training.ensemble.runner import init_ray, run_member, shutdown_ray

    stage_of = {name: stage_reached(work, name) for name in order}
    failed: dict[str, str] = {}
    if all(stage == len(STAGES) for stage in stage_of.values()):
        return failed
    ray = init_ray(None, parallel)
    remote = ray.remote(max_retries=1)(run_member)
    niceness = os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else None
    in_flight: dict = {}
    try:
        while True:
            while not failed and len(in_flight) < parallel:
                name = next_member(stage_of, {n for n, _, _ in in_flight.values()}, order)
                if name is None:
                    break
                run_name = STAGES[stage_of[name]][0]
                ref = remote.options(num_cpus=1, name=f"{run_name}:{name}").remote(str(work / run_name), name, 1, None,
                                                                                   niceness)
                in_flight[ref] = (name, run_name, time.monotonic())
            if not in_flight:
                return failed
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                name, run_name, started = in_flight.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as error:  # the worker process died (OOM, node lost)
                    record = {"state": "failed", "error": f"{type(error).__name__}: {error}"}
                write_plan(work / run_name, load_members(work / run_name))
                if record["state"] != "done":
                    failed[f"{run_name}/{name}"] = record["error"]
                    log(f"{run_name} {name}: FAILED {record['error']}")
                    continue
                stage_of[name] += 1
                log(f"{run_name} {name}: {time.monotonic() - started:.0f} s")
                if stage_of[name] == len(STAGES):
                    log(f"{name}: {verdict(sha256_of(work / 'ensembleH' / 'members' / name / 'model.pt'), expected[name])}")
    finally:
        shutdown_ray()


if __name__ == "__main__":
    sys.exit(main())
