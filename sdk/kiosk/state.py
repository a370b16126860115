"""What the kiosk shows, shared between the check thread (writer) and the web server (readers).

States: ``starting`` (model and camera loading), ``attract`` (nobody in view), ``checking`` (a
check is running: progress and live hints), ``result`` (the decision banner is held for a few
seconds), ``error`` (the source or the model failed; the runner retries).
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from sdk.kiosk.hints import hints_for
from sdk.kiosk.views import BOX_FAIL, BOX_GATE, BOX_PASS, STREAMS, encode_jpeg, render

STATES = ("starting", "attract", "checking", "result", "error")
#: Frames in a row without a face (and nothing scored) after which the attract screen shows.
ATTRACT_AFTER_FRAMES = 8
HISTORY = 20
STAGE_SMOOTHING = 0.2  # weight of the newest frame in the operator's stage timings


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass
class _Frame:
    seq: int
    frames: Any  # FrameSet
    box: Any  # FaceBox | None
    colour: tuple[int, int, int]


class KioskState:
    def __init__(self, model_name: str = "", model_version: str = "", operating_point: str = "",
                 threshold: float = float("nan"), source: str = "") -> None:
        self._lock = threading.Lock()
        self._state = "starting"
        self._decision: str | None = None
        self._score: float | None = None
        self._reasons: list[str] = []
        self._message = ""
        self._progress = 0.0
        self._attempt = 0
        self._attempt_label = ""
        self._expected: str | None = None
        self._no_face_run = 0
        self._frame: _Frame | None = None
        self._seq = 0
        self._jpeg_cache: dict[tuple[int, str], bytes] = {}
        self._frame_times: deque[float] = deque(maxlen=31)
        self._stages: dict[str, float] = {}
        self._results: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._updated = time.time()
        self.model_name = model_name
        self.model_version = model_version
        self.operating_point = operating_point
        self.threshold = threshold
        self.source = source

    # -- writer side (the check thread) -------------------------------------------------------
    def begin_attempt(self, label: str, expected: str | None = None) -> None:
        with self._lock:
            self._attempt += 1
            self._attempt_label = label
            self._expected = expected
            self._decision, self._score, self._reasons, self._message = None, None, [], ""
            self._progress = 0.0
            self._no_face_run = 0
            if self._state != "attract":
                self._state = "checking"
            self._updated = time.time()

    def frame(self, frames: Any, outcome: Any, progress: float) -> None:
        """One frame of the running check: the views, the per-frame score or gate reasons, progress."""
        score = _finite(getattr(outcome, "score", None))
        reasons = [str(getattr(r, "value", r)) for r in getattr(outcome, "reasons", ())]
        box = getattr(outcome, "face_box", None)
        if score is None:
            colour = BOX_GATE
        else:
            colour = BOX_PASS if score >= self.threshold else BOX_FAIL
        now = time.perf_counter()
        with self._lock:
            self._seq += 1
            self._frame = _Frame(self._seq, frames, box, colour)
            self._jpeg_cache.clear()
            self._frame_times.append(now)
            for stage, ms in (getattr(outcome, "timings_ms", None) or {}).items():
                value = _finite(ms)
                if value is not None:
                    old = self._stages.get(stage)
                    self._stages[stage] = value if old is None else old + STAGE_SMOOTHING * (value - old)
            self._score = score
            self._reasons = reasons
            self._progress = max(0.0, min(1.0, float(progress)))
            nobody = score is None and reasons[:1] == ["NO_FACE"] and box is None
            self._no_face_run = self._no_face_run + 1 if nobody else 0
            self._state = "attract" if self._no_face_run >= ATTRACT_AFTER_FRAMES else "checking"
            self._updated = time.time()

    def finish_attempt(self, result: Any, seconds: float) -> dict[str, Any]:
        """The check's result: held on the banner (or the attract screen when nobody was there)."""
        data = result.to_dict()
        reasons = list(data.get("reasons") or [])
        # Nobody there: nothing scored and "no face" the most frequent gate failure (the session lists
        # the gate reasons after TIMEOUT, most frequent first). A face that was too far, too dark...
        # keeps its UNCERTAIN banner with the hint.
        gate_reasons = [r for r in reasons if r != "TIMEOUT"]
        nobody = data["decision"] == "UNCERTAIN" and data.get("score") is None and gate_reasons[:1] == ["NO_FACE"]
        entry = {
            "attempt": self._attempt,
            "time": time.strftime("%H:%M:%S"),
            "source": self._attempt_label,
            "expected": self._expected,
            "decision": data["decision"],
            "score": data.get("score"),
            "reasons": reasons,
            "frames_used": data.get("frames_used"),
            "seconds": round(seconds, 2),
            "timings_ms": data.get("timings_ms") or {},
            "correct": None if self._expected is None else (
                (data["decision"] == "LIVE") == (self._expected == "LIVE")),
        }
        with self._lock:
            self._results.appendleft(entry)
            self._decision = data["decision"]
            self._score = data.get("score")
            self._reasons = reasons
            self._message = data.get("message") or ""
            self._progress = 1.0
            self._state = "attract" if nobody else "result"
            self._updated = time.time()
        return entry

    def fail(self, message: str) -> None:
        with self._lock:
            self._state = "error"
            self._decision = None
            self._message = message
            self._updated = time.time()

    # -- reader side (the web server) ---------------------------------------------------------
    def fps(self) -> float:
        times = list(self._frame_times)
        if len(times) < 2 or time.perf_counter() - times[-1] > 2.0:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0]) if times[-1] > times[0] else 0.0

    def status(self) -> dict[str, Any]:
        with self._lock:
            frame = self._frame
            box = None if frame is None or frame.box is None else [round(v, 1) for v in frame.box.as_tuple()]
            decision = self._decision if self._state == "result" else None
            return {
                "state": self._state,
                "decision": decision,
                "score": self._score,
                "reasons": list(self._reasons),
                "hints": self._hints(),
                "fps": round(self.fps(), 1),
                "model_name": self.model_name,
                "model_version": self.model_version,
                "operating_point": self.operating_point,
                "threshold": _finite(self.threshold),
                "progress": round(self._progress, 3),
                "source": self._attempt_label or self.source,
                "expected": self._expected,
                "attempt": self._attempt,
                "frame": 0 if frame is None else frame.seq,
                "face_box": box,
                "timings_ms": {k: round(v, 2) for k, v in self._stages.items()},
                "message": self._message,
                "updated": self._updated,
            }

    def _hints(self) -> list[str]:
        if self._state == "attract":
            return ["Step in front of the camera"]
        if self._state == "result" and self._decision == "LIVE":
            return ["Verified: welcome"]
        return hints_for(self._reasons)

    def results(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._results)

    def jpeg(self, stream: str) -> bytes | None:
        """The latest frame of ``stream`` as JPEG (encoded on demand, once per frame and stream)."""
        if stream not in STREAMS:
            raise KeyError(stream)
        with self._lock:
            frame = self._frame
            if frame is None:
                return None
            cached = self._jpeg_cache.get((frame.seq, stream))
        if cached is not None:
            return cached
        data = encode_jpeg(render(frame.frames, stream, frame.box, frame.colour))
        with self._lock:
            if self._frame is not None and self._frame.seq == frame.seq:
                self._jpeg_cache[(frame.seq, stream)] = data
        return data
