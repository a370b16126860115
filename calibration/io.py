"""Reading score files and challenge label lists.

Score file: one row per sample, one column per test-time view (e.g. ``crop0,crop0_hflip``),
comma- or whitespace-separated, with or without a header line. A file's score is the row mean
of its columns; an ensemble (several files) is the row mean of the files' scores. This is the
reference solution's order (views, then folds/members), reproduced bit-for-bit on the fixture.

Label list: the CASIA-SURF challenge formats, either a CSV with the header ``rgb,depth,ir,label``
or header-less space-separated ``color depth ir label`` lines. The label is the last column
unless a header names a ``label`` column. Label polarity is a setting: 1 = live in the 2019
challenge lists, later CASIA lists use 0 = live (``live_label=0``).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from sdk.errors import InputValidationError

PathLike = str | os.PathLike[str]

#: CASIA-SURF training attack folders: ``fake_part/<subject>/04_...`` -> attack type 4.
_CASIA_ATTACK_DIR = re.compile(r"(?:^|/)fake_part/[^/]+/0(\d)_")
#: Header names that carry an attack type in an extra label-list column.
_ATTACK_TYPE_COLUMNS = ("attack_type", "attack", "type")


def _read_lines(path: PathLike, what: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputValidationError(f"{path}: cannot read {what} ({error})") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise InputValidationError(f"{path}: empty {what}")
    return lines


def _split(line: str) -> list[str]:
    # A line is comma-separated if it has a comma; otherwise any whitespace separates.
    return [field.strip() for field in line.split(",")] if "," in line else line.split()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_score_table(path: PathLike) -> np.ndarray:
    """The (N, V) table of a score file: N samples, V test-time views (header skipped)."""
    lines = _read_lines(path, "score file")
    first = _split(lines[0])
    if not all(_is_number(f) for f in first):
        lines = lines[1:]  # a header line (e.g. "crop0,crop0_hflip")
    if not lines:
        raise InputValidationError(f"{path}: score file has a header but no rows")
    rows = [_split(line) for line in lines]
    width = len(rows[0])
    table = np.empty((len(rows), width), dtype=np.float64)
    for number, row in enumerate(rows):
        if len(row) != width:
            raise InputValidationError(f"{path}: row {number + 1} has {len(row)} columns, expected {width}")
        try:
            table[number] = [float(f) for f in row]
        except ValueError:
            raise InputValidationError(f"{path}: row {number + 1} is not numeric: {lines[number]!r}") from None
    if not np.isfinite(table).all():
        bad = int(np.flatnonzero(~np.isfinite(table).all(axis=1))[0])
        raise InputValidationError(f"{path}: row {bad + 1} holds a NaN or infinite score")
    return table


def read_scores(path: PathLike) -> np.ndarray:
    """Scores (N,) of one file: the mean of its columns (test-time views), row by row."""
    return read_score_table(path).mean(axis=1)


def read_many(paths: Sequence[PathLike]) -> np.ndarray:
    """Scores (N,) of an ensemble: each file's row means, then the mean over files."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if len(paths) == 0:
        raise InputValidationError("no score files given")
    members = [read_scores(p) for p in paths]
    sizes = {str(p): m.shape[0] for p, m in zip(paths, members)}
    if len(set(sizes.values())) != 1:
        listing = ", ".join(f"{p} ({n} rows)" for p, n in sizes.items())
        raise InputValidationError(f"score files differ in row count: {listing}")
    return np.mean(np.stack(members), axis=0)


@dataclass(frozen=True, eq=False)
class LabelList:
    """A parsed label list: labels (1 live, 0 attack), attack types when known, first paths."""

    labels: np.ndarray
    attack_types: np.ndarray | None
    paths: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _parse_label(text: str, path: PathLike, number: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputValidationError(f"{path}: line {number}: label {text!r} is not a number") from None
    if value not in (0.0, 1.0):
        raise InputValidationError(f"{path}: line {number}: label {text!r} is not 0 or 1")
    return value


def read_label_list(path: PathLike, live_label: int = 1) -> LabelList:
    """Parse a challenge list; see the module docstring for the accepted formats.

    Attack types come from a header column named ``attack_type`` (or ``attack``/``type``) when
    present, else from CASIA training paths (``fake_part/<subject>/0N_...`` -> "N"). They are
    returned only when every attack row has one (a partial list would make per-type APCER lie);
    live rows get "".
    """
    if live_label not in (0, 1):
        raise InputValidationError(f"live_label must be 0 or 1, got {live_label!r}")
    lines = _read_lines(path, "label list")
    first = _split(lines[0])
    header: list[str] | None = None
    if not _is_number(first[-1]):
        header = [name.lower() for name in first]
        lines = lines[1:]
        if not lines:
            raise InputValidationError(f"{path}: label list has a header but no rows")
    label_col = header.index("label") if header and "label" in header else -1
    type_col = next((header.index(c) for c in _ATTACK_TYPE_COLUMNS if header and c in header), None)
    offset = 2 if header else 1  # 1-based line numbers in messages
    raw = np.empty(len(lines), dtype=np.float64)
    paths: list[str] = []
    column_types: list[str] = []
    width = None
    for i, line in enumerate(lines):
        fields = _split(line)
        if width is None:
            width = len(fields)
        if len(fields) != width:
            raise InputValidationError(f"{path}: line {i + offset} has {len(fields)} columns, expected {width}")
        # A header may name a column the rows do not have (header wider than the rows).
        needed = max(label_col, type_col if type_col is not None else -1) + 1
        if len(fields) < needed:
            raise InputValidationError(
                f"{path}: line {i + offset} has {len(fields)} columns but the header needs {needed}"
            )
        raw[i] = _parse_label(fields[label_col], path, i + offset)
        paths.append(fields[0] if len(fields) > 1 else "")
        if type_col is not None:
            column_types.append(fields[type_col])
    labels = (raw == float(live_label)).astype(np.int8)
    attack_types = _attack_types(labels, paths, column_types if type_col is not None else None)
    return LabelList(labels, attack_types, tuple(paths))


def _attack_types(labels: np.ndarray, paths: list[str], column: list[str] | None) -> np.ndarray | None:
    if column is not None:
        types = ["" if label == 1 else value for label, value in zip(labels, column)]
    else:
        types = []
        for label, sample_path in zip(labels, paths):
            match = _CASIA_ATTACK_DIR.search(sample_path.replace("\\", "/"))
            types.append("" if label == 1 else (match.group(1) if match else ""))
    attack_rows = [t for label, t in zip(labels, types) if label == 0]
    if not attack_rows or any(t == "" for t in attack_rows):
        return None
    return np.array(types, dtype=object)


def read_labels(path: PathLike, live_label: int = 1) -> np.ndarray:
    """Labels (N,) int8 of a challenge list: 1 = live (bona fide), 0 = attack."""
    return read_label_list(path, live_label).labels
