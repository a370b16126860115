"""Hardware-in-the-loop testing: suites of labelled recordings and a runner that scores the SDK on them.

    sr300-liveness hil make-suite --out SUITE --per-scenario 10     # simulator recordings
    sr300-liveness hil live --out SUITE --expect live --count 5     # real SR300 attempts grow it
    sr300-liveness hil run SUITE --junit hil.xml --json hil.json     # the rig's check
    pytest --hil-suite SUITE                                        # the same, one test per recording
"""
from __future__ import annotations

from sdk.hil.suite import Suite, SuiteRecording, load_suite

__all__ = ["Suite", "SuiteRecording", "load_suite", "make_suite", "run_suite"]


def __getattr__(name: str):  # keep `import sdk.hil` light: the runner pulls in the session
    if name == "make_suite":
        from sdk.hil.make import make_suite

        return make_suite
    if name == "run_suite":
        from sdk.hil.runner import run_suite

        return run_suite
    raise AttributeError(f"module 'sdk.hil' has no attribute {name!r}")
