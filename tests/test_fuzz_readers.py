"""Fuzzing the text readers with hypothesis: score files and label lists (calibration/io.py),
CASIA-SURF list files (training/data/casia.py). Any content gives a parsed result or an
InputValidationError, never another exception.

Bounded for CI (max_examples, no deadline, derandomized: the same examples every run);
FUZZ_EXAMPLES=5000 runs more, with fresh random examples. The bugs these tests found (a header
wider than its rows, non-UTF-8 files, labels inf and 1.7, short CSV rows) are fixed and kept
below as regression tests.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibration.io import read_label_list, read_score_table
from sdk.errors import InputValidationError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

TOKENS = ["0", "1", "0.5", "nan", "inf", "-inf", "1e999", "-1", "2", "1.7", "label", "rgb", "depth", "ir",
          "attack_type", "crop0", "Val/0000/000000-color.jpg", "fake_part/CLKJ_AS0005/04_en_b.rssdk/color/1.jpg", "", "#"]
field = st.one_of(st.sampled_from(TOKENS), st.text(max_size=6))
line = st.lists(field, max_size=6).flatmap(lambda fs: st.sampled_from([" ".join(fs), ",".join(fs), "\t".join(fs)]))
content = st.tuples(st.lists(line, max_size=8).map("\n".join), st.sampled_from([b"", b"\xff\xfe", b"\x00"]))


def write(folder: Path, text: str, tail: bytes) -> Path:
    path = folder / "list.txt"
    path.write_bytes(text.encode("utf-8", "surrogatepass") + tail)
    return path


@FUZZ
@given(content)
def test_label_list_reader(tmp_path, data):
    path = write(tmp_path, *data)
    try:
        labels = read_label_list(path)
    except InputValidationError:
        return
    assert labels.labels.dtype == np.int8 and set(np.unique(labels.labels)) <= {0, 1}
    assert len(labels.paths) == len(labels)
    if labels.attack_types is not None:
        assert len(labels.attack_types) == len(labels)


@FUZZ
@given(content)
def test_score_file_reader(tmp_path, data):
    try:
        table = read_score_table(write(tmp_path, *data))
    except InputValidationError:
        return
    assert table.ndim == 2 and table.shape[0] >= 1 and np.isfinite(table).all()


def test_label_list_header_wider_than_rows(tmp_path):
    path = tmp_path / "l.txt"
    path.write_text("a b c d label\n1 0\n")
    with pytest.raises(InputValidationError):
        read_label_list(path)


# -- training/data/casia.py read_list ---------------------------------------------------------
casia = pytest.importorskip("training.data.casia", reason="the training extra is not installed")


@FUZZ
@given(content)
def test_casia_list_reader(tmp_path, data):
    path = write(tmp_path, *data)
    try:
        samples = casia.read_list(path)
    except InputValidationError:
        return
    for sample in samples:
        assert sample.label in (-1, 0, 1)


@pytest.mark.parametrize(
    "content, why",
    [
        (b"\xff a b c 1\n", "a file that is not UTF-8 raises UnicodeDecodeError"),
        (b"a b c inf\n", "an infinite label raises OverflowError"),
        (b"a b c 1.7\n", "a label of 1.7 is read as 1 (int() truncates) instead of refused"),
        (b"rgb,depth,ir,label\nx\n", "a CSV row with missing fields gives a Sample with None paths"),
    ],
)
def test_casia_list_pinned_bugs(tmp_path, content, why):
    path = tmp_path / "l.txt"
    path.write_bytes(content)
    with pytest.raises(InputValidationError):
        casia.read_list(path)
