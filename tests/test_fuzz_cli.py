"""Fuzzing the command line: random argument lists for every subcommand, built from its own
options and hostile values. Parsing gives a namespace or a clean usage error (SystemExit 2 with
a usage line; 0 for --help), never a traceback. The `evaluate` handler, which reads files, is
fuzzed end to end; handler bugs the fuzzing found are fixed and kept as regression tests."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdk.cli import build_parser, main
from tests.conftest import REPO

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

PARSER = build_parser()
SUBPARSERS = PARSER._subparsers._group_actions[0].choices  # argparse keeps them here
VALUES = ["0", "-1", "1e999", "nan", "-inf", "0.5", "3", "x", "", "--", "-", "live", "/nonexistent/x.bag", "=",
          "--json", "\x00", "é", "9" * 40]


def argv_for(name: str) -> st.SearchStrategy[list[str]]:
    options = [o for action in SUBPARSERS[name]._actions for o in action.option_strings if o not in ("-h", "--help")]
    token = st.sampled_from(options + VALUES) | st.text(max_size=5)
    return st.lists(token, max_size=8).map(lambda rest: [name] + rest)


any_argv = st.sampled_from(sorted(SUBPARSERS)).flatmap(argv_for) | st.lists(st.sampled_from(VALUES + ["--help"]), max_size=4)


def parse(argv: list[str]) -> tuple[object, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return PARSER.parse_args(argv), err.getvalue()
        except SystemExit as exit_:
            return exit_, err.getvalue()


@FUZZ
@given(any_argv)
def test_argument_parsing_is_clean(argv):
    outcome, err = parse(argv)
    if isinstance(outcome, SystemExit):
        assert outcome.code in (0, 2), (argv, outcome.code)
        if outcome.code == 2:
            assert "usage:" in err and "Traceback" not in err
    else:
        assert callable(outcome.handler)


@FUZZ
@given(scores=st.text(max_size=60), labels=st.text(max_size=60), threshold=st.sampled_from(["0.5", "0", "1", "2", "nan", "-1"]))
def test_evaluate_end_to_end(tmp_path, scores, labels, threshold):
    (tmp_path / "s.txt").write_text(scores, encoding="utf-8")
    (tmp_path / "l.txt").write_text(labels, encoding="utf-8")
    argv = ["evaluate", "--scores", str(tmp_path / "s.txt"), "--labels", str(tmp_path / "l.txt"), "--threshold", threshold, "--json"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    assert code in (0, 2, 3), (code, err.getvalue())
    assert "Traceback" not in err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        # regression tests of bugs the fuzzing found (all fixed):
        ["check", "--source", "empty", "--timeout", "nan"],  # was ValueError from int(nan): now a usage error
        ["check", "--source", "empty", "--timeout", "inf"],  # was OverflowError: now a usage error
        ["benchmark", "--frames", "0"],  # was IndexError in the statistics: now a usage error
        # exit 3 as it should; LivenessSession.open() used to leave the BlazeFace detector open
        # when the source failed, and mediapipe printed "Exception ignored ... Traceback" at exit
        ["check", "--source", "no-such-scenario"],
    ],
)
def test_cli_found_bugs_end_cleanly(argv):
    run = subprocess.run([sys.executable, "-m", "sdk.cli", *argv], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert run.returncode in (2, 3) and "Traceback" not in run.stderr, run.stderr[-800:]
