"""`sr300-liveness counterfactual`: how often one irrelevant change flips the model's decision."""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "counterfactual",
        help="decision flip rates under outline paste, background fill, IR gain, depth noise, aligned holes "
             "and colour sharpness",
        description="Render simulator crops through the device's crop path, apply one change that should not "
                    "matter (a live head outline pasted into attack crops, a flat background behind live "
                    "faces, IR gain x0.7 / x1.3, depth noise x2, aligned holes, colour sharpened or blurred) and print the share of decisions that flip.",
    )
    parser.add_argument("--model", default=None, help="model bundle folder (default: the shipped model)")
    parser.add_argument("--operating-point", default=None, help="named threshold of the bundle (default: its default)")
    parser.add_argument("--live", type=int, default=50, help="live subjects (default 50, 2 frames each)")
    parser.add_argument("--attacks", type=int, default=12, help="subjects per attack scenario (default 12; 10 scenarios)")
    parser.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from calibration.counterfactual import run as measure

    result = measure(args.model, live_subjects=args.live, attack_subjects=args.attacks, seed=args.seed,
                     operating_point=args.operating_point)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"model {result['model']} {result['model_version']}, operating point {result['operating_point']} "
          f"(threshold {result['threshold']:.4f}); {result['live_crops']} live / {result['attack_crops']} attack crops, "
          f"seed {result['seed']}; before any change: BPCER {result['base_bpcer']:.3f}, APCER {result['base_apcer']:.3f}")
    for r in result["transforms"]:
        verdict = "ok" if r["rate"] <= result["max_flip_rate"] else "FAILS"
        print(f"  {r['transform']:<16} on {r['applies_to']:<6} flips {r['flips']:>3}/{r['n']:<4} = {r['rate']:.3f}  "
              f"(live->not {r['live_to_not']}, attack->live {r['attack_to_live']})  {verdict} "
              f"(limit {result['max_flip_rate']:.2f})")
        flipped = {k: v for k, v in r["by_scenario"].items() if v["flips"]}
        if flipped:
            print("      flipped in: " + ", ".join(f"{k} {v['flips']}/{v['n']}" for k, v in flipped.items()))
    relief = result["relief_check"]
    verdict = "ok" if relief["rate"] <= relief["max_rate"] else "FAILS"
    print(f"  relief removed   on live   {relief['still_accepted']:>3}/{relief['accepted_live']:<4} accepted live crops stay "
          f"accepted with a flat depth = {relief['rate']:.3f}  {verdict} (limit {relief['max_rate']:.2f}: a face needs relief)")
    return 0
