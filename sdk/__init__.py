"""Multi-modal face liveness SDK for the Intel RealSense SR300 (device path; never imports torch).

    from sdk import LivenessSession, Decision
    with LivenessSession() as session:          # first SR300, shipped model
        result = session.check(timeout_s=5)
        if result.decision is Decision.LIVE:
            ...
"""
from __future__ import annotations

from sdk.session import LivenessSession, SessionConfig
from sdk.types import Decision, FaceBox, FaceCrops, FrameSet, LivenessResult, Reason

__version__ = "0.1.0"

__all__ = [
    "Decision", "FaceBox", "FaceCrops", "FrameSet", "LivenessResult", "LivenessSession", "Reason",
    "SessionConfig", "__version__",
]
