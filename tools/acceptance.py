"""Acceptance of a model on simulator recordings: a thin wrapper over `sr300-liveness hil`.

Makes a HIL suite (`hil make-suite`: labelled bags of subjects never used in training, written
through librealsense) and runs it (`hil run`: LivenessSession.check() on every recording, the
per-scenario table, APCER per species and BPCER with Clopper-Pearson 95 % bounds, timings).
The suite is kept in --suite (so a rerun only checks), else made in a temporary folder.

    python tools/acceptance.py --per-scenario 20 --frames 30 --out docs/acceptance.json

is the same as

    sr300-liveness hil make-suite --out SUITE --per-scenario 20 --frames 30
    sr300-liveness hil run SUITE --json docs/acceptance.json

Exit code: `hil run`'s (0 pass, 1 an attack LIVE / BPCER over budget, 3 not checked).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-scenario", "--bags", dest="per_scenario", type=int, default=20,
                        help="recordings per scenario (default 20)")
    parser.add_argument("--frames", type=int, default=30, help="frames per recording (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="suite seed (default 0)")
    parser.add_argument("--model", default=None, help="bundle folder (default: the shipped model)")
    parser.add_argument("--operating-point", default=None)
    parser.add_argument("--scenarios", nargs="*", default=None, help="default: every scenario but 'empty'")
    parser.add_argument("--suite", default=None, help="keep the suite in this folder (default: a temporary one)")
    parser.add_argument("--out", default=None, help="write the `hil run --json` report here")
    parser.add_argument("--junit", default=None, help="write JUnit XML here")
    args = parser.parse_args()

    from sdk.cli import main as cli

    def run(suite: str) -> int:
        make = ["hil", "make-suite", "--out", suite, "--per-scenario", str(args.per_scenario),
                "--frames", str(args.frames), "--seed", str(args.seed)]
        if args.scenarios:
            make += ["--scenarios", *args.scenarios]
        code = cli(make)
        if code:
            return code
        check = ["hil", "run", suite]
        for flag, value in (("--model", args.model), ("--operating-point", args.operating_point),
                            ("--json", args.out), ("--junit", args.junit)):
            if value:
                check += [flag, value]
        return cli(check)

    if args.suite:
        return run(args.suite)
    with tempfile.TemporaryDirectory(prefix="acceptance-suite-") as scratch:
        return run(scratch)


if __name__ == "__main__":
    sys.exit(main())
