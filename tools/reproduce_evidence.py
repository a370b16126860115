"""Make a bundle's evaluation data again from their seeds and compare the reruns with the committed reports.

    python tools/reproduce_evidence.py --work runs/reproduce [--parts acceptance calibration independent counterfactual] \\
        [--model BUNDLE] [--version V] [--reference-dir docs/eval_runs] [--independent-seed 12 ...] \\
        [--workers 2] [--json report.json]
    python tools/reproduce_evidence.py --work runs/reproduce --parts heldout --ensemble-run runs/s4/ensembleH

Parts (each renders what it needs into --work, then reruns the documented command with the bundle):
  * acceptance: `hil make-suite --per-scenario 10 --seed 1` and `hil run`, against
    acceptance_<V>.json (every recording's frames digest where the reference has one, decision,
    reasons, score; the files' own SHA-256 with --compare-file-bytes);
  * calibration: calib3 and calib_bright (`tools/make_recordings.py`, as docs/shipped_model.md
    documents them) and `calibrate` of the bundle with its own gates and detector, against
    calibrate_<V>.json (thresholds, counts, AUC, EER, scored frames);
  * independent: `eval-independent --people 30 --seed S`, against
    independent_<V>_seed<S>_people30.json (every presentation's decision, reasons, score);
  * counterfactual: `counterfactual --json` (its default sample, seed 0), against
    counterfactual_<V>.json (base rates, every transform's flips, the relief check, exactly);
  * ensemble (with --ensemble-run RUN; renders and trains nothing): every member's model.pt in
    RUN against the SHA-256 the bundle's manifest records (tools/remake_ensemble_h.py remakes them);
  * heldout (with --ensemble-run RUN): the held-out families of the reference rendered at
    `synth-dataset --holdout FAMILY --seed S --frames-per-subject 1` (400 live, 120 crops of each
    attack type, 1,080 masks) and `tools/heldout_gap.py` of the bundle against RUN, with the
    reference's pools and scoring (flip TTA or not), against heldout_gap_<V>_seed<S>.json (crop
    counts, the ensemble's TPR, the bundle's TPR, gap, bounds and verdict per set).
Renders resume where a killed run stopped; a part whose rerun report exists in --work (named after
the bundle's version, as the references are) is compared again without rerunning (--rerun forces
it). Comparison: calibration.reproduce.

Exit status: 0 every part reproduced; 1 a difference was found; 2 a step failed; 3 bad input.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from calibration.reproduce import (  # noqa: E402
    DEFAULT_SCORE_TOLERANCE,
    PartComparison,
    compare_acceptance,
    compare_calibration,
    compare_counterfactual,
    compare_ensemble_members,
    compare_heldout_gap,
    compare_independent,
    load_report,
)
from sdk.errors import InputValidationError  # noqa: E402
from sdk.validate import read_json_in_folder  # noqa: E402

PARTS = ("acceptance", "calibration", "independent", "counterfactual", "ensemble", "heldout")

#: The held-out sets of the gap figure (docs/ensemble.md): one crop per session, sizes that can
#: resolve TPR at FPR 1e-3 (400 live and 1,080 attack crops a family).
HELDOUT_LIVE = 400
HELDOUT_PER_ATTACK = 120
HELDOUT_MASKS = 1080
HELDOUT_MASK_FAMILY = "mask_3d"

#: The recordings 2.22.0 and later were calibrated on (docs/shipped_model.md, docs/model_changelog.md).
CALIB3 = ("--live", "100", "--attacks", "34", "--frames", "20")
CALIB3_EXCLUDED = ("mask_3d", "empty")  # masks are held out of calibration; empty shows no person
CALIB_BRIGHT = ("--live", "60", "--attacks", "12", "--frames", "20", "--seed-base", "600005000",
                "--exposure-scale", "1.5", "8")
CALIB_BRIGHT_SCENARIOS = ("live", "print_flat", "print_curved", "screen_replay", "cut_eyes_flat", "cut_eyes_curved",
                          "cut_eyes_nose_flat", "cut_eyes_nose_curved", "cut_eyes_nose_mouth_flat",
                          "cut_eyes_nose_mouth_curved")


class StepFailed(RuntimeError):
    """A command of a part ended with an error, so the part has no rerun report."""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sdk.cli", *args]


def _run(command: list[str], log: Path, *, stdout_to: Path | None = None, ok_codes: tuple[int, ...] = (0,)) -> None:
    """Run one step; its stderr (progress) goes to the log, stdout to ``stdout_to`` or the log.

    The report is written beside and moved in place only when the step succeeds, so a killed
    step never leaves a half report that a later run would take as done.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"  $ {' '.join(command)}", flush=True)
    started = time.monotonic()
    partial = stdout_to.with_name(stdout_to.name + ".partial") if stdout_to else None
    with open(log, "a") as log_file:
        out = open(partial, "w") if partial else log_file
        try:
            code = subprocess.call(command, stdout=out, stderr=log_file, cwd=REPO)
        finally:
            if partial:
                out.close()
    if code not in ok_codes:
        raise StepFailed(f"'{' '.join(Path(c).name for c in command[:5])} ...' exited {code}; see {log}")
    if partial and stdout_to:
        partial.replace(stdout_to)
    print(f"    done in {time.monotonic() - started:.0f} s", flush=True)


def rerun_acceptance(args: argparse.Namespace, work: Path) -> Path:
    suite, report = work / "suite_acc", work / f"acceptance_{args.version}.json"
    if report.is_file() and not args.rerun:
        return report
    log = work / "logs" / "acceptance.log"
    _run(_cli("hil", "make-suite", "--out", str(suite), "--per-scenario", str(args.suite_per_scenario),
              "--seed", str(args.suite_seed), "--frames", str(args.suite_frames),
              *(["--scenarios", *args.suite_scenarios] if args.suite_scenarios else [])), log)
    partial = report.with_name(report.name + ".partial")
    # hil run exits 1 when the suite's own gates fail (masks are accepted by design): still a report.
    _run(_cli("hil", "run", str(suite), "--model", str(args.model), "--json", str(partial)), log, ok_codes=(0, 1))
    if not partial.is_file():
        raise StepFailed(f"hil run wrote no report; see {log}")
    partial.replace(report)
    return report


def rerun_calibration(args: argparse.Namespace, work: Path) -> Path:
    report = work / f"calibrate_{args.version}.json"
    if report.is_file() and not args.rerun:
        return report
    from sdk.sim import list_scenarios

    log = work / "logs" / "calibration.log"
    make = [sys.executable, str(REPO / "tools" / "make_recordings.py"), "--workers", str(args.workers)]
    calib3_scenarios = [s for s in list_scenarios() if s not in CALIB3_EXCLUDED]
    _run([*make, "--out", str(work / "calib3"), *CALIB3, "--scenarios", *calib3_scenarios], log)
    _run([*make, "--out", str(work / "calib_bright"), *CALIB_BRIGHT, "--scenarios", *CALIB_BRIGHT_SCENARIOS], log)
    out = work / "bundle_recalibrated"
    if out.exists():  # a product of this tool only; the per-recording report beside it is kept and reused
        shutil.rmtree(out)
    # The recalibrated bundle is a by-product, so calibrate's default version (the source's minor + 1)
    # does: calibrate refuses to write a bundle under its source's own version.
    _run(_cli("calibrate", "--bags", str(work / "calib3"), str(work / "calib_bright"), "--model", str(args.model),
              "--out", str(out), "--workers", str(args.workers), "--json"),
         log, stdout_to=report)
    return report


def rerun_independent(args: argparse.Namespace, work: Path, seed: int) -> Path:
    report = work / f"independent_{args.version}_seed{seed}_people{args.people}.json"
    if report.is_file() and not args.rerun:
        return report
    _run(_cli("eval-independent", "--model", str(args.model), "--people", str(args.people), "--seed", str(seed),
              "--frames", str(args.independent_frames), "--cache", str(work / "ind_cache"), "--json"), work / "logs" / f"independent_seed{seed}.log",
         stdout_to=report)
    return report


def rerun_counterfactual(args: argparse.Namespace, work: Path) -> Path:
    report = work / f"counterfactual_{args.version}.json"
    if report.is_file() and not args.rerun:
        return report
    _run(_cli("counterfactual", "--model", str(args.model), "--json"), work / "logs" / "counterfactual.log",
         stdout_to=report)
    return report


def heldout_families(reference: dict) -> list[str]:
    """The rendered sets of a held-out gap report (its pools are made of them), each a known family."""
    from sdk.sim.holdout import HOLDOUT_FAMILIES

    known = set(HOLDOUT_FAMILIES)  # name -> family
    families = [name for name in reference.get("sets", {}) if name not in (reference.get("pools") or {})]
    unknown = [name for name in families if name not in known]
    if unknown or not families:
        raise InputValidationError(f"the held-out reference's sets are not held-out families: {unknown or families}")
    return families


def _heldout_per_attack(args: argparse.Namespace, family: str) -> int:
    return args.heldout_masks if family == HELDOUT_MASK_FAMILY else args.heldout_per_attack


def check_heldout_sizes(args: argparse.Namespace, reference: dict) -> None:
    """Refuse, before any rendering, sizes other than the reference's sets were rendered with."""
    for family in heldout_families(reference):
        entry = reference["sets"][family]
        per_attack = _heldout_per_attack(args, family)
        counts = set((entry.get("attack_types") or {}).values())
        if entry.get("n_live", args.heldout_live) != args.heldout_live or counts - {per_attack}:
            raise InputValidationError(
                f"the reference's {family} set has {entry.get('n_live')} live crops and {sorted(counts)} of each attack "
                f"type, not {args.heldout_live} and {per_attack} (--heldout-live, --heldout-per-attack, --heldout-masks)")


def rerun_heldout(args: argparse.Namespace, work: Path, reference: dict) -> Path:
    report = work / f"heldout_gap_{args.version}_seed{args.heldout_seed}.json"
    if report.is_file() and not args.rerun:
        return report
    log = work / "logs" / f"heldout_seed{args.heldout_seed}.log"
    sets = work / f"heldout_seed{args.heldout_seed}"
    families = heldout_families(reference)
    for family in families:
        if (sets / family / "test_list.txt").is_file():
            continue  # rendered (the list is written last); a cut-off family renders again to the same files
        _run(_cli("synth-dataset", "--out", str(sets / family), "--holdout", family, "--live", str(args.heldout_live),
                  "--per-attack", str(_heldout_per_attack(args, family)), "--frames-per-subject", "1", "--seed", str(args.heldout_seed),
                  "--workers", str(args.workers), "--no-progress"), log)
    command = [sys.executable, str(REPO / "tools" / "heldout_gap.py"), "--ensemble", str(args.ensemble_run),
               "--model", f"{args.model.name}_{args.version}={args.model}", "--cache", str(work / "heldout_scores"),
               "--threads", str(args.workers), "--no-tta" if reference.get("tta") is False else "--tta"]
    for family in families:
        command += ["--eval", f"{family}={sets / family}:test_list.txt"]
    for name, parts in (reference.get("pools") or {}).items():
        command += ["--pool", f"{name}={','.join(parts)}"]
    for option in ("target_fpr", "tolerance_points", "resamples", "seed"):
        if option in reference:
            command += [f"--{option.replace('_', '-')}", str(reference[option])]
    partial = report.with_name(report.name + ".partial")  # moved in place only when the step succeeds
    _run(command + ["--json", str(partial)], log)
    partial.replace(report)
    return report


def _read_manifest(bundle: Path) -> dict:
    return read_json_in_folder(bundle, "manifest.json", InputValidationError, "model bundle")


def _print(result: PartComparison, limit: int = 20) -> None:
    verdict = "reproduced" if result.reproduced else f"{len(result.differences)} difference(s)"
    diff = "" if result.max_score_difference is None else f", largest score difference {result.max_score_difference:.2e}"
    print(f"[{result.part}] {result.compared} compared with {result.reference}: {verdict}{diff}")
    for d in result.differences[:limit]:
        print(f"    {d.item}  {d.field}: reference {d.reference!r}, rerun {d.reproduced!r}")
    if len(result.differences) > limit:
        print(f"    ... and {len(result.differences) - limit} more (see --json)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "reproduce", help="where renders and reruns go")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS[:4]),
                        help="default: every part but ensemble")
    parser.add_argument("--ensemble-run", type=Path, default=None,
                        help="ensemble part: a remade ensemble run whose members are checked against the manifest")
    parser.add_argument("--model", type=Path, default=REPO / "sdk" / "bundles" / "mlfa_student_sim",
                        help="bundle whose reports are reproduced (default: the shipped one)")
    parser.add_argument("--version", default=None, help="reports' version (default: the bundle's)")
    parser.add_argument("--reference-dir", type=Path, default=REPO / "docs" / "eval_runs")
    parser.add_argument("--independent-seed", type=int, action="append", default=None, help="default: 12")
    parser.add_argument("--heldout-seed", type=int, default=20, help="heldout part: the sets' dataset seed")
    parser.add_argument("--heldout-live", type=int, default=HELDOUT_LIVE, help="heldout part: live sessions a family")
    parser.add_argument("--heldout-per-attack", type=int, default=HELDOUT_PER_ATTACK,
                        help="heldout part: sessions of each attack type a family")
    parser.add_argument("--heldout-masks", type=int, default=HELDOUT_MASKS, help="heldout part: 3D-mask sessions")
    parser.add_argument("--people", type=int, default=30)
    parser.add_argument("--independent-frames", type=int, default=10,
                        help="frames per independent recording; must be the reference's (eval-independent's default 10)")
    parser.add_argument("--suite-per-scenario", type=int, default=10)
    parser.add_argument("--suite-seed", type=int, default=1)
    parser.add_argument("--suite-frames", type=int, default=30)
    parser.add_argument("--suite-scenarios", nargs="+", default=None, help="default: make-suite's")
    parser.add_argument("--score-tolerance", type=float, default=DEFAULT_SCORE_TOLERANCE)
    parser.add_argument("--compare-file-bytes", action="store_true",
                        help="acceptance: also compare the bag files' SHA-256 (never equal for a rerender: "
                             "librealsense's recorder stamps the wall clock into the file)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rerun", action="store_true", help="rerun parts whose rerun report exists in --work")
    parser.add_argument("--json", type=Path, default=None, help="write every comparison here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.model = args.model.resolve()
        manifest = _read_manifest(args.model)  # the ensemble part's reference too
        args.version = args.version or str(manifest["version"])
        seeds = args.independent_seed or [12]
        # Every reference must exist before hours of rendering start.
        references = {"acceptance": [("acceptance", f"acceptance_{args.version}.json", None)],
                      "calibration": [("calibration", f"calibrate_{args.version}.json", None)],
                      "independent": [("independent", f"independent_{args.version}_seed{s}_people{args.people}.json", s)
                                      for s in seeds],
                      "counterfactual": [("counterfactual", f"counterfactual_{args.version}.json", None)],
                      "ensemble": [("ensemble", None, None)],  # the bundle's own manifest is the reference
                      "heldout": [("heldout", f"heldout_gap_{args.version}_seed{args.heldout_seed}.json", None)]}
        jobs = [job for part in args.parts for job in references[part]]
        loaded = {name: load_report(args.reference_dir / name) for _, name, _ in jobs if name}
        for part, name, _ in jobs:
            frames = loaded[name].get("frames_per_recording") if part == "independent" else None
            if frames is not None and frames != args.independent_frames:
                raise InputValidationError(f"{name} was made with {frames} frames per recording, "
                                           f"not --independent-frames {args.independent_frames}")
        for part in ("ensemble", "heldout"):
            if part in args.parts and args.ensemble_run is None:
                raise InputValidationError(f"--parts {part} needs --ensemble-run RUN")
        if "heldout" in args.parts:
            check_heldout_sizes(args, loaded[references["heldout"][0][1]])
    except InputValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    args.work.mkdir(parents=True, exist_ok=True)
    results: list[PartComparison] = []
    failed: list[str] = []
    for part, name, seed in jobs:
        doing = (f"checking {args.ensemble_run} against the manifest" if part == "ensemble"
                 else f"rerun with {args.model.name} {args.version}")
        print(f"[{part}{'' if seed is None else f' seed {seed}'}] {doing}", flush=True)
        try:
            if part == "acceptance":
                rerun = load_report(rerun_acceptance(args, args.work))
                result = compare_acceptance(loaded[name], rerun, reference_name=name, score_tolerance=args.score_tolerance,
                                            compare_file_bytes=args.compare_file_bytes)
            elif part == "ensemble":  # nothing to rerun: the members were remade beforehand
                result = compare_ensemble_members(manifest, args.ensemble_run,
                                                  reference_name=f"{args.model.name}/manifest.json")
            elif part == "counterfactual":
                rerun = load_report(rerun_counterfactual(args, args.work))
                result = compare_counterfactual(loaded[name], rerun, reference_name=name)
            elif part == "heldout":
                rerun = load_report(rerun_heldout(args, args.work, loaded[name]))
                result = compare_heldout_gap(loaded[name], rerun, reference_name=name)
            elif part == "calibration":
                rerun = load_report(rerun_calibration(args, args.work))
                result = compare_calibration(loaded[name], rerun, reference_name=name)
            else:
                rerun = load_report(rerun_independent(args, args.work, seed))
                result = compare_independent(loaded[name], rerun, reference_name=name, score_tolerance=args.score_tolerance)
        except (StepFailed, InputValidationError) as exc:
            print(f"[{part}] failed: {exc}", file=sys.stderr)
            failed.append(f"{part}: {exc}")
            continue
        _print(result)
        results.append(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": str(args.model), "version": args.version,
                                         "results": [r.to_dict() for r in results], "failed": failed}, indent=1) + "\n")
    if failed:
        return 2
    return 0 if all(r.reproduced for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
