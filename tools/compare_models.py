"""Trained models side by side on the same crops, each at its own operating point.

    python tools/compare_models.py --model base=runs/a/model.pt --model swap=runs/b/model.pt \
        --calibration runs/s3/eval:val_list.txt \
        --eval in_distribution=runs/s3/eval:test_list.txt --eval in_distribution=runs/s3/eval:test_extra_list.txt \
        --eval holdout:mask_3d=runs/s3/holdout/mask_3d:test_list.txt --pool pooled=holdout:mask_3d,... \
        [--json report.json] [--markdown table.md] [--threads 2] [--no-tta] [--max-per-list N]

Each model's threshold is set for APCER 1e-2 on the calibration list (never on a test list); every
evaluation set then reports TPR at FPR 1e-2 / 1e-3, BPCER, APCER and APCER per attack type.
For the ensemble against its student use training.compare.compare (tools/make_student.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def parse_pair(text: str, what: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise SystemExit(f"{what} wants NAME=VALUE, got {text!r}")
    return name, value


def parse_root_list(text: str) -> tuple[Path, str]:
    root, sep, list_name = text.rpartition(":")
    if not sep or not root or not list_name:
        raise SystemExit(f"a list wants ROOT:LIST, got {text!r}")
    return Path(root), list_name


def parse_sets(eval_texts: list[str], pool_texts: list[str]) -> tuple[dict[str, list[tuple[Path, str]]], dict[str, list[str]]]:
    """(evaluations {NAME: [(root, list), ...]}, pools {NAME: [set, ...]}) from --eval and --pool."""
    evaluations: dict[str, list[tuple[Path, str]]] = {}
    for text in eval_texts:
        name, value = parse_pair(text, "--eval")
        evaluations.setdefault(name, []).append(parse_root_list(value))
    pools = {name: value.split(",") for name, value in (parse_pair(t, "--pool") for t in pool_texts)}
    return evaluations, pools


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=MODEL_PT")
    parser.add_argument("--calibration", required=True, metavar="ROOT:LIST")
    parser.add_argument("--eval", action="append", default=[], metavar="NAME=ROOT:LIST",
                        help="an evaluation list; repeat a NAME to join several lists into one set")
    parser.add_argument("--pool", action="append", default=[], metavar="NAME=SET,SET",
                        help="a set made of already scored evaluation sets")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-tta", action="store_true", help="score the centre crop only (no flip)")
    parser.add_argument("--max-per-list", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the report here")
    parser.add_argument("--markdown", default=None, help="write the tables here")
    args = parser.parse_args(argv)

    from sdk.errors import LivenessError
    from training.compare import compare_models, render_models_markdown, write_report

    models = dict(parse_pair(t, "--model") for t in args.model)
    evaluations, pools = parse_sets(args.eval, args.pool)
    try:
        report = compare_models(models, parse_root_list(args.calibration), evaluations, threads=args.threads,
                                tta=not args.no_tta, max_per_list=args.max_per_list, pools=pools or None,
                                log=lambda s: print(s, file=sys.stderr))
    except LivenessError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    text = render_models_markdown(report)
    if args.json:
        write_report(args.json, report)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
