"""Fuzzing the HIL suite.json reader (sdk/hil/suite.py, the kiosk work): a valid suite with any
part replaced by arbitrary JSON, and arbitrary bytes. Loading gives a Suite whose entries are
valid, or a HilSuiteError; never another exception, never a path that leaves the suite folder."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

suite_module = pytest.importorskip("sdk.hil.suite", reason="sdk.hil (the HIL suite) is not merged yet")
from sdk.errors import LivenessError  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

HEX = "0" * 64
ENTRY = {"id": "live/a", "bag": "live/a.bag", "sidecar": "live/a.json", "sha256": HEX, "sidecar_sha256": HEX,
         "scenario": "live", "label": 1, "attack_type": None, "species": "bona_fide", "expected": "LIVE",
         "seed": 1, "frames": 30, "origin": "simulator"}
SUITE = {"format": "sr300-liveness-hil-suite", "format_version": 1, "bpcer_budget": 0.05, "timeout_s": 5.0,
         "recordings": [ENTRY]}
PLACES = [(), ("format",), ("format_version",), ("bpcer_budget",), ("timeout_s",), ("recordings",), ("recordings", 0)] + [
    ("recordings", 0, key) for key in ENTRY]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2**64) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
    | st.sampled_from(["../x.bag", "/etc/passwd.bag", "C:/x.bag", "a\\..\\..\\x.bag", "LIVE", "NOT_LIVE", "bona_fide", HEX]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def replaced(place: tuple, value: object) -> object:
    if not place:
        return value
    data = json.loads(json.dumps(SUITE))
    node = data
    for key in place[:-1]:
        node = node[key]
    node[place[-1]] = value
    return data


@FUZZ
@given(place=st.sampled_from(PLACES), value=json_values)
def test_suite_json_with_any_part_replaced(tmp_path, place, value):
    (tmp_path / "suite.json").write_text(json.dumps(replaced(place, value)), encoding="utf-8")
    try:
        suite = suite_module.load_suite(tmp_path)
    except LivenessError:  # HilSuiteError and its subclasses
        return
    root = tmp_path.resolve()
    for recording in suite.recordings:
        for relative in (recording.bag, recording.sidecar):
            assert root in (tmp_path / relative).resolve().parents
        assert recording.label in (0, 1) and recording.expected in ("LIVE", "NOT_LIVE")
    assert 0.0 <= suite.bpcer_budget <= 1.0 and suite.timeout_s > 0


@FUZZ
@given(raw=st.binary(max_size=200))
def test_suite_json_bytes(tmp_path, raw):
    (tmp_path / "suite.json").write_bytes(raw)
    try:
        suite_module.load_suite(tmp_path)
    except LivenessError:
        return
