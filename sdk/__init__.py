"""Multi-modal face liveness SDK for the Intel RealSense SR300 (device path; never imports torch)."""
from __future__ import annotations

from sdk.types import Decision, FaceBox, FaceCrops, FrameSet, LivenessResult, Reason

__version__ = "0.1.0"

__all__ = ["Decision", "FaceBox", "FaceCrops", "FrameSet", "LivenessResult", "Reason", "__version__"]
