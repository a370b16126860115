"""pytest entry point for rigs: ``pytest --hil-suite DIR`` runs one test per suite recording.

The project's tests/conftest.py imports the hooks and the ``hil_bundle`` fixture from here; elsewhere load it with
``pytest -p sdk.hil.pytest_plugin --hil-suite DIR``. A test (tests/test_hil_suite.py) asks for the
``hil_recording`` fixture and calls ``assert_recording_passes``; without --hil-suite it is skipped
with the reason.
"""
from __future__ import annotations

from typing import Any

import pytest

SKIP_REASON = "needs --hil-suite DIR (a suite made by `sr300-liveness hil make-suite` or grown by `hil live`)"


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop suites")
    group.addoption("--hil-suite", default=None, metavar="DIR", help="run one test per recording of this HIL suite")
    group.addoption("--hil-model", default=None, metavar="BUNDLE", help="model bundle for --hil-suite (default: shipped)")
    group.addoption("--hil-operating-point", default=None, metavar="NAME", help="operating point for --hil-suite")
    group.addoption("--hil-retries", type=int, default=1, metavar="N",
                    help="repeat a check that ended on an error up to N times, as `hil run --retries` (default 1)")


def pytest_generate_tests(metafunc: Any) -> None:
    if "hil_recording" not in metafunc.fixturenames:
        return
    folder = metafunc.config.getoption("--hil-suite")
    if not folder:
        metafunc.parametrize("hil_recording", [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON))],
                             ids=["no-suite"])
        return
    from sdk.hil.suite import load_suite

    suite = load_suite(folder)  # a malformed suite.json is a collection error, loudly
    metafunc.parametrize("hil_recording", [(suite, r) for r in suite.recordings], ids=[r.id for r in suite.recordings])


@pytest.fixture(scope="session")
def hil_bundle(request: Any) -> Any:
    """The model the --hil-suite recordings are checked with (loaded and hash-verified once)."""
    from sdk.engine import ModelBundle

    return ModelBundle.load(request.config.getoption("--hil-model"))


def assert_recording_passes(config: Any, suite: Any, recording: Any, bundle: Any) -> Any:
    """Check one recording; a wrong decision fails the test, an unchecked recording errors it."""
    from sdk.hil.runner import ERROR, FAIL, check_recording

    result = check_recording(suite, recording, bundle, config.getoption("--hil-operating-point"),
                             retries=max(0, int(config.getoption("--hil-retries"))))
    if result.status == ERROR:
        pytest.fail(f"ERROR (not checked): {result.detail}", pytrace=False)
    if result.attempts > 1:
        print(f"{recording.id}: checked {result.attempts} times ({result.detail})")
    if result.status == FAIL:
        pytest.fail(f"{result.detail} (score {result.score}, reasons {', '.join(result.reasons) or '-'})", pytrace=False)
    return result
