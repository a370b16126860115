"""Plain-word hints for the person in front of the kiosk, from the session's reason codes.

Keyed by the reason's string value so that reasons added to sdk.types.Reason later (e.g. a
lock-out) still get a sensible hint through the fallback.
"""
from __future__ import annotations

from typing import Iterable

HINTS: dict[str, str] = {
    "NO_FACE": "Look at the camera",
    "MULTIPLE_FACES": "One face only, please",
    "FACE_TOO_FAR": "Move closer",
    "FACE_TOO_CLOSE": "Move back a little",
    "FACE_OFF_CENTER": "Centre your face in the frame",
    "FACE_PARTLY_OUT_OF_FRAME": "Centre your face in the frame",
    "TOO_DARK": "More light, please",
    "IR_TOO_DARK": "More light, please",
    "OVEREXPOSED": "Too bright: step out of direct light",
    "IR_OVEREXPOSED": "Too bright: step out of direct sunlight",
    "DEPTH_HOLES": "Face the camera; take off dark glasses or a hat",
    "NO_DEPTH": "Face the camera from arm's length",
    "MOTION_BLUR": "Hold still",
    "NO_RELIEF": "Present your own face, please",
    "FLAT_FACE": "Present your own face, please",
    "OUTSIDE_CALIBRATION": "Conditions the system was not set up for: please call staff",
    "LOW_CONFIDENCE": "Look straight at the camera and hold still",
    "TIMEOUT": "Look straight at the camera and try again",
    "IMPLAUSIBLE_FACE_SIZE": "Present your own face, please",
    "SPOOF_SCORE": "Present your own face, please",
    "LOCKED_OUT": "Too many attempts: please wait or call staff",
    "MISSING_MODALITY": "Camera problem: please call staff",
    "DEVICE_ERROR": "Camera problem: please call staff",
    "MODEL_ERROR": "System problem: please call staff",
    "INVALID_SCORE": "System problem: please call staff",
    "INTERNAL_ERROR": "System problem: please call staff",
}
FALLBACK = "Look straight at the camera and try again"
#: Reasons that say only that no decision came: a specific gate reason beside them gives the hint.
GENERIC = frozenset({"TIMEOUT", "LOW_CONFIDENCE"})


def hints_for(reasons: Iterable[object], limit: int = 2) -> list[str]:
    """Up to ``limit`` distinct hints, most important reason first."""
    names = [str(getattr(reason, "value", reason)) for reason in reasons]
    names = [n for n in names if n not in GENERIC] + [n for n in names if n in GENERIC]
    hints: list[str] = []
    for name in names:
        text = HINTS.get(name, FALLBACK)
        if text not in hints:
            hints.append(text)
        if len(hints) >= limit:
            break
    return hints
