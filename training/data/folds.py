"""Cross-validation folds over a CASIA-SURF training list, written to and read from list files.

* attack3 (the reference solution's "folds by fakes"): training attack types 4, 5, 6; fold k
  holds out type [4, 5, 6][k-1] and live-subject group k (live subjects are split into three
  disjoint groups), and trains on the other two types and groups.
* subject5: subjects (live and attack alike) split into five disjoint groups; fold k validates on
  group k.

Layout: <out>/<scheme>/fold<k>/{train,val}_list.txt, written in the challenge list format.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from sdk.errors import InputValidationError
from training.data.casia import Sample, read_list, write_list

ATTACK_TYPES: tuple[int, ...] = (4, 5, 6)
SCHEMES = {"attack3": 3, "subject5": 5}


def _groups(subjects: Sequence[str], n: int, seed: int) -> list[set[str]]:
    """Split subjects into n disjoint groups of near-equal size (seeded shuffle of sorted ids)."""
    ordered = sorted(set(subjects))
    np.random.default_rng(seed).shuffle(ordered)
    return [set(ordered[i::n]) for i in range(n)]


def attack_folds(samples: Sequence[Sample], seed: int = 0) -> list[tuple[list[Sample], list[Sample]]]:
    """(train, val) per attack-specific fold 1..3."""
    live = [s for s in samples if s.label == 1]
    attacks = [s for s in samples if s.label == 0]
    unknown = [s for s in attacks if s.attack_type not in ATTACK_TYPES]
    if unknown:
        raise InputValidationError(
            f"{len(unknown)} attack samples have no training attack type 4/5/6 in their path "
            f"(e.g. {unknown[0].rgb}); attack folds need fake_part/<subject>/0<t>_*.rssdk paths"
        )
    no_subject = [s for s in live if s.subject is None]
    if no_subject:
        raise InputValidationError(f"live sample without a real_part/<subject>/ path: {no_subject[0].rgb}")
    groups = _groups([s.subject for s in live], 3, seed)  # type: ignore[misc]
    folds = []
    for k, held_type in enumerate(ATTACK_TYPES):
        train = [s for s in live if s.subject not in groups[k]] + [s for s in attacks if s.attack_type != held_type]
        val = [s for s in live if s.subject in groups[k]] + [s for s in attacks if s.attack_type == held_type]
        folds.append((train, val))
    return folds


def subject_folds(samples: Sequence[Sample], n: int = 5, seed: int = 0) -> list[tuple[list[Sample], list[Sample]]]:
    """(train, val) per subject fold: no subject appears on both sides."""
    missing = [s for s in samples if s.subject is None]
    if missing:
        raise InputValidationError(f"sample without a subject in its path: {missing[0].rgb}")
    groups = _groups([s.subject for s in samples], n, seed)  # type: ignore[misc]
    return [
        ([s for s in samples if s.subject not in g], [s for s in samples if s.subject in g]) for g in groups
    ]


def make_folds(samples: Sequence[Sample], scheme: str, seed: int = 0) -> list[tuple[list[Sample], list[Sample]]]:
    if scheme == "attack3":
        return attack_folds(samples, seed)
    if scheme == "subject5":
        return subject_folds(samples, 5, seed)
    raise InputValidationError(f"unknown fold scheme {scheme!r}; known: {sorted(SCHEMES)}")


def fold_paths(out_dir: str | Path, scheme: str, fold: int) -> tuple[Path, Path]:
    """(train_list, val_list) paths of fold ``fold`` (1-based)."""
    if scheme not in SCHEMES or not 1 <= fold <= SCHEMES[scheme]:
        raise InputValidationError(f"fold {fold} does not exist in scheme {scheme!r}")
    base = Path(out_dir) / scheme / f"fold{fold}"
    return base / "train_list.txt", base / "val_list.txt"


def write_folds(
    list_path: str | Path, out_dir: str | Path, scheme: str = "attack3", *, live_label: int = 1, seed: int = 0
) -> list[tuple[Path, Path]]:
    """Read a training list, split it, write every fold's lists; returns their paths."""
    samples = read_list(list_path, live_label)
    written = []
    for k, (train, val) in enumerate(make_folds(samples, scheme, seed), start=1):
        train_path, val_path = fold_paths(out_dir, scheme, k)
        write_list(train_path, train, live_label)
        write_list(val_path, val, live_label)
        written.append((train_path, val_path))
    return written


def read_fold(out_dir: str | Path, scheme: str, fold: int, live_label: int = 1) -> tuple[list[Sample], list[Sample]]:
    train_path, val_path = fold_paths(out_dir, scheme, fold)
    return read_list(train_path, live_label), read_list(val_path, live_label)


def main(argv: Sequence[str] | None = None) -> int:
    """python -m training.data.folds TRAIN_LIST OUT_DIR [--scheme attack3|subject5|all] [--live-label 1] [--seed 0]"""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m training.data.folds", description="write CASIA-SURF fold lists")
    parser.add_argument("train_list")
    parser.add_argument("out_dir")
    parser.add_argument("--scheme", choices=(*SCHEMES, "all"), default="all")
    parser.add_argument("--live-label", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for scheme in (SCHEMES if args.scheme == "all" else [args.scheme]):
        written = write_folds(args.train_list, args.out_dir, scheme, live_label=args.live_label, seed=args.seed)
        for train_path, val_path in written:
            print(f"{scheme}: {train_path} {val_path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
