"""`sr300-liveness eval-independent`: BPCER / APCER on real people from a second, independent renderer.

The renderer (calibration/independent) shares no code with the simulator the model was trained
on; its recordings are real .bag files checked with LivenessSession at every operating point.
"""
from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval-independent",
        help="BPCER and per-attack APCER on real people rendered independently of the simulator",
        description="Render real people (a 3D face scan, real photos on fitted geometry) and prints / screen "
                    "replays of them, record each as an SR300 .bag and check it with the model at every "
                    "operating point. Evaluation only: these faces are never used for training.",
    )
    parser.add_argument("--model", default=None, help="model bundle folder (default: the shipped model)")
    parser.add_argument("--people", type=int, default=3, help="live people (person i is real identity i mod 3; default 3)")
    parser.add_argument("--frames", type=int, default=10, help="frames per recording (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="run seed: draws pose, light, room per person (default 0)")
    parser.add_argument("--cache", default=None, metavar="DIR",
                        help="keep the rendered recordings in DIR and reuse them in later runs (keyed by a digest of "
                             "the renderer's code and data, the seed and the frame count), so that several models "
                             "are checked on the same recordings without rendering them again")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    parser.set_defaults(handler=run)


def _line(summary: dict, point: str) -> str:
    s = summary[point]
    bpcer = "n/a" if s["bpcer"] is None else f"{s['bpcer']:.3f}"
    upper = "n/a" if s["bpcer_upper_95"] is None else f"{s['bpcer_upper_95']:.3f}"
    return (f"{point:<12} threshold {s['threshold']:.4f}  BPCER {bpcer} ({s['live_rejected']}/{s['live_n']}; "
            f"95% upper {upper}; SPOOF {s['live_spoof']}, UNCERTAIN {s['live_uncertain']})  "
            f"attacks accepted {s['attacks_accepted']}/{s['attacks_n']}")


def run(args: argparse.Namespace) -> int:
    from calibration.independent.evaluate import run as evaluate

    show = None
    if not args.json:
        from tqdm import tqdm

        bar = tqdm(desc="eval-independent", unit="check", file=sys.stderr)
        show = lambda outcome: bar.update(1)  # noqa: E731
    report = evaluate(args.model, people=args.people, frames=args.frames, seed=args.seed, progress=show,
                      cache=args.cache)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    summary = report.summary()
    print(f"model {report.model} {report.model_version}; {report.people} live people, {report.frames} frames per "
          f"recording; seeds {report.seeds}")
    for point in summary:
        print(_line(summary, point))
        for kind, rate in summary[point]["apcer_per_kind"].items():
            print(f"    APCER {kind:<14} {rate['apcer']:.3f} ({rate['accepted']}/{rate['n']}; 95% upper {rate['apcer_upper_95']:.3f})")
    print("per presentation:")
    for o in report.outcomes:
        p = o.presentation
        score = "n/a" if o.score is None else f"{o.score:.4f}"
        print(f"  person {p.person_index} ({p.person}, seed {p.seed}) {p.kind:<14} {o.operating_point:<12} "
              f"{o.decision:<9} score {score}  {','.join(o.reasons) or '-'}")
    return 0
