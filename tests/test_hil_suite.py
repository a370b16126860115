"""Rig entry point: `pytest --hil-suite DIR` checks every recording of a HIL suite, one test each.

Without --hil-suite the single placeholder test is skipped with the reason.
"""
from __future__ import annotations

from sdk.hil.pytest_plugin import assert_recording_passes


def test_hil_recording(hil_recording, hil_bundle, request):
    suite, recording = hil_recording
    result = assert_recording_passes(request.config, suite, recording, hil_bundle)
    assert result.status == "pass"
    if recording.is_attack:
        assert result.decision != "LIVE"
    else:
        assert result.decision == "LIVE"
