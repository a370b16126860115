"""Checks every Source applies to its own FrameSets: what a working SR300 can never deliver.

``Source.__next__`` runs ``StreamIntegrity.check`` on each FrameSet before handing it out, so
the camera, .bag replay, the simulator and any wrapper get the same guard:

* the device, its depth scale or the pixel grid with its intrinsics change mid-stream
  (StreamChangedError): the evidence would mix two cameras, or a depth scale read wrong would
  make every face look too near or too far;
* the clock runs backwards, or leaps ahead, while the frame number advances
  (StreamIntegrityError): timestamps that contradict the frame counter come from a broken
  device or an injector. "Leaps ahead": more than ``MAX_MS_PER_FRAME_STEP`` (1 s, ten frame
  intervals of the SR300's slowest mode, 10 fps; 30 intervals at 30 fps) per step of the frame
  number. Frames lost in between raise the frame number with the time, so they are no leap;
  timestamps are the device's capture times, so a late consumer is none either. The check
  that sees a leap ends (DEVICE_ERROR) instead of only forgetting its evidence: frames whose
  clock contradicts their counter may be spliced in from another time, and after a reset a
  single genuine-looking spliced window of k frames would pass on its own. A restart (frame
  number AND timestamp back to the start, as when a replay loops) is not a fault and starts
  the checks afresh;
* IR or depth repeats its previous image bit for bit while the frame number advances
  (StreamIntegrityError): both come from one imager with one frame counter, and sensor noise
  makes a repeat impossible for a working sensor. (The frame matcher drops a set whose own IR
  frame was lost instead of filling it with the previous IR image, see SetMatcher, so a dropped
  frame does not look like a frozen sensor.) Colour is not checked here: it is matched to
  depth by time and legitimately repeats when its rate is lower than depth's or a colour frame
  was dropped; the session's stuck-stream guard (sdk.stream_guard) does not score a frame whose
  colour repeats and ends the check when more repeat in a row than the stream rates explain.
  Constant images (a dead or covered sensor, an empty room's all-zero depth) are left to the
  session's MISSING_MODALITY handling.

Frames whose number does not advance at all are the session's stuck-stream guard's to judge.
"""
from __future__ import annotations

import numpy as np

from sdk.errors import StreamChangedError, StreamIntegrityError
from sdk.types import FrameSet

#: Bit-identical repeats in a row that make a modality frozen (see above for colour).
FROZEN_AFTER = {"ir": 1, "depth": 1}
#: Most milliseconds one step of the frame number may take: 10 frame intervals at 10 fps.
MAX_MS_PER_FRAME_STEP = 1000.0
_SIGNATURE_NAMES = ("serial", "device name", "depth scale", "grid", "shape", "intrinsics")


def stream_signature(frames: FrameSet) -> tuple[object, ...]:
    """What cannot change between two FrameSets of one stream."""
    return (frames.device.serial, frames.device.name, float(frames.depth_scale), frames.grid,
            frames.shape, frames.intrinsics)


def same_image(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two images are bit-identical: THE frozen-frame test (this module's checks and the
    session's stuck-stream guard, sdk.stream_guard, both use it)."""
    # a subsample first: different frames differ there, so the full comparison rarely runs
    return a.shape == b.shape and np.array_equal(a[::7, ::7], b[::7, ::7]) and np.array_equal(a, b)


def constant_image(a: np.ndarray) -> bool:
    """Whether an image holds one value everywhere (a dead or covered sensor, an empty room's depth)."""
    if not a.size:
        return True
    first = a.flat[0]
    return bool((a[::5, ::5] == first).all()) and bool((a == first).all())


class StreamIntegrity:
    def __init__(self) -> None:
        self.signature: tuple[object, ...] | None = None
        self.previous: FrameSet | None = None
        self.repeats = {name: 0 for name in FROZEN_AFTER}

    def check(self, frames: FrameSet) -> None:
        """Raise StreamChangedError / StreamIntegrityError for a FrameSet no SR300 could send."""
        signature = stream_signature(frames)
        if self.signature is None:
            self.signature = signature
        elif signature != self.signature:
            changed = [(n, a, b) for n, a, b in zip(_SIGNATURE_NAMES, self.signature, signature) if a != b]
            detail = ", ".join(f"{n}: {a!r} -> {b!r}" for n, a, b in changed if n != "intrinsics")
            raise StreamChangedError(f"frame {frames.frame_number}: the stream's "
                                     f"{', '.join(n for n, _, _ in changed)} changed mid-stream ({detail})")
        previous, self.previous = self.previous, frames
        if previous is None:
            return
        steps = int(frames.frame_number) - int(previous.frame_number)
        if steps < 0:  # a restart: numbering (and time) begin again
            self.repeats = {name: 0 for name in FROZEN_AFTER}
            return
        if steps == 0:
            return  # not advancing at all: the session's stuck-stream guard judges that
        elapsed = float(frames.timestamp_ms) - float(previous.timestamp_ms)
        if elapsed < 0:
            raise StreamIntegrityError(f"frame {frames.frame_number}: the clock ran backwards by {-elapsed:.1f} ms "
                                       f"while the frame number advanced by {steps}")
        if elapsed > steps * MAX_MS_PER_FRAME_STEP:
            raise StreamIntegrityError(f"frame {frames.frame_number}: the clock leapt ahead by {elapsed:.1f} ms "
                                       f"while the frame number advanced by {steps} (at most "
                                       f"{MAX_MS_PER_FRAME_STEP:.0f} ms per frame)")
        for name, limit in FROZEN_AFTER.items():
            image = getattr(frames, name)
            if same_image(image, getattr(previous, name)) and not constant_image(image):
                self.repeats[name] += 1
                if self.repeats[name] >= limit:
                    raise StreamIntegrityError(f"frame {frames.frame_number}: the {name} image is frozen "
                                               f"({self.repeats[name]} bit-identical repeat(s) while frames advance)")
            else:
                self.repeats[name] = 0
