"""The figure run: every shipped operating point on many simulator recordings of unseen subjects.

For every scenario of the simulator's registry (but "empty"), N recordings of subjects whose
seeds were used neither in training (synth-dataset seeds < 3e7) nor in calibration
(tools/make_recordings.py: 6e8 + ...; HIL suites use 8e8 + ...) are rendered to a .bag, replayed through the session's
per-frame path (calibration.recordings.score_one: stuck-stream guard, detection, gates, crops,
engine) and reduced to the check score (sdk.fusion.check_score). A check is LIVE at threshold t
exactly when its check score is >= t, so one replay gives the decision at every operating point.

Incremental: one JSON line per recording is appended to OUT/results.jsonl as it finishes, and
a re-run skips the recordings already there (same model and decision rule), so a killed run
loses nothing. Every recording is tagged with the held-out generator families it falls into
(sdk.sim.holdout.session_families: |yaw| > 20, glasses or beard, > 0.8 m, sunlight, mask_3d,
and < 0.3 m); figures are printed for all recordings, for in-distribution ones only, and per
family. Prints, per operating point, APCER per attack species with its one-sided 95 %
Clopper-Pearson upper bound, the worst species, and BPCER with its bound; writes OUT/summary.json.

    python tools/evaluate_recordings.py --out runs/eval --live 300 --attacks 150 --workers 2
    python tools/evaluate_recordings.py --out runs/eval --report-only     # table from what is there
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: Subject seeds of the evaluation run: SEED_BASE + 10_000 x scenario index + i (registry order).
EVALUATION_SEED_BASE = 900_000_000
RESULTS = "results.jsonl"
SUMMARY = "summary.json"
FAMILIES = "families.jsonl"

_WORKER: dict[str, Any] = {}


def _init(bundle: str, frames: int, scratch: str) -> None:
    from calibration.recordings import _open_session
    from sdk.session import SessionConfig

    _WORKER.update(session=_open_session(bundle, SessionConfig()), frames=frames, scratch=scratch)


def run_job(job: tuple[str, int, int]) -> dict[str, Any]:
    """Render, replay and score one recording (in a worker process)."""
    from calibration.recordings import Recording, score_one
    from sdk.cli.cmd_synth_bag import synth_bag
    from sdk.engine.bundle import sha256_file
    from sdk.sim import get_scenario

    scenario, seed, keep = job
    started = time.perf_counter()
    folder = Path(_WORKER["scratch"])
    bag = folder / f"{scenario}_{seed}.bag"
    sidecar = synth_bag(scenario, seed, _WORKER["frames"], bag)
    spec = get_scenario(scenario)
    recording = Recording(bag, spec.label, "live" if spec.label == 1 else scenario, sidecar["device"]["serial"],
                          sha256_file(bag))
    row = score_one(_WORKER["session"], recording, None)  # closes the bag when done
    if not keep:
        bag.unlink(missing_ok=True)
        bag.with_suffix(".json").unlink(missing_ok=True)
    row.update(scenario=scenario, seed=seed, seconds=round(time.perf_counter() - started, 2),
               holdout_families=list(sidecar["holdout_families"]))
    row.pop("path", None)
    return row


def families_job(job: tuple[str, int, int]) -> tuple[str, int, list[str]]:
    """The held-out families of one recording, from its generator's truth (no rendering): for rows
    written before the sidecar carried them."""
    from sdk.sim import Simulator
    from sdk.sim.holdout import session_families

    scenario, seed, frames = job
    sim = Simulator(scenario, seed)
    truths = [sim._truth(i, sim._content(i)) for i in range(frames)]
    return scenario, seed, list(session_families(sim, [t.yaw_deg for t in truths], [t.distance_m for t in truths]))


def tag_families(rows: list[dict[str, Any]], frames: int, workers: int, cache: Path) -> None:
    """Give every row its ``holdout_families`` (computed once, cached in ``cache``)."""
    from tqdm import tqdm

    known: dict[tuple[str, int], list[str]] = {}
    if cache.is_file():
        for line in cache.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                known[(entry["scenario"], entry["seed"])] = entry["holdout_families"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    missing = [(r["scenario"], r["seed"], frames) for r in rows
               if "holdout_families" not in r and (r["scenario"], r["seed"]) not in known]
    if missing:
        with ProcessPoolExecutor(max(1, workers)) as pool, open(cache, "a", encoding="utf-8") as handle, \
                tqdm(total=len(missing), unit="rec", desc="held-out families") as bar:
            for scenario, seed, families in pool.map(families_job, missing, chunksize=4):
                known[(scenario, seed)] = families
                handle.write(json.dumps({"scenario": scenario, "seed": seed, "holdout_families": families}) + "\n")
                bar.update(1)
    for row in rows:
        if "holdout_families" not in row:
            row["holdout_families"] = known[(row["scenario"], row["seed"])]


def summarise(rows: list[dict[str, Any]], points: dict[str, float]) -> dict[str, Any]:
    """Per operating point: APCER per species (+ bound), worst species, BPCER (+ bound)."""
    from calibration.metrics import clopper_pearson_upper

    good = [r for r in rows if not r.get("error")]
    summary: dict[str, Any] = {"recordings": len(rows), "failed_replay": len(rows) - len(good), "points": {}}
    species = sorted({r["species"] for r in good if r["label"] == 0})
    live = [r for r in good if r["label"] == 1]
    for name, threshold in points.items():
        per: dict[str, Any] = {}
        for sp in species:
            part = [r for r in good if r["label"] == 0 and r["species"] == sp]
            k = sum(r["check_score"] >= threshold for r in part)
            per[sp] = {"n_attack": len(part), "n_accepted": int(k), "apcer": k / len(part),
                       "apcer_upper_95": clopper_pearson_upper(int(k), len(part))}
        worst = max(per, key=lambda sp: (per[sp]["apcer"], per[sp]["apcer_upper_95"])) if per else None
        rejected = sum(r["check_score"] < threshold for r in live)
        attacks = sum(p["n_attack"] for p in per.values())
        accepted = sum(p["n_accepted"] for p in per.values())
        summary["points"][name] = {
            "threshold": threshold,
            "apcer_per_species": per,
            "worst_species": worst,
            "worst_apcer": per[worst]["apcer"] if worst else None,
            "worst_apcer_upper_95": per[worst]["apcer_upper_95"] if worst else None,
            "apcer_all": accepted / attacks if attacks else None,
            "n_attack": attacks,
            "n_attack_accepted": int(accepted),
            "bpcer": rejected / len(live) if live else None,
            "n_live": len(live),
            "n_live_rejected": int(rejected),
            "bpcer_upper_95": clopper_pearson_upper(int(rejected), len(live)) if live else None,
        }
    return summary


def table(summary: dict[str, Any]) -> str:
    lines = []
    for name, p in summary["points"].items():
        lines.append(f"operating point {name} (threshold {p['threshold']:.6g})")
        lines.append(f"  {'species':<28s} {'accepted':>10s} {'APCER':>8s} {'95% upper':>10s}")
        for sp, r in p["apcer_per_species"].items():
            mark = "  <- worst" if sp == p["worst_species"] else ""
            lines.append(f"  {sp:<28s} {r['n_accepted']:>4d}/{r['n_attack']:<5d} {r['apcer']:>8.4f} {r['apcer_upper_95']:>10.4f}{mark}")
        if p["bpcer"] is not None:
            lines.append(f"  {'BPCER (live not LIVE)':<28s} {p['n_live_rejected']:>4d}/{p['n_live']:<5d} {p['bpcer']:>8.4f} "
                         f"{p['bpcer_upper_95']:>10.4f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for results.jsonl and summary.json")
    parser.add_argument("--live", type=int, default=300, help="live recordings")
    parser.add_argument("--attacks", type=int, default=150, help="recordings per attack scenario")
    parser.add_argument("--frames", type=int, default=20, help="frames per recording")
    parser.add_argument("--model", default=None, help="bundle folder (default: the shipped model)")
    parser.add_argument("--scenarios", nargs="*", default=None, help="default: every scenario of the registry but 'empty'")
    parser.add_argument("--seed-base", type=int, default=EVALUATION_SEED_BASE)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--keep-bags", action="store_true", help="keep the rendered bags under OUT/bags")
    parser.add_argument("--report-only", action="store_true", help="only print the table of the finished recordings")
    args = parser.parse_args()

    from tqdm import tqdm

    from calibration.recordings import finished_rows, rule_fingerprint
    from sdk.engine import ModelBundle
    from sdk.session import SessionConfig, with_bundle_gates
    from sdk.sim import get_scenario, list_scenarios

    bundle = ModelBundle.load(args.model)
    rule = with_bundle_gates(SessionConfig(), bundle).decision_rule()  # what the replays below run
    points = {name: float(p["threshold"]) for name, p in bundle.manifest["operating_points"]["points"].items()}
    fingerprint = rule_fingerprint(bundle.model_sha256, rule, args.frames)
    registry = list_scenarios()
    scenarios = args.scenarios or [s for s in registry if s != "empty"]
    jobs = [(s, args.seed_base + 10_000 * registry.index(s) + i)
            for s in scenarios for i in range(args.live if get_scenario(s).label == 1 else args.attacks)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / RESULTS
    done = {(row["scenario"], row["seed"]): row for row in finished_rows(results, fingerprint)}
    todo = [job for job in jobs if job not in done]
    print(f"{bundle.name} {bundle.version}: {len(jobs)} recordings planned, {len(jobs) - len(todo)} done, "
          f"{len(todo)} to do ({args.frames} frames each, {args.workers} worker(s))", flush=True)
    started = time.perf_counter()
    if todo and not args.report_only:
        scratch = out / "bags" if args.keep_bags else Path(tempfile.mkdtemp(prefix="eval_bags_", dir=out))
        scratch.mkdir(parents=True, exist_ok=True)
        try:
            with ProcessPoolExecutor(max(1, args.workers), initializer=_init,
                                     initargs=(str(bundle.path), args.frames, str(scratch))) as pool, \
                    open(results, "a", encoding="utf-8") as handle, tqdm(total=len(todo), unit="rec") as bar:
                pending = set()
                queue = list(todo)
                while queue or pending:
                    while queue and len(pending) < 2 * max(1, args.workers):
                        s, seed = queue.pop(0)
                        pending.add(pool.submit(run_job, (s, seed, args.keep_bags)))
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        row = future.result()
                        row["fingerprint"] = fingerprint
                        row["outcomes"] = [[o["score"], o["reasons"]] for o in row["outcomes"]]  # compact
                        handle.write(json.dumps(row) + "\n")
                        handle.flush()
                        os.fsync(handle.fileno())
                        done[(row["scenario"], row["seed"])] = row
                        bar.update(1)
        finally:
            if not args.keep_bags:
                shutil.rmtree(scratch, ignore_errors=True)
    rows = [done[job] for job in jobs if job in done]
    tag_families(rows, args.frames, args.workers, out / FAMILIES)
    summary = summarise(rows, points)
    # The same figures on in-distribution recordings only (sessions training could have drawn)
    # and on each held-out family of the generator (never in any training set).
    in_distribution = [r for r in rows if not r["holdout_families"]]
    summary["in_distribution"] = summarise(in_distribution, points)
    summary["held_out"] = {family: summarise([r for r in rows if family in r["holdout_families"]], points)
                           for family in sorted({f for r in rows for f in r["holdout_families"]})}
    summary.update(model=f"{bundle.name} {bundle.version}", model_sha256=bundle.model_sha256,
                   frames_per_recording=args.frames, seed_base=args.seed_base, planned=len(jobs),
                   live_per_run=args.live, attacks_per_scenario=args.attacks,
                   seconds_this_run=round(time.perf_counter() - started, 1),
                   decision_rule=rule)
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"== all recordings (full generator: in-distribution and held-out) ==\n{table(summary)}")
    print(f"\n== in-distribution only ({summary['in_distribution']['recordings']} recordings) ==\n"
          f"{table(summary['in_distribution'])}")
    for family, part in summary["held_out"].items():
        print(f"\n== held-out family {family} ({part['recordings']} recordings) ==\n{table(part)}")
    failed = summary["failed_replay"]
    accepted = sum(p["n_attack_accepted"] for p in summary["points"].values())
    print(f"{len(rows)}/{len(jobs)} recordings; {failed} failed replays; summary in {out / SUMMARY}")
    return 0 if accepted == 0 and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
